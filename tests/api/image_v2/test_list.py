"""GET /v2/images: the envelope, page size, `limit`, `marker` and the paging links.

Sorting is in test_list_sorting_paging.py, filters in test_list_filters.py and
who sees what in test_list_visibility.py.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import ClientFactory
from tests.support.identities import Identity, member_of, new_project
from tests.support.images import create_image
from tests.support.listing import assert_bad_request, list_ids, walk_pages
from tests.support.seeding import delete_images, insert_images
from tests.support.servers import RunningServer


def _create(api: httpx.Client, count: int, **attributes: object) -> list[str]:
    """Create images through the API; their ids, oldest first."""
    return [create_image(api, **attributes)["id"] for _ in range(count)]


# -- the envelope ---------------------------------------------------------------


def test_an_empty_list_has_images_first_and_schema_but_no_next(
    api: httpx.Client, project: str
) -> None:
    response = api.get("/v2/images", params={"owner": project})

    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {
        "images": [],
        "first": f"/v2/images?owner={project}",
        "schema": "/v2/schemas/images",
    }


def test_without_parameters_first_is_the_bare_collection_path(api: httpx.Client) -> None:
    body = api.get("/v2/images").json()

    assert body["first"] == "/v2/images"
    assert body["schema"] == "/v2/schemas/images"


def test_each_listed_image_is_shown_exactly_as_get_shows_it(
    api: httpx.Client, project: str
) -> None:
    created = api.post(
        "/v2/images",
        json={"name": "cirros", "tags": ["b", "a"], "os_distro": "cirros", "min_ram": 64},
    ).json()

    listed = api.get("/v2/images", params={"owner": project}).json()["images"]

    assert listed == [api.get(f"/v2/images/{created['id']}").json()]
    assert list(listed[0]) == list(created)


# -- page size and limit ----------------------------------------------------------


def test_a_page_holds_25_images_by_default_and_next_leads_to_the_rest(
    api: httpx.Client, project: str
) -> None:
    created = _create(api, 26)

    first = api.get("/v2/images", params={"owner": project}).json()

    assert len(first["images"]) == 25
    assert first["next"] == f"/v2/images?owner={project}&marker={first['images'][-1]['id']}"
    rest = api.get(first["next"]).json()
    assert "next" not in rest
    assert len(rest["images"]) == 1
    listed = [image["id"] for image in first["images"] + rest["images"]]
    assert sorted(listed) == sorted(created)


def test_limit_sets_the_page_size(api: httpx.Client, project: str) -> None:
    _create(api, 3)

    body = api.get("/v2/images", params={"owner": project, "limit": "2"}).json()

    assert len(body["images"]) == 2
    assert "next" in body


def test_a_page_that_is_not_full_has_no_next(api: httpx.Client, project: str) -> None:
    _create(api, 2)

    body = api.get("/v2/images", params={"owner": project, "limit": "3"}).json()

    assert len(body["images"]) == 2
    assert "next" not in body


def test_a_full_last_page_still_links_to_an_empty_next_page(
    api: httpx.Client, project: str
) -> None:
    _create(api, 2)

    pages = walk_pages(api, {"owner": project, "limit": "2"})

    assert [len(page) for page in pages] == [2, 0]


def test_limit_zero_returns_an_empty_page_without_next(api: httpx.Client, project: str) -> None:
    _create(api, 1)

    body = api.get("/v2/images", params={"owner": project, "limit": "0"}).json()

    assert body["images"] == []
    assert "next" not in body


@pytest.fixture
def thousand_and_one_images(server: RunningServer) -> Iterator[str]:
    """1001 images of a fresh project, seeded in bulk and removed afterwards."""
    owner = new_project()
    ids = insert_images(server, [{"owner": owner}] * 1001)
    yield owner
    delete_images(server, ids)


def test_limit_above_1000_is_silently_clamped_to_1000(
    http: ClientFactory, thousand_and_one_images: str
) -> None:
    api = http(member_of(thousand_and_one_images))

    body = api.get("/v2/images", params={"owner": thousand_and_one_images, "limit": "5000"}).json()

    assert len(body["images"]) == 1000
    assert body["next"].startswith(f"/v2/images?owner={thousand_and_one_images}&limit=5000&")


@pytest.mark.parametrize("limit", ["-1", "-100"])
def test_a_negative_limit_is_400(api: httpx.Client, limit: str) -> None:
    response = api.get("/v2/images", params={"limit": limit})

    assert_bad_request(response, "limit param must be positive")


@pytest.mark.parametrize("limit", ["abc", "1.5", "", "1e3"])
def test_a_limit_that_is_not_an_integer_is_400(api: httpx.Client, limit: str) -> None:
    response = api.get("/v2/images", params={"limit": limit})

    assert_bad_request(response, "limit param must be an integer")


def test_when_limit_repeats_the_last_value_counts(api: httpx.Client, project: str) -> None:
    _create(api, 3)

    body = api.get("/v2/images", params=[("limit", "1"), ("owner", project), ("limit", "2")]).json()

    assert len(body["images"]) == 2


# -- marker -----------------------------------------------------------------------------


def test_marker_starts_the_page_after_that_image(api: httpx.Client, project: str) -> None:
    _create(api, 3)
    everything = list_ids(api, {"owner": project})

    after_first = list_ids(api, {"owner": project, "marker": everything[0]})

    assert after_first == everything[1:]


def test_marker_of_the_last_image_gives_an_empty_page(api: httpx.Client, project: str) -> None:
    _create(api, 2)
    everything = list_ids(api, {"owner": project})

    assert list_ids(api, {"owner": project, "marker": everything[-1]}) == []


@pytest.mark.parametrize(
    "marker",
    [str(uuid.uuid4()), "not-a-uuid", "x" * 64, ""],
    ids=["unknown", "malformed", "longer-than-an-id", "empty"],
)
def test_a_marker_naming_no_image_is_400(api: httpx.Client, marker: str) -> None:
    response = api.get("/v2/images", params={"marker": marker})

    assert_bad_request(response, f"No image found with ID {marker}")


def test_a_marker_of_a_deleted_image_is_400(api: httpx.Client) -> None:
    [image_id] = _create(api, 1)
    assert api.delete(f"/v2/images/{image_id}").status_code == 204

    response = api.get("/v2/images", params={"marker": image_id})

    assert_bad_request(response, f"No image found with ID {image_id}")


def test_a_marker_the_caller_may_not_see_is_400_as_if_it_did_not_exist(
    api: httpx.Client, http: ClientFactory, stranger: Identity
) -> None:
    """Skylens deviation: Glance answers 403 here and so confirms the image exists."""
    [private] = _create(api, 1, visibility="private")

    response = http(stranger).get("/v2/images", params={"marker": private})

    assert_bad_request(response, f"No image found with ID {private}")


def test_a_marker_the_caller_may_see_but_does_not_list_still_positions_the_page(
    api: httpx.Client, http: ClientFactory, stranger: Identity, project: str
) -> None:
    """Another project's community image is visible (GET works) though not listed."""
    _create(api, 2, visibility="community")
    lister = http(stranger)
    first, second = list_ids(lister, {"owner": project, "visibility": "community"})

    assert list_ids(lister, {"owner": project}) == []
    page = list_ids(lister, {"owner": project, "visibility": "community", "marker": first})
    assert page == [second]
    assert list_ids(lister, {"owner": project, "marker": first}) == []


