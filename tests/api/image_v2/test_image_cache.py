"""The image cache through real servers: `skylens serve` with its default store in the
test Swift and a cache directory, on SQLite and PostgreSQL; raw HTTP for the cache
API's answers, errors and policy, downloads that fill and hit the cache, a corrupted
cache file, a server killed during a fill, and two servers sharing one database.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import signal
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from skylens.db.tables import images
from tests.conftest import BACKENDS
from tests.support.errors import assert_error
from tests.support.identities import admin_of, member_of, new_project
from tests.support.image_cache import (
    CACHE_ROUTES,
    active_image,
    cache_dir,
    cache_server,
    cached,
    client,
    wait_until_cached,
)
from tests.support.raw_http import wait_for
from tests.support.servers import (
    RunningServer,
    postgres_database,
)
from tests.support.swift import RunningSwift

MIB = 1 << 20


@pytest.fixture(scope="module", params=BACKENDS)
def server(
    request: pytest.FixtureRequest, swift: RunningSwift, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningServer]:
    data_dir = tmp_path_factory.mktemp(f"cache-{request.param}")
    with cache_server(swift, data_dir, request.param, node="node-a") as running:
        yield running


@pytest.fixture
def admin_api(server: RunningServer) -> Iterator[httpx.Client]:
    with client(server, admin_of(new_project())) as api:
        yield api


# -- the versions document -------------------------------------------------------------


def test_versions_advertise_the_cache_api(server: RunningServer) -> None:
    versions = httpx.get(f"{server.url}/versions").json()["versions"]
    ids = [(version["id"], version["status"]) for version in versions]

    assert ids[:5] == [
        ("v2.18", "CURRENT"),
        ("v2.17", "SUPPORTED"),
        ("v2.16", "SUPPORTED"),
        ("v2.15", "SUPPORTED"),
        ("v2.14", "SUPPORTED"),
    ]
    assert ("v2.13", "SUPPORTED") in ids
    assert [i for i, _ in ids].count("v2.15") == 1


# -- downloads -------------------------------------------------------------------------


def test_a_first_download_fills_the_cache_and_the_next_is_served_from_it(
    server: RunningServer, admin_api: httpx.Client
) -> None:
    data = os.urandom(3 * MIB + 11)
    image_id = active_image(admin_api, data)
    assert cached(admin_api, image_id) is None

    first = admin_api.get(f"/v2/images/{image_id}/file")
    assert first.status_code == 200
    assert first.content == data

    entry = cached(admin_api, image_id)
    assert entry is not None
    assert entry["size"] == len(data)
    assert entry["hits"] == 0
    assert entry["checksum"] == hashlib.sha512(data).hexdigest()
    assert (cache_dir(server) / image_id).read_bytes() == data

    second = admin_api.get(f"/v2/images/{image_id}/file")
    assert second.content == data
    assert second.headers["Content-MD5"] == hashlib.md5(data).hexdigest()  # noqa: S324
    after = cached(admin_api, image_id)
    assert after is not None
    assert after["hits"] == 1
    assert float(str(after["last_accessed"])) >= float(str(entry["last_accessed"]))


def test_a_range_of_a_cached_image_comes_from_the_cache(
    server: RunningServer, admin_api: httpx.Client
) -> None:
    data = os.urandom(MIB + 5)
    image_id = active_image(admin_api, data)
    # A range of an uncached image comes from the store and fills nothing.
    part = admin_api.get(f"/v2/images/{image_id}/file", headers={"Range": "bytes=10-99"})
    assert part.status_code == 206
    assert part.content == data[10:100]
    assert cached(admin_api, image_id) is None

    admin_api.get(f"/v2/images/{image_id}/file")
    part = admin_api.get(f"/v2/images/{image_id}/file", headers={"Range": "bytes=-7"})

    assert part.status_code == 206
    assert part.content == data[-7:]
    assert part.headers["Content-Range"] == f"bytes {len(data) - 7}-{len(data) - 1}/{len(data)}"
    entry = cached(admin_api, image_id)
    assert entry is not None
    assert entry["hits"] == 1


def test_a_corrupted_cache_file_is_detected_and_the_store_serves_the_image(
    server: RunningServer, admin_api: httpx.Client
) -> None:
    data = os.urandom(2 * MIB)
    image_id = active_image(admin_api, data)
    admin_api.get(f"/v2/images/{image_id}/file")
    path = cache_dir(server) / image_id
    with open(path, "r+b") as file:
        file.seek(MIB)
        file.write(b"\0" * 16)

    again = admin_api.get(f"/v2/images/{image_id}/file")

    assert again.content == data
    # The corrupted file went, and this download filled the cache anew.
    assert path.read_bytes() == data
    entry = cached(admin_api, image_id)
    assert entry is not None
    assert entry["hits"] == 0


def test_a_file_whose_hash_does_not_match_is_never_cached(
    server: RunningServer, admin_api: httpx.Client
) -> None:
    """The cache checks the bytes it fills against the image's os_hash_value: data
    changed in the store behind the service's back is served but not cached."""
    data = os.urandom(MIB)
    image_id = active_image(admin_api, data)
    # Seeded: the record's hash no longer matches what the store holds.
    engine = sa.create_engine(server.database_url.replace("postgresql://", "postgresql+psycopg://"))
    with engine.begin() as connection:
        connection.execute(
            sa.update(images).where(images.c.id == image_id).values(os_hash_value="0" * 128)
        )
    engine.dispose()

    assert admin_api.get(f"/v2/images/{image_id}/file").content == data
    assert cached(admin_api, image_id) is None
    assert not (cache_dir(server) / image_id).exists()


