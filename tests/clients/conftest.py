"""Fixtures: openstacksdk and glanceclient acting as any identity on `server`."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.clients import (
    GlanceFactory,
    ImageV2Connection,
    SdkFactory,
    glance_client,
    sdk_connection,
)
from tests.support.identities import Identity
from tests.support.servers import RunningServer


@pytest.fixture
def sdk(server: RunningServer) -> Iterator[SdkFactory]:
    """`sdk(identity)`: an openstacksdk Connection acting as `identity`."""
    connections: list[ImageV2Connection] = []

    def make(identity: Identity) -> ImageV2Connection:
        connection = sdk_connection(server.url, identity)
        connections.append(connection)
        return connection

    yield make
    for connection in connections:
        connection.close()


@pytest.fixture
def glance(server: RunningServer) -> GlanceFactory:
    """`glance(identity)`: a python-glanceclient v2 Client acting as `identity`."""
    return lambda identity: glance_client(server.url, identity)
