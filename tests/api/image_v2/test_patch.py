"""PATCH /v2/images/{image_id}: Glance's json-patch media types and their rules."""

from __future__ import annotations

import datetime as dt
import re
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from tests.conftest import ClientFactory
from tests.support.errors import assert_error, error_message
from tests.support.identities import Identity
from tests.support.images import PATCH_V20, PATCH_V21, create_image, patch_image, show_image
from tests.support.seeding import activate, set_image_columns
from tests.support.servers import RunningServer

ACCEPT_PATCH = f"{PATCH_V20}, {PATCH_V21}"


@pytest.fixture
def image(api: httpx.Client) -> dict[str, Any]:
    """A queued image of the `member` with one extra property and two tags."""
    return create_image(api, name="before", os_distro="ubuntu", tags=["a", "b"])


def ok(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    body: dict[str, Any] = response.json()
    return body


# -- the two media types -------------------------------------------------------


def test_v2_1_replace_add_and_remove_apply_in_order(
    api: httpx.Client, image: dict[str, Any]
) -> None:
    changed = ok(
        patch_image(
            api,
            image["id"],
            [
                {"op": "replace", "path": "/name", "value": "after"},
                {"op": "add", "path": "/hw_disk_bus", "value": "scsi"},
                {"op": "remove", "path": "/os_distro"},
                {"op": "replace", "path": "/min_ram", "value": 1024},
            ],
        )
    )

    assert (changed["name"], changed["hw_disk_bus"], changed["min_ram"]) == ("after", "scsi", 1024)
    assert "os_distro" not in changed
    assert show_image(api, image["id"]) == changed


def test_v2_0_uses_the_operation_name_as_the_member_holding_the_path(
    api: httpx.Client, image: dict[str, Any]
) -> None:
    changed = ok(
        patch_image(
            api,
            image["id"],
            [
                {"replace": "/name", "value": "after"},
                {"add": "/hw_disk_bus", "value": "scsi"},
                {"remove": "/os_distro"},
            ],
            PATCH_V20,
        )
    )

    assert (changed["name"], changed["hw_disk_bus"]) == ("after", "scsi")
    assert "os_distro" not in changed


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("/name", None),
        ("/visibility", "private"),
        ("/protected", True),
        ("/os_hidden", True),
        ("/min_ram", 2048),
        ("/min_disk", 20),
        ("/container_format", "bare"),
        ("/disk_format", "raw"),
    ],
)
def test_every_writable_attribute_can_be_replaced(
    api: httpx.Client, image: dict[str, Any], path: str, value: object
) -> None:
    changed = ok(patch_image(api, image["id"], [{"op": "replace", "path": path, "value": value}]))

    assert changed[path[1:]] == value


def test_v2_1_add_on_an_existing_key_replaces_it(api: httpx.Client, image: dict[str, Any]) -> None:
    changed = ok(
        patch_image(
            api,
            image["id"],
            [
                {"op": "add", "path": "/os_distro", "value": "debian"},
                {"op": "add", "path": "/name", "value": "added"},
            ],
        )
    )

    assert (changed["os_distro"], changed["name"]) == ("debian", "added")


@pytest.mark.parametrize("key", ["os_distro", "name"])
def test_v2_0_add_on_an_existing_key_is_409(
    api: httpx.Client, image: dict[str, Any], key: str
) -> None:
    response = patch_image(api, image["id"], [{"add": f"/{key}", "value": "x"}], PATCH_V20)

    assert_error(response, 409, f"Property {key} already present.", detail=True)


def test_replace_on_a_missing_property_is_409(api: httpx.Client, image: dict[str, Any]) -> None:
    response = patch_image(api, image["id"], [{"op": "replace", "path": "/nope", "value": "x"}])

    assert_error(response, 409, "Property nope does not exist.", detail=True)


def test_remove_of_a_missing_property_is_409(api: httpx.Client, image: dict[str, Any]) -> None:
    response = patch_image(api, image["id"], [{"op": "remove", "path": "/nope"}])

    assert_error(response, 409, "Property nope does not exist.", detail=True)