# -- the cache API ---------------------------------------------------------------------


def assert_glance_empty(response: httpx.Response) -> None:
    """Glance's empty answers: no body, an HTML type, then an explicit zero length."""
    assert response.content == b""
    names = [name.lower() for name in response.headers]
    assert names.index("content-type") < names.index("content-length")
    assert response.headers["content-type"] == "text/html; charset=UTF-8"
    assert response.headers["content-length"] == "0"


def test_queue_list_delete_and_clear(server: RunningServer, admin_api: httpx.Client) -> None:
    image_id = active_image(admin_api, os.urandom(MIB))

    queued = admin_api.put(f"/v2/cache/{image_id}")
    assert queued.status_code == 202
    assert_glance_empty(queued)
    entry = wait_until_cached(admin_api, image_id)
    assert entry["size"] == MIB
    # The fill leaves the queue just after its entry is recorded.
    wait_for(
        lambda: image_id not in admin_api.get("/v2/cache").json()["queued_images"],
        "the cached image out of the queue",
    )
    nodes = admin_api.get(f"/v2/cache/nodes/{image_id}")
    assert nodes.status_code == 200
    assert nodes.json() == ["node-a"]

    deleted = admin_api.delete(f"/v2/cache/{image_id}")
    assert deleted.status_code == 204
    assert cached(admin_api, image_id) is None
    assert admin_api.get(f"/v2/cache/nodes/{image_id}").json() == []
    assert not (cache_dir(server) / image_id).exists()

    admin_api.get(f"/v2/images/{image_id}/file")
    assert cached(admin_api, image_id) is not None
    for target in ("queue", "cache", ""):
        cleared = admin_api.delete("/v2/cache", headers={"x-image-cache-clear-target": target})
        assert cleared.status_code == 204
    assert admin_api.get("/v2/cache").json() == {"cached_images": [], "queued_images": []}
    assert not (cache_dir(server) / image_id).exists()


def test_clear_with_an_unknown_target_is_400(admin_api: httpx.Client) -> None:
    response = admin_api.delete("/v2/cache", headers={"x-image-cache-clear-target": "all"})

    assert_error(
        response,
        400,
        "If provided 'x-image-cache-clear-target' must be 'cache', 'queue' or empty string.",
    )


def test_clean_and_prune(server: RunningServer, admin_api: httpx.Client) -> None:
    image_id = active_image(admin_api, os.urandom(MIB))
    admin_api.get(f"/v2/images/{image_id}/file")
    stalled = cache_dir(server) / "incomplete" / str(uuid.uuid4())
    stalled.write_bytes(b"partial")
    os.utime(stalled, (0, 0))  # untouched since 1970: long past the stall time

    clean = admin_api.post("/v2/cache/clean")
    assert clean.status_code == 200
    assert_glance_empty(clean)
    assert not stalled.exists()
    assert cached(admin_api, image_id) is not None  # a good file stays

    gone = active_image(admin_api, os.urandom(1024))
    admin_api.get(f"/v2/images/{gone}/file")
    admin_api.delete(f"/v2/images/{gone}")
    assert cached(admin_api, gone) is not None
    admin_api.post("/v2/cache/clean")
    assert cached(admin_api, gone) is None  # a deleted image's file goes
    assert not (cache_dir(server) / gone).exists()

    prune = admin_api.post("/v2/cache/prune")
    assert prune.status_code == 200
    # Under max_size: nothing to prune.
    assert prune.json() == {"total_files_pruned": 0, "total_bytes_pruned": 0}


def test_queueing_needs_an_active_image_the_caller_sees(admin_api: httpx.Client) -> None:
    queued = admin_api.post(
        "/v2/images", json={"disk_format": "raw", "container_format": "bare"}
    ).json()["id"]
    missing = str(uuid.uuid4())

    assert_error(
        admin_api.put(f"/v2/cache/{queued}"),
        400,
        "Only images with status active can be targeted for queueing",
    )
    assert_error(admin_api.put(f"/v2/cache/{missing}"), 404, f"Image {missing} not found.")
    assert_error(admin_api.delete(f"/v2/cache/{missing}"), 404, f"Image {missing} not found.")
    assert_error(admin_api.get(f"/v2/cache/nodes/{missing}"), 404, f"Image {missing} not found.")


@pytest.mark.parametrize(("method", "path", "action"), CACHE_ROUTES)
def test_the_cache_api_is_for_admins(
    server: RunningServer, method: str, path: str, action: str
) -> None:
    project = new_project()
    with client(server, member_of(project)) as owner:
        image_id = active_image(owner, os.urandom(1024))
        response = owner.request(method, path.format(id=image_id))

    assert_error(response, 403, f"You are not authorized to complete {action} action.")


