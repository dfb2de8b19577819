"""Real OpenStack clients pointed at a running Skylens, without Keystone.

openstacksdk and python-glanceclient act as any `Identity` through the trusted
headers. The `glance` and `openstack` command lines cannot send them and so act
as the service's default identity (project `default`, admin).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from glanceclient.v2.client import Client as GlanceClient
from keystoneauth1 import noauth, session
from openstack.connection import Connection
from openstack.image.v2._proxy import Proxy as ImageV2Proxy

from tests.support.identities import Identity


class ImageV2Connection(Connection):
    """A Connection pinned to the Image API v2 (`image_api_version="2"`): its `image`
    proxy is the v2 one, where openstacksdk's types allow v1 too."""

    image: ImageV2Proxy


SdkFactory = Callable[[Identity], ImageV2Connection]
GlanceFactory = Callable[[Identity], GlanceClient]

# The console scripts installed beside this interpreter (glance, openstack, skylens).
BIN = Path(sys.executable).parent


def sdk_connection(url: str, identity: Identity) -> ImageV2Connection:
    """An openstacksdk Connection: no auth, the image endpoint pinned to `url`."""
    auth_session = session.Session(
        auth=noauth.NoAuth(), additional_headers=identity.headers, timeout=30
    )
    return ImageV2Connection(
        session=auth_session, image_endpoint_override=url, image_api_version="2"
    )


def sdk_compute_connection(url: str, identity: Identity, microversion: str) -> ImageV2Connection:
    """An openstacksdk Connection whose compute proxy is Skylens's `/v2.1` image proxy,
    at `microversion` (the image proxy routes end at 2.35)."""
    auth_session = session.Session(
        auth=noauth.NoAuth(), additional_headers=identity.headers, timeout=30
    )
    return ImageV2Connection(
        session=auth_session,
        image_endpoint_override=url,
        image_api_version="2",
        compute_endpoint_override=f"{url}/v2.1",
        compute_api_version=microversion,
    )


def glance_client(url: str, identity: Identity) -> GlanceClient:
    """A glanceclient v2 Client using its own way to act for someone: identity headers."""
    return GlanceClient(
        endpoint=url, token="unused", identity_headers=dict(identity.headers), timeout=30
    )


def run_in_terminal(args: list[str]) -> subprocess.CompletedProcess[str]:
    """Run a client command with a pseudo-terminal as stdin, output captured.

    `glance image-create` and `openstack image create` upload stdin as image
    data when it is not a terminal; a terminal makes them create the record only.
    """
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("OS_", "SKYLENS_", "OPENSTACK_"))
    }
    terminal, stdin = os.openpty()
    try:
        return subprocess.run(
            args, stdin=stdin, capture_output=True, text=True, timeout=60, env=env, check=False
        )
    finally:
        os.close(stdin)
        os.close(terminal)
