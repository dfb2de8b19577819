"""GET /v2/schemas/{image,images,member,members}: the JSON Schemas clients read."""

from __future__ import annotations

from typing import Any

import httpx
import jsonschema
import pytest

from skylens.domain.images import READ_ONLY_ATTRIBUTES
from tests.support.images import create_image

UUID_REGEX = (
    "^([0-9a-fA-F]){8}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){12}$"
)
# Base properties Glance shows only with options Skylens does not offer
# (show_image_direct_url, multistore, show_multiple_locations).
NOT_SHOWN = {"direct_url", "stores", "locations"}


def schema(client: httpx.Client, name: str) -> dict[str, Any]:
    response = client.get(f"/v2/schemas/{name}")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    document: dict[str, Any] = response.json()
    return document


def without_descriptions(value: Any) -> Any:
    """The schema minus its human-readable `description` texts (not the property of that name)."""
    if isinstance(value, dict):
        return {
            k: without_descriptions(v)
            for k, v in value.items()
            if not (k == "description" and isinstance(v, str))
        }
    if isinstance(value, list):
        return [without_descriptions(item) for item in value]
    return value


# -- image ---------------------------------------------------------------------


def test_the_image_schema_has_glances_top_level_shape(api: httpx.Client) -> None:
    document = schema(api, "image")

    assert set(document) == {"name", "properties", "additionalProperties", "links"}
    assert document["name"] == "image"
    assert document["additionalProperties"] == {"type": "string"}
    assert document["links"] == [
        {"rel": "self", "href": "{self}"},
        {"rel": "enclosure", "href": "{file}"},
        {"rel": "describedby", "href": "{schema}"},
    ]


def test_every_image_property_is_described(api: httpx.Client) -> None:
    properties = schema(api, "image")["properties"]

    assert all(isinstance(value.get("description"), str) for value in properties.values())


def test_the_image_schemas_base_properties_match_glance(api: httpx.Client) -> None:
    properties = without_descriptions(schema(api, "image")["properties"])

    base = {key: value for key, value in properties.items() if value.get("is_base", True)}
    assert list(base)[:6] == ["id", "name", "status", "visibility", "protected", "os_hidden"]
    assert base["id"] == {"type": "string", "pattern": UUID_REGEX}
    assert base["name"] == {"type": ["null", "string"], "maxLength": 255}
    assert base["status"] == {
        "type": "string",
        "readOnly": True,
        "enum": [
            "queued",
            "saving",
            "active",
            "killed",
            "deleted",
            "uploading",
            "importing",
            "pending_delete",
            "deactivated",
        ],
    }
    assert base["visibility"] == {
        "type": "string",
        "enum": ["community", "public", "private", "shared"],
    }
    assert base["container_format"] == {
        "type": ["null", "string"],
        "enum": [None, "ami", "ari", "aki", "bare", "ovf", "ova", "docker", "compressed"],
    }
    assert base["disk_format"] == {
        "type": ["null", "string"],
        "enum": [
            None, "ami", "ari", "aki", "vhd", "vhdx", "vmdk", "raw", "qcow2", "vdi", "iso", "ploop"
        ],
    }  # fmt: skip
    assert base["tags"] == {"type": "array", "items": {"type": "string", "maxLength": 255}}
    assert base["min_ram"] == base["min_disk"] == {"type": "integer"}
    assert base["checksum"] == {"type": ["null", "string"], "readOnly": True, "maxLength": 32}
    assert base["size"] == base["virtual_size"] == {"type": ["null", "integer"], "readOnly": True}