def test_the_cache_routes_keep_glances_405(admin_api: httpx.Client) -> None:
    assert admin_api.post("/v2/cache").status_code == 405
    assert admin_api.get(f"/v2/cache/{uuid.uuid4()}").status_code == 405


def test_metrics_count_hits_and_misses(server: RunningServer, admin_api: httpx.Client) -> None:
    image_id = active_image(admin_api, os.urandom(4096))
    admin_api.get(f"/v2/images/{image_id}/file")
    admin_api.get(f"/v2/images/{image_id}/file")

    text = httpx.get(f"{server.url}/metrics").text

    assert 'skylens_image_cache_lookups_total{result="hit"}' in text
    assert 'skylens_image_cache_lookups_total{result="miss"}' in text


def test_the_least_recently_accessed_images_go_when_the_cache_is_full(
    swift: RunningSwift, tmp_path: Path
) -> None:
    with (
        cache_server(swift, tmp_path, "sqlite", max_size=3 * MIB) as small,
        client(small, admin_of(new_project())) as api,
    ):
        first, second, third, fourth = (active_image(api, os.urandom(MIB)) for _ in range(4))
        too_big = active_image(api, os.urandom(3 * MIB + 1))
        for image_id in (first, second, third):
            api.get(f"/v2/images/{image_id}/file")
        api.get(f"/v2/images/{first}/file")  # a hit: `second` is now the oldest

        api.get(f"/v2/images/{fourth}/file")  # 4 MiB: over max_size
        assert api.get(f"/v2/images/{too_big}/file").status_code == 200

        held = {entry["image_id"] for entry in api.get("/v2/cache").json()["cached_images"]}
        assert held == {first, third, fourth}
        assert sorted(path.name for path in (tmp_path / "cache").iterdir()) == sorted(
            [first, third, fourth, "incomplete"]
        )
        pruned = api.post("/v2/cache/prune").json()
        assert pruned == {"total_files_pruned": 0, "total_bytes_pruned": 0}


# -- faults ----------------------------------------------------------------------------


def test_kill_9_during_a_fill_leaves_nothing_servable(swift: RunningSwift, tmp_path: Path) -> None:
    data = os.urandom(48 * MIB)
    admin = admin_of(new_project())
    with cache_server(swift, tmp_path, "sqlite") as first, client(first, admin) as api:
        image_id = active_image(api, data)
        with api.stream("GET", f"/v2/images/{image_id}/file") as response:
            stream = response.iter_raw(64 * 1024)
            next(stream)  # the fill has begun
            os.kill(first.pid, signal.SIGKILL)
            os.waitpid(first.pid, 0)
    incomplete = tmp_path / "cache" / "incomplete" / image_id
    assert incomplete.exists()  # the partial fill, under its incomplete name only
    assert not (tmp_path / "cache" / image_id).exists()

    os.utime(incomplete, (0, 0))  # as if long past the stall time

    with cache_server(swift, tmp_path, "sqlite") as second, client(second, admin) as api:
        # The new process removes the stalled fill when it starts.
        deadline = time.monotonic() + 30
        while incomplete.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not incomplete.exists()
        assert cached(api, image_id) is None
        assert api.get(f"/v2/images/{image_id}/file").content == data
        assert (tmp_path / "cache" / image_id).read_bytes() == data


def test_two_servers_sharing_postgresql_keep_their_own_caches(
    swift: RunningSwift, tmp_path: Path
) -> None:
    admin = admin_of(new_project())
    with contextlib.ExitStack() as stack:
        url = stack.enter_context(postgres_database(f"skylens_cache_two_{uuid.uuid4().hex[:8]}"))
        one = stack.enter_context(
            cache_server(swift, tmp_path / "one", "postgresql", url, node="node-one")
        )
        stores = tmp_path / "one" / "stores.toml"
        two = stack.enter_context(
            cache_server(swift, tmp_path / "two", "postgresql", url, "node-two", stores)
        )
        api_one = stack.enter_context(client(one, admin))
        api_two = stack.enter_context(client(two, admin))
        image_id = active_image(api_one, os.urandom(2 * MIB))

        assert api_one.put(f"/v2/cache/{image_id}").status_code == 202
        wait_until_cached(api_one, image_id)

        assert cached(api_two, image_id) is None
        for api in (api_one, api_two):
            assert api.get(f"/v2/cache/nodes/{image_id}").json() == ["node-one"]

        api_two.get(f"/v2/images/{image_id}/file")  # fills node-two's cache
        for api in (api_one, api_two):
            nodes = api.get(f"/v2/cache/nodes/{image_id}").json()
            assert nodes == ["node-one", "node-two"]

        assert api_one.delete(f"/v2/cache/{image_id}").status_code == 204
        assert cached(api_one, image_id) is None
        assert cached(api_two, image_id) is not None
        assert api_two.get(f"/v2/cache/nodes/{image_id}").json() == ["node-two"]
        assert (tmp_path / "two" / "cache" / image_id).exists()
        assert not (tmp_path / "one" / "cache" / image_id).exists()
