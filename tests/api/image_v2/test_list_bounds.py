"""GET /v2/images: how much one request may ask for, and integers a column can hold.

Every tag and property filter is a term of the one statement a list becomes;
unbounded, 200 tags kept PostgreSQL planning for 17 s and 1,000 overflowed
SQLite's expression tree. Glance has no caps; Skylens refuses more than
`images.list_tags_max` (20) tags, `images.list_property_filters_max` (50)
property filters and `images.list_parameters_max` (128) parameters with a 400,
and answers up to those caps with conditions whose cost does not grow with
their number. Integers beyond their column's range are refused as Glance words
it, instead of overflowing the database driver (500).
"""

from __future__ import annotations

import uuid
from pathlib import Path

import httpx
import pytest

from tests.support.identities import member_of, new_project
from tests.support.listing import assert_bad_request, list_ids
from tests.support.seeding import insert_image
from tests.support.servers import RunningServer, dedicated_server


def _words(count: int) -> list[str]:
    return [f"w{index}-{uuid.uuid4().hex[:6]}" for index in range(count)]


# -- tags ---------------------------------------------------------------------------------


def test_20_tags_find_the_images_carrying_all_of_them(
    server: RunningServer, api: httpx.Client, project: str
) -> None:
    tags = _words(20)
    every = insert_image(server, owner=project, tags=tags)
    insert_image(server, owner=project, tags=tags[:-1])  # one short
    insert_image(server, owner=project, tags=tags[1:])  # another one short

    assert list_ids(api, [("tag", tag) for tag in tags]) == [every]
    # Repeats count once: both short images lack one of these two.
    assert list_ids(api, [("tag", tags[0]), ("tag", tags[-1])] * 10) == [every]


def test_more_than_20_tags_are_400(api: httpx.Client) -> None:
    response = api.get("/v2/images", params=[("tag", "x")] * 21)

    assert_bad_request(response, "Too many tag filters: 21. The maximum is 20.")


# -- properties ---------------------------------------------------------------------------


def test_50_property_filters_find_the_images_carrying_all_of_them(
    server: RunningServer, api: httpx.Client, project: str
) -> None:
    properties = {name: f"value-{name}" for name in _words(50)}
    names = list(properties)
    every = insert_image(server, owner=project, properties=properties)
    other = insert_image(server, owner=project, properties={**properties, names[7]: "other"})
    insert_image(server, owner=project, properties={n: properties[n] for n in names[1:]})

    assert list_ids(api, properties) == [every]
    assert list_ids(api, {names[0]: properties[names[0]], names[7]: "other"}) == [other]


def test_more_than_50_property_filters_are_400(api: httpx.Client) -> None:
    response = api.get("/v2/images", params=dict.fromkeys(_words(51), "x"))

    assert_bad_request(response, "Too many property filters: 51. The maximum is 50.")


def test_more_than_128_parameters_are_400(api: httpx.Client) -> None:
    response = api.get("/v2/images", params=[("name", "x")] * 129)

    assert_bad_request(response, "Too many query parameters: 129. The maximum is 128.")


# -- integers -----------------------------------------------------------------------------

HUGE = "99999999999999999999"  # past 64 bits
BIG, INT = 2**63 - 1, 2**31 - 1


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"size_min": HUGE}, f"'size_min' value out of range, must not exceed {BIG}."),
        ({"size_max": HUGE}, f"'size_max' value out of range, must not exceed {BIG}."),
        ({"size_max": f"-{HUGE}"},
         f"'size_max' value out of range, must not be less than {-BIG - 1}."),
        ({"virtual_size_min": HUGE},
         f"'virtual_size_min' value out of range, must not exceed {BIG}."),
        ({"size": HUGE}, f"'size' value out of range, must not exceed {BIG}."),
        ({"min_disk": HUGE}, f"'min_disk' value out of range, must not exceed {INT}."),
        ({"min_disk": str(INT + 1)}, f"'min_disk' value out of range, must not exceed {INT}."),
        ({"min_ram": HUGE}, f"'min_ram' value out of range, must not exceed {INT}."),
        ({"min_ram_max": str(-INT - 2)},
         f"'min_ram_max' value out of range, must not be less than {-INT - 1}."),
    ],
)  # fmt: skip
def test_an_integer_beyond_its_column_is_400(
    api: httpx.Client, params: dict[str, str], message: str
) -> None:
    assert_bad_request(api.get("/v2/images", params=params), message)


def test_integers_at_their_columns_limits_are_accepted(
    server: RunningServer, api: httpx.Client, project: str
) -> None:
    image = insert_image(server, owner=project, size=BIG, min_disk=INT)

    assert list_ids(api, {"size_min": str(BIG)}) == [image]
    assert list_ids(api, {"min_disk": str(INT), "size_max": str(BIG)}) == [image]
    assert list_ids(api, {"size_max": str(-BIG - 1)}) == []


# -- the caps are options -----------------------------------------------------------------


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_the_caps_are_configurable(tmp_path: Path, backend: str) -> None:
    options = {
        "SKYLENS_IMAGES_LIST_TAGS_MAX": "2",
        "SKYLENS_IMAGES_LIST_PROPERTY_FILTERS_MAX": "1",
        "SKYLENS_IMAGES_LIST_SORT_KEYS_MAX": "3",
        "SKYLENS_IMAGES_LIST_PARAMETERS_MAX": "5",
    }
    with (
        dedicated_server(tmp_path, backend, extra_env=options) as own,
        httpx.Client(
            base_url=own.url,
            headers={**member_of(new_project()).headers, "Accept": "application/json"},
        ) as client,
    ):
        assert client.get("/v2/images", params=[("tag", "a")] * 2).status_code == 200
        assert_bad_request(
            client.get("/v2/images", params=[("tag", "a")] * 3),
            "Too many tag filters: 3. The maximum is 2.",
        )
        assert_bad_request(
            client.get("/v2/images", params={"a": "1", "b": "2"}),
            "Too many property filters: 2. The maximum is 1.",
        )
        assert_bad_request(
            client.get("/v2/images", params={"sort": "name,name,name,name"}),
            "Too many sort keys: 4. The maximum is 3.",
        )
        assert_bad_request(
            client.get("/v2/images", params=[("name", "x")] * 6),
            "Too many query parameters: 6. The maximum is 5.",
        )
