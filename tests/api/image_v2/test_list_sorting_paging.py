"""GET /v2/images: sort orders, and paging through `next` in every one of them.

Two syntaxes sort a list: the classic `sort_key=k&sort_dir=d` (each may repeat)
and `sort=k1:dir,k2`. The default is `created_at` descending. Every order is
completed with `created_at` and then `id`, so paging is stable: their direction
is the one given when exactly one was given, else descending. A NULL sorts as
the smallest value on every backend: first when ascending, last when descending.
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from urllib.parse import parse_qsl

import httpx
import pytest

from tests.support.listing import assert_bad_request, list_ids, walk_pages
from tests.support.seeding import insert_images
from tests.support.servers import RunningServer

T0 = dt.datetime(2020, 1, 1)


def _at(seconds: int) -> dt.datetime:
    return T0 + dt.timedelta(seconds=seconds)


# Names, sizes and formats repeat and are sometimes NULL; created_at ties too,
# so only the complete order (ending in `id`) is total.
ROWS: tuple[dict[str, Any], ...] = (
    {"name": "alpha", "size": 10, "disk_format": "raw", "container_format": "bare",
     "status": "active", "created_at": _at(0), "updated_at": _at(50)},
    {"name": "bravo", "size": None, "disk_format": "qcow2", "container_format": None,
     "status": "queued", "created_at": _at(1), "updated_at": _at(40)},
    {"name": "alpha", "size": 30, "disk_format": None, "container_format": "ovf",
     "status": "active", "created_at": _at(1), "updated_at": _at(40)},
    {"name": None, "size": 10, "disk_format": "raw", "container_format": "bare",
     "status": "queued", "created_at": _at(2), "updated_at": _at(30)},
    {"name": None, "size": None, "disk_format": "iso", "container_format": None,
     "status": "deactivated", "created_at": _at(3), "updated_at": _at(20)},
    {"name": "charlie", "size": 20, "disk_format": None, "container_format": "bare",
     "status": "active", "created_at": _at(3), "updated_at": _at(60)},
    {"name": "bravo", "size": 0, "disk_format": "qcow2", "container_format": "ovf",
     "status": "queued", "created_at": _at(3), "updated_at": _at(10)},
    {"name": None, "size": 30, "disk_format": "raw", "container_format": None,
     "status": "active", "created_at": _at(4), "updated_at": _at(10)},
    {"name": "delta", "size": None, "disk_format": None, "container_format": "bare",
     "status": "queued", "created_at": _at(5), "updated_at": _at(70)},
)  # fmt: skip


@pytest.fixture
def seeded(server: RunningServer, project: str) -> list[dict[str, Any]]:
    """ROWS as images of `project`, each with its id."""
    rows = [{**row, "owner": project} for row in ROWS]
    ids = insert_images(server, rows)
    return [{**row, "id": image_id} for row, image_id in zip(rows, ids, strict=True)]


def _null_smallest(value: Any) -> tuple[bool, Any]:
    return (value is not None, 0 if value is None else value)


def expected_order(rows: list[dict[str, Any]], meaning: str) -> list[str]:
    """The ids in the order `meaning` ("key:dir,...;ties:dir") defines, computed in Python."""
    keys, _, ties = meaning.partition(";ties:")
    complete = [key.split(":") for key in keys.split(",")]
    for tie_breaker in ("created_at", "id"):
        if tie_breaker not in {key for key, _ in complete}:
            complete.append([tie_breaker, ties])
    ordered = list(rows)
    for key, direction in reversed(complete):  # stable sorts, least significant key first
        ordered.sort(key=lambda row: _null_smallest(row[key]), reverse=direction == "desc")
    return [row["id"] for row in ordered]


# The query, and the complete order it means: the keys, then the direction of
# the created_at and id tie-breakers (the one direction given, else desc).
SORTS = [
    pytest.param("", "created_at:desc;ties:desc", id="default"),
    pytest.param("sort_dir=asc", "created_at:asc;ties:asc"),
    pytest.param("sort_key=name", "name:desc;ties:desc"),
    pytest.param("sort_key=name&sort_dir=asc", "name:asc;ties:asc"),
    pytest.param("sort_key=size&sort_dir=desc", "size:desc;ties:desc"),
    pytest.param("sort_key=container_format&sort_key=size&sort_dir=asc",
                 "container_format:asc,size:asc;ties:asc"),
    pytest.param("sort_key=name&sort_key=updated_at&sort_dir=asc&sort_dir=desc",
                 "name:asc,updated_at:desc;ties:desc"),
    pytest.param("sort_key=disk_format&sort_dir=desc&sort_key=created_at&sort_dir=asc",
                 "disk_format:desc,created_at:asc;ties:desc"),
    pytest.param("sort=name:asc", "name:asc;ties:asc"),
    pytest.param("sort=name", "name:desc;ties:desc"),
    pytest.param("sort=size:asc,name:desc", "size:asc,name:desc;ties:desc"),
    pytest.param("sort=size:asc,name:asc", "size:asc,name:asc;ties:desc"),
    pytest.param("sort=disk_format:asc,size", "disk_format:asc,size:desc;ties:desc"),
    pytest.param("sort=status:asc,updated_at:asc", "status:asc,updated_at:asc;ties:desc"),
    pytest.param("sort=id:asc", "id:asc;ties:asc"),
    pytest.param("sort= name : asc , size ", "name:asc,size:desc;ties:desc"),
]  # fmt: skip


@pytest.mark.parametrize(("query", "meaning"), SORTS)
def test_one_page_is_in_the_requested_order(
    api: httpx.Client, project: str, seeded: list[dict[str, Any]], query: str, meaning: str
) -> None:
    listed = list_ids(api, [("owner", project), *parse_qsl(query)])

    assert listed == expected_order(seeded, meaning)


@pytest.mark.parametrize("limit", ["1", "4"])
@pytest.mark.parametrize(("query", "meaning"), SORTS)
def test_following_next_visits_every_image_once_in_order(
    api: httpx.Client,
    project: str,
    seeded: list[dict[str, Any]],
    query: str,
    meaning: str,
    limit: str,
) -> None:
    pages = walk_pages(api, [("owner", project), *parse_qsl(query), ("limit", limit)])

    assert all(len(page) == int(limit) for page in pages[:-1])
    assert [image_id for page in pages for image_id in page] == expected_order(seeded, meaning)


def test_null_names_sort_first_ascending_and_last_descending(
    api: httpx.Client, project: str
) -> None:
    ids = {}
    for name in ("b", None, "a"):
        ids[name] = api.post("/v2/images", json={"name": name}).json()["id"]

    ascending = list_ids(api, {"owner": project, "sort": "name:asc"})
    descending = list_ids(api, {"owner": project, "sort": "name:desc"})

    assert ascending == [ids[None], ids["a"], ids["b"]]
    assert descending == [ids["b"], ids["a"], ids[None]]


def test_the_newest_image_comes_first_by_default(
    server: RunningServer, api: httpx.Client, project: str
) -> None:
    older, newer = insert_images(
        server, [{"owner": project, "created_at": _at(0)}, {"owner": project, "created_at": _at(1)}]
    )

    assert list_ids(api, {"owner": project}) == [newer, older]


# -- refusals -----------------------------------------------------------------------------

KEYS_MESSAGE = (
    "It must be one of the following: "
    "name, status, container_format, disk_format, size, id, created_at, updated_at."
)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"sort_key": "owner"}, f"Invalid sort key: owner. {KEYS_MESSAGE}"),
        ({"sort": "name:asc,tags:asc"}, f"Invalid sort key: tags. {KEYS_MESSAGE}"),
        ({"sort": ""}, f"Invalid sort key: . {KEYS_MESSAGE}"),
        ({"sort_dir": "up"}, "Invalid sort direction: up"),
        ({"sort_key": "name", "sort_dir": "ASC"}, "Invalid sort direction: ASC"),
        ({"sort": "name:sideways"}, "Invalid sort direction: sideways"),
        ({"sort": "name:asc", "sort_key": "size"}, "Old and new sorting syntax cannot be combined"),
        ({"sort": "name:asc", "sort_dir": "asc"}, "Old and new sorting syntax cannot be combined"),
    ],
)
def test_an_invalid_sort_is_400(api: httpx.Client, params: dict[str, str], message: str) -> None:
    assert_bad_request(api.get("/v2/images", params=params), message)


@pytest.mark.parametrize(
    "query",
    [
        "sort_key=name&sort_dir=asc&sort_dir=desc&sort_dir=asc",
        "sort_key=name&sort_key=size&sort_key=id&sort_dir=asc&sort_dir=desc",
        "sort_dir=asc&sort_dir=desc",
    ],
)
def test_several_sort_dirs_must_match_the_sort_keys_one_to_one(
    api: httpx.Client, query: str
) -> None:
    response = api.get(f"/v2/images?{query}")

    assert_bad_request(response, "Number of sort dirs does not match the number of sort keys")


# -- many sort keys -----------------------------------------------------------------------

# 25 items, most of them repeats. A repeat never changes the order (rows that reach
# it tied on its first place), so the expected order is computed from all 25.
MANY_KEYS = ",".join(
    f"{key}:{'asc' if index % 3 else 'desc'}"
    for index, key in enumerate(["disk_format", "size", "name", "status", "container_format"] * 5)
)


@pytest.mark.parametrize("limit", ["1", "4"])
def test_25_sort_keys_page_through_every_image_once_in_order(
    api: httpx.Client, project: str, seeded: list[dict[str, Any]], limit: str
) -> None:
    pages = walk_pages(api, [("owner", project), ("sort", MANY_KEYS), ("limit", limit)])

    assert [image_id for page in pages for image_id in page] == expected_order(
        seeded, f"{MANY_KEYS};ties:desc"
    )


def test_25_sort_keys_after_a_marker_give_the_next_page(
    api: httpx.Client, project: str, seeded: list[dict[str, Any]]
) -> None:
    ordered = expected_order(seeded, f"{MANY_KEYS};ties:desc")
    params = {"owner": project, "sort": MANY_KEYS, "limit": "3"}

    for position, marker in enumerate(ordered):
        page = list_ids(api, {**params, "marker": marker})
        assert page == ordered[position + 1 : position + 4], position


@pytest.mark.parametrize(
    ("params", "count"),
    [
        pytest.param([("sort", ",".join(["name:asc"] * 400))], 400, id="sort-400"),
        pytest.param([("sort", ",".join(["id"] * 2000))], 2000, id="sort-2000"),
        pytest.param([("sort_key", "name")] * 51, 51, id="sort_key-51"),
        pytest.param([("sort_key", "name"), *[("sort_dir", "asc")] * 51], 51, id="sort_dir-51"),
    ],
)
def test_more_than_50_sort_keys_are_400(
    api: httpx.Client, params: list[tuple[str, str]], count: int
) -> None:
    """Each key was a term of the statement (400 repeats after a marker held a
    worker for minutes); repeats are dropped, and more than 50 items refused."""
    marker = api.post("/v2/images", json={"name": "marker"}).json()["id"]

    response = api.get("/v2/images", params=[("marker", marker), *params])

    assert_bad_request(response, f"Too many sort keys: {count}. The maximum is 50.")


def test_50_sort_keys_are_accepted(api: httpx.Client, project: str) -> None:
    ids = [api.post("/v2/images", json={"name": name}).json()["id"] for name in ("b", "a")]

    listed = list_ids(api, {"owner": project, "sort": ",".join(["name:asc"] * 50)})

    assert listed == ids[::-1]