@pytest.mark.parametrize("key", ["name", "visibility", "tags", "min_ram", "owner"])
def test_remove_of_a_base_attribute_is_403(
    api: httpx.Client, image: dict[str, Any], key: str
) -> None:
    response = patch_image(api, image["id"], [{"op": "remove", "path": f"/{key}"}])

    assert_error(response, 403, f"Property {key} may not be removed.", detail=True)


def test_a_failing_operation_leaves_the_image_unchanged(
    api: httpx.Client, image: dict[str, Any]
) -> None:
    response = patch_image(
        api,
        image["id"],
        [
            {"op": "replace", "path": "/name", "value": "after"},
            {"op": "remove", "path": "/nope"},
        ],
    )

    assert response.status_code == 409
    assert show_image(api, image["id"]) == image


def test_an_empty_patch_returns_the_unchanged_image(
    api: httpx.Client, image: dict[str, Any]
) -> None:
    assert ok(patch_image(api, image["id"], [])) == image


# -- tags ----------------------------------------------------------------------


def test_replace_tags_replaces_the_whole_set_and_collapses_duplicates(
    api: httpx.Client, image: dict[str, Any]
) -> None:
    changed = ok(
        patch_image(
            api, image["id"], [{"op": "replace", "path": "/tags", "value": ["c", "c", "d"]}]
        )
    )

    assert sorted(changed["tags"]) == ["c", "d"]


def test_v2_1_add_tags_also_replaces_the_set(api: httpx.Client, image: dict[str, Any]) -> None:
    changed = ok(patch_image(api, image["id"], [{"op": "add", "path": "/tags", "value": ["z"]}]))

    assert changed["tags"] == ["z"]


def test_appending_one_tag_with_a_dash_pointer_is_400(
    api: httpx.Client, image: dict[str, Any]
) -> None:
    response = patch_image(api, image["id"], [{"op": "add", "path": "/tags/-", "value": "c"}])

    assert_error(response, 400, "Invalid JSON pointer for this resource: '/tags/-'")


def test_a_tag_longer_than_255_characters_is_400(api: httpx.Client, image: dict[str, Any]) -> None:
    tag = "t" * 256
    response = patch_image(api, image["id"], [{"op": "replace", "path": "/tags", "value": [tag]}])

    assert response.status_code == 400
    assert error_message(response) == (
        f"Provided object does not match schema 'image': '{tag}' is too long"
    )


# -- what may not be changed ---------------------------------------------------


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("status", "active"),
        ("id", "d0e1c9bd-7bd3-4bd8-9a1c-9c2a4a8fc8b8"),
        ("checksum", "d41d8cd98f00b204e9800998ecf8427e"),
        ("size", 1),
        ("virtual_size", 1),
        ("created_at", "2024-01-01T00:00:00Z"),
        ("updated_at", "2024-01-01T00:00:00Z"),
        ("os_hash_algo", "sha512"),
        ("os_hash_value", "00"),
        ("self", "x"),
        ("file", "x"),
        ("schema", "x"),
        ("direct_url", "x"),
    ],
)
def test_a_read_only_attribute_is_403(
    api: httpx.Client, image: dict[str, Any], key: str, value: object
) -> None:
    response = patch_image(api, image["id"], [{"op": "replace", "path": f"/{key}", "value": value}])

    assert_error(response, 403, f"Attribute '{key}' is read-only.")


def test_removing_a_read_only_attribute_is_also_read_only(
    api: httpx.Client, image: dict[str, Any]
) -> None:
    response = patch_image(api, image["id"], [{"op": "remove", "path": "/status"}])

    assert_error(response, 403, "Attribute 'status' is read-only.")


@pytest.mark.parametrize("key", ["os_glance_import_task", "location", "deleted", "deleted_at"])
@pytest.mark.parametrize("op", ["add", "remove"])
def test_a_reserved_attribute_is_403(
    api: httpx.Client, image: dict[str, Any], key: str, op: str
) -> None:
    response = patch_image(api, image["id"], [{"op": op, "path": f"/{key}", "value": "x"}])

    assert_error(response, 403, f"Attribute '{key}' is reserved.")


def test_locations_cannot_be_changed_while_they_are_hidden(
    api: httpx.Client, image: dict[str, Any]
) -> None:
    """More in test_locations_hidden.py; Glance refuses an empty list first."""
    value = [{"url": "http://example.com/x", "metadata": {}}]
    response = patch_image(
        api, image["id"], [{"op": "replace", "path": "/locations", "value": value}]
    )

    assert_error(response, 403, "It's not allowed to update locations if locations are invisible.")


