"""Image locations and the image cache together: a server with the locations API, an
http store `web` over the loopback web server of files and a cache directory. An
image whose data is only at a URL is read from there once, filling the cache, and
then served from the cache (whole and ranged) without asking the web server again;
the versions document lists what Glance 33 lists with both on.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator

import httpx
import pytest

from skylens.api.versions import IMAGE_API_VERSIONS, image_api_versions
from tests.api.image_v2.test_import import new_image
from tests.conftest import BACKENDS
from tests.support.identities import admin_of, new_project
from tests.support.image_cache import cached, client, wait_until_cached
from tests.support.locations import locations_server_on
from tests.support.servers import RunningServer
from tests.support.web_source import WebSource

DATA = random.Random(23).randbytes(2 * (1 << 20) + 7)
PATCH = {"Content-Type": "application/openstack-images-v2.1-json-patch"}


@pytest.fixture(scope="module", params=BACKENDS)
def server(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    web_files: WebSource,
) -> Iterator[RunningServer]:
    cache = tmp_path_factory.mktemp(f"locations-cache-{request.param}")
    lines = ("", "[image_cache]", f'dir = "{cache}"', "poll_seconds = 0.5")
    with locations_server_on(tmp_path_factory, request.param, web_files, *lines) as running:
        yield running


@pytest.fixture
def admin_api(server: RunningServer) -> Iterator[httpx.Client]:
    with client(server, admin_of(new_project())) as api:
        yield api


def located(api: httpx.Client, files: WebSource) -> tuple[str, str]:
    """A new active image whose only data is at a URL of `files`; its id and file name."""
    name = f"{uuid.uuid4().hex}.img"
    files.files[name] = DATA
    add = {
        "op": "add",
        "path": "/locations/-",
        "value": {"url": files.url(f"/files/{name}"), "metadata": {}},
    }
    image_id = new_image(api)
    response = api.patch(f"/v2/images/{image_id}", json=[add], headers=PATCH)
    assert response.status_code == 200, response.text
    assert response.json()["stores"] == "web"
    return image_id, name


def fetches(files: WebSource, name: str) -> int:
    return sum(1 for seen in files.requests if name in seen.path)


def test_an_image_at_a_url_fills_the_cache_and_is_then_served_from_it(
    admin_api: httpx.Client, web_files: WebSource
) -> None:
    image_id, name = located(admin_api, web_files)
    assert cached(admin_api, image_id) is None

    first = admin_api.get(f"/v2/images/{image_id}/file")

    assert (first.status_code, first.content) == (200, DATA)
    entry = wait_until_cached(admin_api, image_id)
    assert entry["size"] == len(DATA)
    before = fetches(web_files, name)

    second = admin_api.get(f"/v2/images/{image_id}/file")
    part = admin_api.get(f"/v2/images/{image_id}/file", headers={"Range": "bytes=100-199"})

    assert (second.status_code, second.content) == (200, DATA)
    assert (part.status_code, part.content) == (206, DATA[100:200])
    assert part.headers["Content-Range"] == f"bytes 100-199/{len(DATA)}"
    assert fetches(web_files, name) == before  # the web server was not asked again
    after = cached(admin_api, image_id)
    assert after is not None
    assert after["hits"] == 2


def test_a_ranged_download_of_an_uncached_image_at_a_url_fills_nothing(
    admin_api: httpx.Client, web_files: WebSource
) -> None:
    image_id, name = located(admin_api, web_files)

    part = admin_api.get(f"/v2/images/{image_id}/file", headers={"Range": "bytes=1000-1999"})

    assert (part.status_code, part.content) == (206, DATA[1000:2000])
    assert [seen.range for seen in web_files.requests if name in seen.path][-1] == "bytes=1000-"
    assert cached(admin_api, image_id) is None


def test_the_versions_document_lists_the_caches_versions(server: RunningServer) -> None:
    versions = httpx.get(f"{server.url}/versions").json()["versions"]

    ids = [(version["id"], version["status"]) for version in versions]

    assert ids == [(f"v{version}", status) for version, status in image_api_versions(True, True)]
    assert ids[:2] == [("v2.18", "CURRENT"), ("v2.17", "SUPPORTED")]
    assert [i for i, _ in ids].count("v2.17") == 1


def test_the_versions_listed_with_each_combination_are_glances() -> None:
    neither = image_api_versions()
    locations = image_api_versions(locations_api=True)
    cache = image_api_versions(cache=True)

    assert neither == IMAGE_API_VERSIONS
    assert [v for v, s in neither if s == "CURRENT"] == ["2.15"]
    # Without a cache, 2.17 is CURRENT right below 2.8, and 2.15 turns SUPPORTED.
    names = [v for v, _ in locations]
    assert names[names.index("2.8") + 1] == "2.17"
    assert [v for v, s in locations if s == "CURRENT"] == ["2.17"]
    assert ("2.15", "SUPPORTED") in locations
    # A cache lists 2.14-2.18 on top, 2.18 CURRENT, with or without the locations API.
    assert image_api_versions(cache=True, locations_api=True) == cache
    assert [v for v, _ in cache[:5]] == ["2.18", "2.17", "2.16", "2.15", "2.14"]
    assert [v for v, s in cache if s == "CURRENT"] == ["2.18"]
