"""With `images.ims_profile` off (the default), IMS requests get standard Glance.

The session servers run without the profile: `__` names are ordinary extra
properties, `X-Api-Version` means nothing, no computed attribute appears, and
the sort keys, schema and filters are Glance's.
"""

from __future__ import annotations

import httpx

from tests.conftest import ClientFactory
from tests.support.identities import Identity
from tests.support.images import PATCH_V21, create_image, show_image
from tests.support.listing import list_ids


def test_ims_filters_are_plain_property_filters(api: httpx.Client) -> None:
    gold = create_image(api, name="gold", __imagetype="gold")
    create_image(api, name="other")

    # `__imagetype` is no computed type here: only the image storing it matches.
    assert list_ids(api, {"__imagetype": "gold"}) == [gold["id"]]
    assert list_ids(api, {"__isregistered": "true"}) == []
    assert list_ids(api, {"__os_type": "Solaris"}) == []


def test_ims_values_are_not_validated(api: httpx.Client) -> None:
    image = create_image(api, name="free", __os_type="Solaris", __os_bit="16")
    response = api.patch(
        f"/v2/images/{image['id']}",
        json=[{"op": "add", "path": "/__platform", "value": "Plan 9"}],
        headers={"Content-Type": PATCH_V21},
    )

    assert image["__os_type"] == "Solaris"
    assert response.status_code == 200
    assert response.json()["__platform"] == "Plan 9"


def test_no_ims_attributes_and_no_api_version(http: ClientFactory, member: Identity) -> None:
    client = http(member)
    image = create_image(client, name="plain", visibility="shared")

    for headers in ({}, {"X-Api-Version": "M"}, {"X-Api-Version": "2.6"}):
        client.headers.update(headers)
        shown = show_image(client, image["id"])
        assert shown["visibility"] == "shared"
        assert "os_hidden" in shown
        for name in ("__imagetype", "__isregistered", "active_at"):
            assert name not in shown


def test_standard_sort_keys_and_tags(api: httpx.Client) -> None:
    tagged = create_image(api, name="tagged", tags=["os.linux"])

    assert api.get("/v2/images", params={"sort_key": "updated_at"}).status_code == 200
    assert list_ids(api, {"tag": "os.linux"}) == [tagged["id"]]
    assert list_ids(api, {"tag": "os=linux"}) == []  # no legacy `key.value` lookup


def test_the_schema_has_no_ims_properties(api: httpx.Client) -> None:
    schema = api.get("/v2/schemas/image").json()

    assert not [name for name in schema["properties"] if name.startswith("__")]
    assert "active_at" not in schema["properties"]