@pytest.mark.parametrize("key", ["disk_format", "container_format"])
def test_a_format_of_an_image_with_data_cannot_be_replaced(
    api: httpx.Client, server: RunningServer, key: str
) -> None:
    image = create_image(api, disk_format="raw", container_format="bare")
    activate(server, image["id"])

    for value in ("ami", image[key]):
        response = patch_image(
            api, image["id"], [{"op": "replace", "path": f"/{key}", "value": value}]
        )

        assert_error(response, 403, f"Attribute {key} can be only replaced for a queued image.")


def test_an_active_images_other_attributes_can_still_change(
    api: httpx.Client, server: RunningServer, image: dict[str, Any]
) -> None:
    activate(server, image["id"])

    changed = ok(patch_image(api, image["id"], [{"op": "replace", "path": "/name", "value": "x"}]))

    assert (changed["name"], changed["status"]) == ("x", "active")


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (-1, "Invalid value '-1' for parameter 'min_disk': Cannot be a negative value"),
        (2**31, "'min_disk' value out of range, must not exceed 2147483647."),
    ],
)
def test_min_disk_out_of_range_is_400(
    api: httpx.Client, image: dict[str, Any], value: int, message: str
) -> None:
    response = patch_image(
        api, image["id"], [{"op": "replace", "path": "/min_disk", "value": value}]
    )

    assert_error(response, 400, message)


def test_a_value_the_schema_refuses_is_400(api: httpx.Client, image: dict[str, Any]) -> None:
    response = patch_image(
        api, image["id"], [{"op": "replace", "path": "/visibility", "value": "x"}]
    )

    assert response.status_code == 400
    assert error_message(response) == (
        "Provided object does not match schema 'image': "
        "'x' is not one of ['community', 'public', 'private', 'shared']"
    )


def test_a_new_property_key_longer_than_255_characters_is_400(
    api: httpx.Client, image: dict[str, Any]
) -> None:
    response = patch_image(api, image["id"], [{"op": "add", "path": f"/{'k' * 256}", "value": "v"}])

    assert_error(response, 400, "Custom property should not be greater than 255 characters.")


# -- who may change what -------------------------------------------------------


def test_a_member_may_not_change_the_owner(
    api: httpx.Client, image: dict[str, Any], other_project: str
) -> None:
    response = patch_image(
        api, image["id"], [{"op": "replace", "path": "/owner", "value": other_project}]
    )

    assert_error(response, 403, "Owner can't be updated by non admin.", detail=True)


def test_an_admin_may_change_the_owner(
    http: ClientFactory, admin: Identity, image: dict[str, Any], other_project: str
) -> None:
    changed = ok(
        patch_image(
            http(admin), image["id"], [{"op": "replace", "path": "/owner", "value": other_project}]
        )
    )

    assert changed["owner"] == other_project


def test_a_member_may_not_make_an_image_public(api: httpx.Client, image: dict[str, Any]) -> None:
    response = patch_image(
        api, image["id"], [{"op": "replace", "path": "/visibility", "value": "public"}]
    )

    assert_error(response, 403, "You are not authorized to complete publicize_image action.")


def test_a_member_may_make_an_image_community(api: httpx.Client, image: dict[str, Any]) -> None:
    changed = ok(
        patch_image(
            api, image["id"], [{"op": "replace", "path": "/visibility", "value": "community"}]
        )
    )

    assert changed["visibility"] == "community"


def test_an_admin_may_make_an_image_public(
    http: ClientFactory, admin: Identity, image: dict[str, Any]
) -> None:
    changed = ok(
        patch_image(
            http(admin), image["id"], [{"op": "replace", "path": "/visibility", "value": "public"}]
        )
    )

    assert changed["visibility"] == "public"


def test_another_projects_image_is_404(
    http: ClientFactory, stranger: Identity, image: dict[str, Any]
) -> None:
    response = patch_image(
        http(stranger), image["id"], [{"op": "replace", "path": "/name", "value": "x"}]
    )

    assert_error(response, 404, f"No image found with ID {image['id']}")


