"""Locations while `show_multiple_locations` is off (the default, as in Glance): the
`locations` JSON-patch paths parse as Glance parses them, then each operation is
refused with Glance's 403 texts, in Glance's order (an empty replace first, then
the operation's policy, then "invisible"); image bodies show neither `locations`
nor `direct_url`, the locations API (2.17) is not served and not advertised."""

from __future__ import annotations

from collections.abc import Mapping

import httpx

from tests.api.image_v2.test_import import new_image
from tests.conftest import ClientFactory
from tests.support.errors import assert_error
from tests.support.identities import Identity

PATCH = {"Content-Type": "application/openstack-images-v2.1-json-patch"}
OCTET = {"Content-Type": "application/octet-stream"}
VALUE = {"url": "http://example.com/image", "metadata": {}}


def patch(api: httpx.Client, image_id: str, operation: Mapping[str, object]) -> httpx.Response:
    return api.patch(f"/v2/images/{image_id}", json=[operation], headers=PATCH)


def test_adding_a_location_is_refused_as_invisible(api: httpx.Client) -> None:
    image_id = new_image(api)

    for path in ("/locations/-", "/locations/0"):
        response = patch(api, image_id, {"op": "add", "path": path, "value": VALUE})

        assert_error(response, 403, "It's not allowed to add locations if locations are invisible.")


def test_replacing_locations_is_refused_empty_first(api: httpx.Client) -> None:
    image_id = new_image(api)

    empty = patch(api, image_id, {"op": "replace", "path": "/locations", "value": []})
    some = patch(api, image_id, {"op": "replace", "path": "/locations", "value": [VALUE]})

    assert_error(empty, 403, "Cannot set locations to empty list.")
    assert_error(some, 403, "It's not allowed to update locations if locations are invisible.")


def test_removing_a_location_is_refused_by_policy_then_as_invisible(
    http: ClientFactory, member: Identity, admin: Identity
) -> None:
    image_id = new_image(http(member))
    operation = {"op": "remove", "path": "/locations/0"}

    assert_error(
        patch(http(member), image_id, operation),
        403,
        "You are not authorized to complete delete_image_location action.",
    )
    assert_error(
        patch(http(admin), image_id, operation),
        403,
        "It's not allowed to remove locations if locations are invisible.",
    )


def test_paths_of_the_wrong_depth_are_invalid_pointers(api: httpx.Client) -> None:
    image_id = new_image(api)

    for operation in (
        {"op": "add", "path": "/locations", "value": [VALUE]},
        {"op": "remove", "path": "/locations"},
        {"op": "replace", "path": "/locations/0", "value": VALUE},
        {"op": "add", "path": "/locations/0/1", "value": VALUE},
    ):
        path = str(operation["path"])
        assert_error(
            patch(api, image_id, operation),
            400,
            f"Invalid JSON pointer for this resource: '{path}'",
        )


def test_a_location_value_is_checked_against_the_schema(api: httpx.Client) -> None:
    image_id = new_image(api)

    response = patch(api, image_id, {"op": "add", "path": "/locations/-", "value": {"url": "x"}})

    assert response.status_code == 400
    assert "'metadata' is a required property" in response.json()["message"]


def test_images_show_no_locations(api: httpx.Client) -> None:
    image_id = new_image(api)
    api.put(f"/v2/images/{image_id}/file", content=b"data", headers=OCTET)

    image = api.get(f"/v2/images/{image_id}").json()

    assert "locations" not in image
    assert "direct_url" not in image


def test_the_locations_api_is_not_served(api: httpx.Client) -> None:
    image_id = new_image(api)

    assert api.post(f"/v2/images/{image_id}/locations", json={"url": "x"}).status_code == 404
    assert api.get(f"/v2/images/{image_id}/locations").status_code == 404
    versions = [v["id"] for v in api.get("/versions").json()["versions"]]
    assert "v2.17" not in versions
    assert api.get("/v2.17/images").status_code == 300