def test_the_custom_properties_are_glances_schema_image_json(api: httpx.Client) -> None:
    properties = without_descriptions(schema(api, "image")["properties"])

    custom = {key: value for key, value in properties.items() if not value.get("is_base", True)}
    uuid_or_null = {"type": ["null", "string"], "pattern": UUID_REGEX, "is_base": False}
    text = {"type": "string", "is_base": False}
    assert custom == {
        "kernel_id": uuid_or_null,
        "ramdisk_id": uuid_or_null,
        "instance_uuid": text,
        "architecture": text,
        "os_distro": text,
        "os_version": text,
        "description": text,
        "cinder_encryption_key_id": text,
        "cinder_encryption_key_deletion_policy": {
            "type": "string",
            "enum": ["on_image_deletion", "do_not_delete"],
            "is_base": False,
        },
    }


def test_read_only_in_the_schema_is_the_services_read_only_set_except_id(
    api: httpx.Client,
) -> None:
    properties = schema(api, "image")["properties"]
    read_only = {key for key, value in properties.items() if value.get("readOnly")}

    # Every attribute the service refuses to take from a client is published...
    assert READ_ONLY_ATTRIBUTES - properties.keys() == set()
    # ...and marked readOnly, except `id`: a client may choose it on create.
    assert read_only == (READ_ONLY_ATTRIBUTES & properties.keys()) - {"id"}
    assert "readOnly" not in properties["id"]


def test_an_image_shows_exactly_the_base_properties_glance_shows(api: httpx.Client) -> None:
    properties = schema(api, "image")["properties"]
    base = {key for key, value in properties.items() if value.get("is_base", True)}

    image = create_image(api)

    assert set(image) == base - NOT_SHOWN


def test_a_served_image_validates_against_the_served_schema(api: httpx.Client) -> None:
    image = create_image(
        api, name="x", disk_format="raw", container_format="bare", tags=["a"], os_distro="d"
    )

    jsonschema.validate(image, schema(api, "image"))


# -- images, member, members ---------------------------------------------------


def test_the_images_schema_wraps_the_full_image_schema(api: httpx.Client) -> None:
    image = schema(api, "image")

    document = schema(api, "images")

    assert document == {
        "name": "images",
        "properties": {
            "images": {"type": "array", "items": image},
            "first": {"type": "string"},
            "next": {"type": "string"},
            "schema": {"type": "string"},
        },
        "links": [
            {"rel": "first", "href": "{first}"},
            {"rel": "next", "href": "{next}"},
            {"rel": "describedby", "href": "{schema}"},
        ],
    }


def test_an_image_list_validates_against_the_images_schema(api: httpx.Client) -> None:
    create_image(api, name="listed")

    jsonschema.validate(api.get("/v2/images").json(), schema(api, "images"))


MEMBER_PROPERTIES = {
    "member_id": {"type": "string"},
    "image_id": {"type": "string", "pattern": UUID_REGEX},
    "created_at": {"type": "string"},
    "updated_at": {"type": "string"},
    "status": {"type": "string", "enum": ["pending", "accepted", "rejected"]},
    "schema": {"readOnly": True, "type": "string"},
}


def test_the_member_schema_is_minimal(api: httpx.Client) -> None:
    document = schema(api, "member")

    assert set(document) == {"name", "properties"}
    assert document["name"] == "member"
    assert without_descriptions(document["properties"]) == MEMBER_PROPERTIES


def test_the_members_schema_has_no_paging_links(api: httpx.Client) -> None:
    document = without_descriptions(schema(api, "members"))

    assert document == {
        "name": "members",
        "properties": {
            "members": {
                "type": "array",
                "items": {"name": "member", "properties": MEMBER_PROPERTIES},
            },
            "schema": {"type": "string"},
        },
        "links": [{"rel": "describedby", "href": "{schema}"}],
    }


@pytest.mark.parametrize("name", ["image", "images", "member", "members"])
@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE", "HEAD"])
def test_schemas_answer_only_get(api: httpx.Client, name: str, method: str) -> None:
    response = api.request(method, f"/v2/schemas/{name}")

    assert response.status_code == 405
    assert response.headers["allow"] == "GET"


def test_an_unknown_schema_is_404(api: httpx.Client) -> None:
    assert api.get("/v2/schemas/teleport").status_code == 404