def test_a_public_image_of_another_project_is_403(
    http: ClientFactory, admin: Identity, stranger: Identity
) -> None:
    image_id = create_image(http(admin), visibility="public")["id"]

    response = patch_image(
        http(stranger), image_id, [{"op": "replace", "path": "/name", "value": "x"}]
    )

    assert_error(response, 403, "You are not authorized to complete modify_image action.")


def test_a_reader_of_the_owning_project_may_not_patch(
    http: ClientFactory, reader: Identity, image: dict[str, Any]
) -> None:
    response = patch_image(
        http(reader), image["id"], [{"op": "replace", "path": "/name", "value": "x"}]
    )

    assert_error(response, 403, "You are not authorized to complete modify_image action.")


# -- quotas --------------------------------------------------------------------


def test_adding_a_property_beyond_the_quota_is_413(api: httpx.Client) -> None:
    image = create_image(api, **{f"p{i}": "v" for i in range(128)})

    response = patch_image(api, image["id"], [{"op": "add", "path": "/p128", "value": "v"}])

    assert_error(
        response,
        413,
        "The limit has been exceeded on the number of allowed image properties. "
        "Attempted: 129, Maximum: 128",
    )


def test_changing_properties_at_the_quota_is_allowed(api: httpx.Client) -> None:
    image = create_image(api, **{f"p{i}": "v" for i in range(128)})

    changed = ok(patch_image(api, image["id"], [{"op": "replace", "path": "/p0", "value": "w"}]))

    assert changed["p0"] == "w"


def test_replacing_tags_beyond_the_quota_is_413(api: httpx.Client, image: dict[str, Any]) -> None:
    tags = [f"t{i}" for i in range(129)]

    response = patch_image(api, image["id"], [{"op": "replace", "path": "/tags", "value": tags}])

    assert_error(
        response,
        413,
        "The limit has been exceeded on the number of allowed image tags. "
        "Attempted: 129, Maximum: 128",
    )


# -- timestamps and concurrency ------------------------------------------------


def test_a_change_advances_updated_at_and_keeps_created_at(
    api: httpx.Client, server: RunningServer, image: dict[str, Any]
) -> None:
    long_ago = dt.datetime(2020, 1, 1)
    set_image_columns(server, image["id"], created_at=long_ago, updated_at=long_ago)

    changed = ok(patch_image(api, image["id"], [{"op": "replace", "path": "/name", "value": "x"}]))

    assert changed["created_at"] == "2020-01-01T00:00:00Z"
    assert changed["updated_at"] > "2020-01-01T00:00:00Z"
    assert changed["updated_at"] >= image["updated_at"]


def test_concurrent_patches_adding_different_properties_all_survive(
    http: ClientFactory, member: Identity, image: dict[str, Any]
) -> None:
    keys = [f"concurrent_{i}" for i in range(10)]
    clients = [http(member) for _ in keys]

    def add(pair: tuple[httpx.Client, str]) -> int:
        client, key = pair
        response = patch_image(
            client, image["id"], [{"op": "add", "path": f"/{key}", "value": key}]
        )
        return response.status_code

    with ThreadPoolExecutor(max_workers=len(keys)) as pool:
        statuses = list(pool.map(add, zip(clients, keys, strict=True)))

    assert statuses == [200] * len(keys)
    final = show_image(clients[0], image["id"])
    assert {key: final.get(key) for key in keys} == {key: key for key in keys}


def test_concurrent_patches_at_the_property_quota_admit_exactly_one(
    http: ClientFactory, member: Identity, api: httpx.Client
) -> None:
    image = create_image(api, **{f"p{i}": "v" for i in range(127)})
    keys = [f"last_{i}" for i in range(10)]
    clients = [http(member) for _ in keys]

    def add(pair: tuple[httpx.Client, str]) -> int:
        client, key = pair
        response = patch_image(
            client, image["id"], [{"op": "add", "path": f"/{key}", "value": "v"}]
        )
        return response.status_code

    with ThreadPoolExecutor(max_workers=len(keys)) as pool:
        statuses = sorted(pool.map(add, zip(clients, keys, strict=True)))

    assert statuses == [200] + [413] * (len(keys) - 1)
    final = show_image(api, image["id"])
    assert len([key for key in final if re.fullmatch(r"p\d+|last_\d", key)]) == 128


