"""POST /v2/images, as the api-ref and Glance's wire behaviour describe it."""

from __future__ import annotations

import uuid

import httpx

from tests.support.identities import Identity


def test_create_returns_201_with_location_and_the_image(
    api: httpx.Client, member: Identity
) -> None:
    response = api.post(
        "/v2/images",
        json={"name": "Ubuntu 12.10", "tags": ["ubuntu", "quantal"], "os_distro": "ubuntu"},
    )

    assert response.status_code == 201
    image = response.json()
    assert (
        response.headers["location"] == f"{str(api.base_url).rstrip('/')}/v2/images/{image['id']}"
    )
    assert image["name"] == "Ubuntu 12.10"
    assert image["status"] == "queued"
    assert image["visibility"] == "shared"
    assert image["owner"] == member.project
    assert sorted(image["tags"]) == ["quantal", "ubuntu"]
    assert image["os_distro"] == "ubuntu"
    assert image["self"] == f"/v2/images/{image['id']}"
    assert image["file"] == f"/v2/images/{image['id']}/file"
    assert image["schema"] == "/v2/schemas/image"
    assert image["created_at"].endswith("Z")
    for key in ("size", "virtual_size", "checksum", "os_hash_algo", "os_hash_value"):
        assert image[key] is None


def test_create_with_a_taken_id_is_409(api: httpx.Client) -> None:
    image_id = str(uuid.uuid4())
    assert api.post("/v2/images", json={"id": image_id}).status_code == 201

    response = api.post("/v2/images", json={"id": image_id})

    assert response.status_code == 409
    assert response.json()["message"].startswith(f"Image ID {image_id} already exists!")


def test_the_id_of_a_deleted_image_is_never_reused(api: httpx.Client) -> None:
    image_id = api.post("/v2/images", json={}).json()["id"]
    assert api.delete(f"/v2/images/{image_id}").status_code == 204

    response = api.post("/v2/images", json={"id": image_id})

    assert response.status_code == 409


def test_read_only_attribute_is_403(api: httpx.Client) -> None:
    response = api.post("/v2/images", json={"status": "active"})

    assert response.status_code == 403
    assert response.json() == {
        "message": "Attribute 'status' is read-only.<br /><br />\n\n\n",
        "code": "403 Forbidden",
        "title": "Forbidden",
    }


def test_schema_violation_is_400_with_the_validator_message(api: httpx.Client) -> None:
    response = api.post("/v2/images", json={"disk_format": "floppy"})

    assert response.status_code == 400
    assert response.json()["message"].startswith(
        "Provided object does not match schema 'image': 'floppy' is not one of"
    )


def test_a_json_array_body_is_400_not_500(api: httpx.Client) -> None:
    response = api.post("/v2/images", json=[{"name": "x"}])

    assert response.status_code == 400
