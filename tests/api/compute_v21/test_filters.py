"""Compute list filters, mapped to the Image API's, and `images_links` paging."""

from __future__ import annotations

import datetime as dt
import uuid
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from tests.support.images import create_image
from tests.support.seeding import set_image_columns
from tests.support.servers import RunningServer


def _ids(api: httpx.Client, path: str = "/v2.1/images", **params: str) -> list[str]:
    response = api.get(path, params=params)
    assert response.status_code == 200, response.text
    return [image["id"] for image in response.json()["images"]]


def _listed_of(
    api: httpx.Client, mine: set[str], path: str = "/v2.1/images", **params: str
) -> list[str]:
    """Which of `mine` the list holds: the servers are shared, and other tests' public
    images are listed too."""
    return [image_id for image_id in _ids(api, path, **params) if image_id in mine]


def test_name_status_and_sizes_filter(api: httpx.Client, server: RunningServer) -> None:
    tag = uuid.uuid4().hex[:8]
    small = create_image(api, name=f"small-{tag}", min_ram=256, min_disk=1)["id"]
    large = create_image(api, name=f"large-{tag}", min_ram=2048, min_disk=20)["id"]
    set_image_columns(server, large, status="active")
    mine = {small, large}

    assert _ids(api, name=f"small-{tag}") == [small]
    assert _listed_of(api, mine, status="ACTIVE") == [large]  # statuses are lower-cased
    assert _listed_of(api, mine, status="queued") == [small]
    # As through the Image API: the Compute API passes minRam/minDisk on unchanged.
    assert _listed_of(api, mine, minRam="2048") == [large]
    assert _listed_of(api, mine, "/v2.1/images/detail", minDisk="1") == [small]


def test_server_type_and_property_filters(api: httpx.Client) -> None:
    server_id = str(uuid.uuid4())
    snapshot = create_image(api, instance_uuid=server_id, image_type="snapshot")["id"]
    create_image(api, os_distro="fedora")
    other = create_image(api, os_distro="debian")["id"]

    assert _ids(api, server=server_id) == [snapshot]
    assert _ids(api, server=f"http://compute.example.com/v2.1/servers/{server_id}") == [snapshot]
    assert _ids(api, type="snapshot") == [snapshot]
    assert _ids(api, **{"property-os_distro": "debian"}) == [other]


def test_changes_since_lists_images_updated_since(api: httpx.Client, server: RunningServer) -> None:
    old = create_image(api)["id"]
    new = create_image(api)["id"]
    set_image_columns(server, old, updated_at=dt.datetime.fromisoformat("2020-01-01T00:00:00"))
    set_image_columns(server, new, updated_at=dt.datetime.fromisoformat("2024-06-01T00:00:00"))

    mine = {old, new}
    assert _listed_of(api, mine, **{"changes-since": "2024-01-01T00:00:00Z"}) == [new]
    assert set(_listed_of(api, mine, **{"changes-since": "2019-12-31"})) == mine


def test_a_bad_changes_since_is_400(api: httpx.Client) -> None:
    response = api.get("/v2.1/images", params={"changes-since": "yesterday"})

    assert response.status_code == 400
    assert list(response.json()) == ["badRequest"]


@pytest.mark.parametrize(
    ("limit", "message"),
    [("x", "limit param must be an integer"), ("-1", "limit param must be positive")],
)
def test_a_bad_limit_is_400(api: httpx.Client, limit: str, message: str) -> None:
    response = api.get("/v2.1/images/detail", params={"limit": limit})

    assert response.json() == {"badRequest": {"code": 400, "message": message}}


def test_an_unknown_marker_is_400(api: httpx.Client) -> None:
    response = api.get("/v2.1/images", params={"marker": str(uuid.uuid4())})

    assert response.status_code == 400
    assert list(response.json()) == ["badRequest"]


@pytest.mark.parametrize("collection", ["images", "images/detail"])
def test_paging_follows_images_links_next(
    api: httpx.Client, server: RunningServer, collection: str
) -> None:
    tag = uuid.uuid4().hex[:8]
    created = {create_image(api, kind=tag)["id"] for _ in range(5)}
    seen: list[str] = []
    url = f"/v2.1/{collection}?limit=2&property-kind={tag}"
    pages = 0
    while url:
        body = api.get(url).json()
        seen += [image["id"] for image in body["images"]]
        pages += 1
        links = body.get("images_links")
        if links is None:
            break
        (link,) = links
        assert link["rel"] == "next"
        assert link["href"].startswith(f"{server.url}/v2.1/{collection}?")
        query = parse_qs(urlsplit(link["href"]).query)
        assert query == {"limit": ["2"], "marker": [seen[-1]], "property-kind": [tag]}
        url = link["href"].removeprefix(server.url)

    assert sorted(seen) == sorted(created)
    assert len(seen) == 5
    assert pages == 3


def test_a_last_full_page_still_links_to_an_empty_one(api: httpx.Client) -> None:
    tag = uuid.uuid4().hex[:8]
    for _ in range(2):
        create_image(api, kind=tag)

    body = api.get("/v2.1/images", params={"limit": "2", "property-kind": tag}).json()
    after = api.get(body["images_links"][0]["href"]).json()

    assert after == {"images": []}


def test_limit_zero_lists_without_a_link(api: httpx.Client) -> None:
    """As Nova: a limit of 0 is no limit (the list is not empty), and no link."""
    image_id = create_image(api)["id"]

    body = api.get("/v2.1/images", params={"limit": "0"}).json()

    assert image_id in [image["id"] for image in body["images"]]
    assert "images_links" not in body