# -- request format ------------------------------------------------------------


@pytest.mark.parametrize(
    "content_type",
    [
        "application/json",
        "application/json-patch+json",
        "application/openstack-images-v2.2-json-patch",
        None,
    ],
)
def test_any_other_content_type_is_415_with_accept_patch(
    api: httpx.Client, image: dict[str, Any], content_type: str | None
) -> None:
    request = api.build_request("PATCH", f"/v2/images/{image['id']}", content=b"[]")
    if content_type is not None:
        request.headers["content-type"] = content_type
    assert request.headers.get("content-type") == content_type

    response = api.send(request)

    assert_error(
        response,
        415,
        f"The request media type {content_type or ''} is not supported by this server.",
    )
    assert response.headers["accept-patch"] == ACCEPT_PATCH


def test_the_media_type_is_checked_before_the_image_is_looked_up(api: httpx.Client) -> None:
    response = patch_image(
        api, "00000000-0000-0000-0000-000000000000", [], media_type="application/json"
    )

    assert response.status_code == 415
    assert response.headers["accept-patch"] == ACCEPT_PATCH


def test_an_empty_body_is_400(api: httpx.Client, image: dict[str, Any]) -> None:
    response = api.patch(
        f"/v2/images/{image['id']}", content=b"", headers={"Content-Type": PATCH_V21}
    )

    assert_error(response, 400, "Body expected in request.")


def test_malformed_json_is_400(api: httpx.Client, image: dict[str, Any]) -> None:
    response = api.patch(
        f"/v2/images/{image['id']}", content=b"[{", headers={"Content-Type": PATCH_V21}
    )

    assert_error(response, 400, "Malformed JSON in request body.")


@pytest.mark.parametrize("body", [{"op": "add", "path": "/x", "value": "y"}, {}])
def test_a_body_that_is_not_an_array_is_400(
    api: httpx.Client, image: dict[str, Any], body: object
) -> None:
    response = patch_image(api, image["id"], body)

    assert_error(response, 400, "Request body must be a JSON array of operation objects.")


@pytest.mark.parametrize("operation", ["add", 1, None, ["op", "add"]])
def test_an_operation_that_is_not_an_object_is_400(
    api: httpx.Client, image: dict[str, Any], operation: object
) -> None:
    response = patch_image(api, image["id"], [operation])

    assert_error(response, 400, "Operations must be JSON objects.")


@pytest.mark.parametrize(
    ("operation", "message"),
    [
        (
            {"path": "/name", "value": "x"},
            "Unable to find `op` in JSON Schema change. "
            "It must be one of the following: add, remove, replace.",
        ),
        (
            {"op": "move", "from": "/name", "path": "/x"},
            "Invalid operation: `move`. It must be one of the following: add, remove, replace.",
        ),
        (
            {"op": "test", "path": "/name", "value": "x"},
            "Invalid operation: `test`. It must be one of the following: add, remove, replace.",
        ),
        (
            {"op": "copy", "from": "/name", "path": "/x"},
            "Invalid operation: `copy`. It must be one of the following: add, remove, replace.",
        ),
        ({"op": "add", "value": "x"}, "Unable to find 'path' in JSON Schema change"),
        ({"op": "add", "path": "/name"}, 'Operation "add" requires a member named "value".'),
        ({"op": "replace", "path": "/x"}, 'Operation "replace" requires a member named "value".'),
    ],
    ids=["no-op", "move", "test", "copy", "no-path", "add-no-value", "replace-no-value"],
)
def test_a_malformed_v2_1_operation_is_400(
    api: httpx.Client, image: dict[str, Any], operation: dict[str, Any], message: str
) -> None:
    assert_error(patch_image(api, image["id"], [operation]), 400, message)


def test_the_value_check_comes_before_the_read_only_check(
    api: httpx.Client, image: dict[str, Any]
) -> None:
    response = patch_image(api, image["id"], [{"op": "replace", "path": "/status"}])

    assert_error(response, 400, 'Operation "replace" requires a member named "value".')


