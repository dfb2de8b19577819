"""The image cache through real clients, on SQLite and PostgreSQL: python-glanceclient
(library and `glance cache-*`), the `openstack cached image ...` commands and
openstacksdk, against a server whose default store is the test Swift.

The command lines act as the service's default identity (an admin), so every one of
them is allowed; each must also say nothing on stderr, since several of them print
an error and still exit 0 when the server refuses.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
from glanceclient import exc as glance_exc
from openstack import exceptions as sdk_exc

from tests.clients.test_image_data_clients import _glance, _openstack
from tests.conftest import BACKENDS
from tests.support.clients import GlanceFactory, SdkFactory
from tests.support.identities import Identity, admin_of, new_project
from tests.support.image_cache import (
    active_image,
    cache_server,
    cached,
    client,
    wait_until_cached,
)
from tests.support.servers import RunningServer
from tests.support.swift import RunningSwift

MIB = 1 << 20
# openstacksdk's microversion discovery asks `GET /v2/`, which is 404 in Glance as in
# Skylens (glance-wire-notes: Versions), and keystoneauth says so on stderr; the
# command goes on without a microversion.
DISCOVERY_WARNING = "Cannot determine endpoint data for service image"


def osc_errors(err: str) -> list[str]:
    """What an `openstack` command said on stderr, but the discovery warning."""
    return [line for line in err.splitlines() if line.strip() != DISCOVERY_WARNING]


@pytest.fixture(scope="module", params=BACKENDS)
def server(
    request: pytest.FixtureRequest, swift: RunningSwift, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningServer]:
    data_dir = tmp_path_factory.mktemp(f"cache-clients-{request.param}")
    with cache_server(swift, data_dir, request.param, node="node-c") as running:
        yield running


def new_image(server: RunningServer, data: bytes = b"") -> str:
    with client(server, admin_of(new_project())) as api:
        return active_image(api, data or os.urandom(MIB))


def state(server: RunningServer) -> dict[str, list[object]]:
    with client(server, admin_of(new_project())) as api:
        body: dict[str, list[object]] = api.get("/v2/cache").json()
        return body


def wait_cached(server: RunningServer, image_id: str) -> None:
    with client(server, admin_of(new_project())) as api:
        wait_until_cached(api, image_id)


def is_cached(server: RunningServer, image_id: str) -> bool:
    with client(server, admin_of(new_project())) as api:
        return cached(api, image_id) is not None


# -- python-glanceclient, the library --------------------------------------------------


def test_glanceclient_queues_lists_and_deletes(
    server: RunningServer, glance: GlanceFactory, admin: Identity
) -> None:
    cache = glance(admin).cache
    image_id = new_image(server)

    cache.queue(image_id)
    wait_cached(server, image_id)
    listed = cache.list()
    assert image_id in [entry["image_id"] for entry in listed["cached_images"]]
    assert list(cache.list_cached_nodes(image_id)) == ["node-c"]

    cache.delete(image_id)
    assert not is_cached(server, image_id)
    assert list(cache.list_cached_nodes(image_id)) == []


def test_glanceclient_clears_cleans_and_prunes(
    server: RunningServer, glance: GlanceFactory, admin: Identity
) -> None:
    cache = glance(admin).cache
    image_id = new_image(server)
    cache.queue(image_id)
    wait_cached(server, image_id)

    cache.clean()
    assert is_cached(server, image_id)
    pruned = cache.prune()
    assert pruned["total_files_pruned"] == 0
    cache.clear("cache")
    assert not is_cached(server, image_id)
    cache.clear("both")
    assert state(server) == {"cached_images": [], "queued_images": []}


def test_glanceclient_members_are_refused(
    server: RunningServer, glance: GlanceFactory, member: Identity
) -> None:
    cache = glance(member).cache
    with pytest.raises(glance_exc.HTTPForbidden):
        cache.list()
    with pytest.raises(glance_exc.HTTPForbidden):
        cache.prune()


# -- the glance command line -----------------------------------------------------------


def test_glance_cli_cache_commands(server: RunningServer) -> None:
    image_id = new_image(server)

    code, out, err = _glance(server, "cache-queue", image_id)
    assert (code, err) == (0, "")
    wait_cached(server, image_id)
    code, out, err = _glance(server, "cache-list")
    assert (code, err) == (0, "")
    assert image_id in out
    code, out, err = _glance(server, "cache-nodes-list", image_id)
    assert (code, err) == (0, "")
    assert "node-c" in out

    code, out, err = _glance(server, "cache-delete", image_id)
    assert (code, err) == (0, "")
    assert not is_cached(server, image_id)

    code, out, err = _glance(server, "cache-clean")
    assert (code, err) == (0, "")
    code, out, err = _glance(server, "cache-prune")
    assert (code, err) == (0, "")
    assert "Pruned 0 file(s), 0 byte(s)." in out
    for target in ("cache", "queue", "both"):
        code, out, err = _glance(server, "cache-clear", "--target", target)
        assert (code, err) == (0, "")


def test_glance_cli_reports_an_unknown_image(server: RunningServer) -> None:
    missing = str(uuid.uuid4())

    _code, _out, err = _glance(server, "cache-queue", missing)

    assert f"Image {missing} not found." in err


# -- the openstack command line --------------------------------------------------------


def test_openstack_cli_cached_image_commands(server: RunningServer) -> None:
    image_id = new_image(server)

    code, out, err = _openstack(server, "cached", "image", "queue", image_id)
    assert (code, osc_errors(err)) == (0, [])
    wait_cached(server, image_id)
    code, out, err = _openstack(server, "cached", "image", "list", "-f", "value")
    assert (code, osc_errors(err)) == (0, [])
    assert any(line.startswith(image_id) and "cached" in line for line in out.splitlines())

    code, out, err = _openstack(server, "cached", "image", "delete", image_id)
    assert (code, osc_errors(err)) == (0, [])
    assert not is_cached(server, image_id)

    code, out, err = _openstack(server, "cached", "image", "clear")
    assert (code, osc_errors(err)) == (0, [])
    assert state(server) == {"cached_images": [], "queued_images": []}


# -- openstacksdk ----------------------------------------------------------------------


def test_openstacksdk_cache_calls(server: RunningServer, sdk: SdkFactory, admin: Identity) -> None:
    image = sdk(admin).image
    image_id = new_image(server)

    image.queue_image(image_id)
    wait_cached(server, image_id)
    listed = image.get_image_cache()
    assert image_id in [entry.image_id for entry in listed.cached_images]
    assert image.cached_image_nodes(image_id) == ["node-c"]
    image.clean_cache()
    assert image.prune_cache() == {"total_files_pruned": 0, "total_bytes_pruned": 0}

    image.cache_delete_image(image_id)
    assert not is_cached(server, image_id)
    image.clear_cache("queue")
    image.clear_cache()
    assert state(server) == {"cached_images": [], "queued_images": []}


def test_openstacksdk_refuses_members(
    server: RunningServer, sdk: SdkFactory, member: Identity
) -> None:
    with pytest.raises(sdk_exc.ForbiddenException):
        sdk(member).image.get_image_cache()