# -- links ------------------------------------------------------------------------------


def test_links_are_relative_urlencoded_and_keep_the_parameter_order(
    api: httpx.Client, project: str
) -> None:
    _create(api, 3, name="my image")

    body = api.get(
        "/v2/images",
        params=[("sort", "name:asc"), ("owner", project), ("name", "my image"), ("limit", "2")],
    ).json()

    query = f"sort=name%3Aasc&owner={project}&name=my+image&limit=2"
    assert body["first"] == f"/v2/images?{query}"
    assert body["next"] == f"/v2/images?{query}&marker={body['images'][-1]['id']}"


def test_in_lists_are_urlencoded_in_links(api: httpx.Client, project: str) -> None:
    body = api.get("/v2/images", params={"owner": project, "name": 'in:"a,b",c'}).json()

    assert body["first"] == f"/v2/images?owner={project}&name=in%3A%22a%2Cb%22%2Cc"


def test_the_request_marker_is_dropped_and_next_appends_the_new_one_last(
    api: httpx.Client, project: str
) -> None:
    _create(api, 3)
    everything = list_ids(api, {"owner": project})

    body = api.get(
        "/v2/images", params=[("marker", everything[0]), ("owner", project), ("limit", "1")]
    ).json()

    assert body["first"] == f"/v2/images?owner={project}&limit=1"
    assert body["next"] == f"/v2/images?owner={project}&limit=1&marker={everything[1]}"


def test_links_keep_only_the_last_value_of_a_repeated_parameter_in_its_first_place(
    api: httpx.Client, project: str
) -> None:
    body = api.get(
        "/v2/images",
        params=[("limit", "5"), ("owner", project), ("limit", "2"), ("sort_dir", "asc")],
    ).json()

    assert body["first"] == f"/v2/images?limit=2&owner={project}&sort_dir=asc"


def test_links_keep_every_repeated_tag(api: httpx.Client, project: str) -> None:
    """Skylens deviation: Glance keeps only the last tag, which widens the filter."""
    _create(api, 2, tags=["red", "round"])
    _create(api, 1, tags=["red"])

    body = api.get(
        "/v2/images",
        params=[("tag", "red"), ("owner", project), ("tag", "round"), ("limit", "1")],
    ).json()

    query = f"tag=red&tag=round&owner={project}&limit=1"
    assert body["first"] == f"/v2/images?{query}"
    assert body["next"] == f"/v2/images?{query}&marker={body['images'][0]['id']}"
    second = api.get(body["next"]).json()
    assert len(second["images"]) == 1
    assert api.get(second["next"]).json()["images"] == []


def test_links_keep_every_repeated_sort_key_and_sort_dir(api: httpx.Client, project: str) -> None:
    """Skylens deviation: Glance keeps only the last, so its `next` pages in another order."""
    _create(api, 2)

    body = api.get(
        "/v2/images",
        params=[
            ("sort_key", "name"),
            ("sort_dir", "asc"),
            ("owner", project),
            ("sort_key", "size"),
            ("sort_dir", "desc"),
            ("limit", "1"),
        ],
    ).json()

    query = f"sort_key=name&sort_key=size&sort_dir=asc&sort_dir=desc&owner={project}&limit=1"
    assert body["first"] == f"/v2/images?{query}"
    assert body["next"] == f"/v2/images?{query}&marker={body['images'][0]['id']}"