@pytest.mark.parametrize(
    ("operation", "message"),
    [
        (
            {"path": "/name", "value": "x"},
            'Operation objects must contain exactly one member named "add", "remove", '
            'or "replace".',
        ),
        (
            {"op": "replace", "path": "/name", "value": "x"},
            'Operation objects must contain exactly one member named "add", "remove", '
            'or "replace".',
        ),
        (
            {"add": "/a", "remove": "/b", "value": "x"},
            'Operation objects must contain only one member named "add", "remove", or "replace".',
        ),
        ({"add": "/name"}, 'Operation "add" requires a member named "value".'),
    ],
    ids=["no-op", "v2.1-style", "two-ops", "no-value"],
)
def test_a_malformed_v2_0_operation_is_400(
    api: httpx.Client, image: dict[str, Any], operation: dict[str, Any], message: str
) -> None:
    assert_error(patch_image(api, image["id"], [operation], PATCH_V20), 400, message)


@pytest.mark.parametrize(
    ("pointer", "message"),
    [
        ("name", 'Pointer `name` does not start with "/".'),
        ("", 'Pointer `` does not start with "/".'),
        ("/a//b", 'Pointer `/a//b` contains adjacent "/".'),
        ("/a/ /b", 'Pointer `/a/ /b` contains adjacent "/".'),
        ("/name/", 'Pointer `/name/` end with "/".'),
        ("/ / ", "Pointer `/ / ` does not contains valid token."),
        ("/a~2b", 'Pointer `/a~2b` contains "~" not part of a recognized escape sequence.'),
        ("/a~", 'Pointer `/a~` contains "~" not part of a recognized escape sequence.'),
        ("/foo/bar", "Invalid JSON pointer for this resource: '/foo/bar'"),
        ("/tags/0", "Invalid JSON pointer for this resource: '/tags/0'"),
    ],
)
def test_every_json_pointer_error_is_400_with_glances_message(
    api: httpx.Client, image: dict[str, Any], pointer: str, message: str
) -> None:
    response = patch_image(api, image["id"], [{"op": "add", "path": pointer, "value": "x"}])

    assert_error(response, 400, message)


def test_tilde_escapes_decode_to_slash_and_tilde(api: httpx.Client, image: dict[str, Any]) -> None:
    changed = ok(
        patch_image(api, image["id"], [{"op": "add", "path": "/a~1b~0c~01", "value": "x"}])
    )

    assert changed["a/b~c~1"] == "x"


def test_pointer_tokens_are_stripped_of_whitespace(
    api: httpx.Client, image: dict[str, Any]
) -> None:
    changed = ok(
        patch_image(api, image["id"], [{"op": "replace", "path": "/ name ", "value": "x"}])
    )

    assert changed["name"] == "x"


# -- bounds (issue 18, item 2) ----------------------------------------------------


def _renames(count: int) -> list[dict[str, Any]]:
    return [{"op": "replace", "path": "/name", "value": f"n{n}"} for n in range(count)]


def test_256_operations_apply_in_order(api: httpx.Client, image: dict[str, Any]) -> None:
    body = ok(patch_image(api, image["id"], _renames(256)))

    assert body["name"] == "n255"


def test_more_operations_are_413_and_change_nothing(
    api: httpx.Client, image: dict[str, Any]
) -> None:
    response = patch_image(api, image["id"], _renames(257))

    assert_error(
        response,
        413,
        "The limit has been exceeded on the number of allowed patch operations. "
        "Attempted: 257, Maximum: 256",
    )
    assert show_image(api, image["id"])["name"] == "before"


def test_a_200k_operation_patch_of_a_missing_image_is_refused_unread(api: httpx.Client) -> None:
    """It blocked the event loop for seconds: now its length alone refuses it."""
    ops = [{"op": "remove", "path": "/x"}] * 200_000

    response = patch_image(api, "00000000-0000-4000-8000-000000000000", ops)

    assert_error(response, 413, "Request is too large. Larger than max_request_body_size (114688).")


def test_a_property_value_over_65535_characters_is_400(
    api: httpx.Client, image: dict[str, Any]
) -> None:
    ok(patch_image(api, image["id"], [{"op": "add", "path": "/long", "value": "v" * 65535}]))

    response = patch_image(api, image["id"], [{"op": "add", "path": "/x", "value": "v" * 65536}])

    assert_error(
        response, 400, "The value of property x should not be greater than 65535 characters."
    )
    assert "x" not in show_image(api, image["id"])
