"""GET /v2/images/{image_id}: who sees which image, and what they see."""

from __future__ import annotations

import uuid

import httpx
import pytest

from tests.conftest import ClientFactory
from tests.support.errors import assert_error
from tests.support.identities import Identity
from tests.support.images import create_image
from tests.support.seeding import add_member
from tests.support.servers import RunningServer


def test_show_returns_200_with_the_image_as_created(api: httpx.Client) -> None:
    created = create_image(api, name="fedora", tags=["f40"], os_distro="fedora")

    response = api.get(f"/v2/images/{created['id']}")

    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == created


def test_show_has_exactly_the_attributes_glance_shows_plus_extra_properties(
    api: httpx.Client,
) -> None:
    image_id = create_image(api, architecture="x86_64")["id"]

    image = api.get(f"/v2/images/{image_id}").json()

    assert list(image) == [
        "architecture",
        "name",
        "disk_format",
        "container_format",
        "visibility",
        "size",
        "virtual_size",
        "status",
        "checksum",
        "protected",
        "min_ram",
        "min_disk",
        "owner",
        "os_hidden",
        "os_hash_algo",
        "os_hash_value",
        "id",
        "created_at",
        "updated_at",
        "tags",
        "self",
        "file",
        "schema",
    ]


@pytest.mark.parametrize("visibility", ["private", "shared"])
def test_another_projects_private_or_shared_image_is_404(
    api: httpx.Client, http: ClientFactory, stranger: Identity, visibility: str
) -> None:
    image_id = create_image(api, visibility=visibility)["id"]

    response = http(stranger).get(f"/v2/images/{image_id}")

    assert_error(response, 404, f"No image found with ID {image_id}")


@pytest.mark.parametrize("status", ["pending", "accepted", "rejected"])
def test_a_shared_image_is_visible_to_a_member_project_whatever_its_member_status(
    api: httpx.Client,
    http: ClientFactory,
    server: RunningServer,
    stranger: Identity,
    status: str,
) -> None:
    image_id = create_image(api, visibility="shared")["id"]
    add_member(server, image_id, stranger.project, status)

    assert http(stranger).get(f"/v2/images/{image_id}").status_code == 200


def test_a_private_image_is_invisible_even_to_a_member_project(
    api: httpx.Client, http: ClientFactory, server: RunningServer, stranger: Identity
) -> None:
    image_id = create_image(api, visibility="private")["id"]
    add_member(server, image_id, stranger.project)

    assert http(stranger).get(f"/v2/images/{image_id}").status_code == 404


def test_a_community_image_is_visible_to_every_project(
    api: httpx.Client, http: ClientFactory, stranger: Identity
) -> None:
    image_id = create_image(api, visibility="community")["id"]

    response = http(stranger).get(f"/v2/images/{image_id}")

    assert response.status_code == 200
    assert response.json()["visibility"] == "community"


def test_a_public_image_is_visible_to_every_project(
    http: ClientFactory, admin: Identity, stranger: Identity
) -> None:
    image_id = create_image(http(admin), visibility="public")["id"]

    assert http(stranger).get(f"/v2/images/{image_id}").status_code == 200


def test_a_private_image_without_an_owner_is_shown_to_admins_only(
    http: ClientFactory, admin: Identity, stranger: Identity
) -> None:
    """Glance 33's `get_image` default has no clause for an owner-less private image
    (`project_id:%(project_id)s` compares the caller with None), and Glance answers
    a refused `get_image` with 404."""
    image_id = create_image(http(admin), owner=None, visibility="private")["id"]

    assert http(stranger).get(f"/v2/images/{image_id}").status_code == 404
    response = http(admin).get(f"/v2/images/{image_id}")
    assert response.status_code == 200
    assert response.json()["owner"] is None


def test_a_public_image_without_an_owner_is_visible_to_every_project(
    http: ClientFactory, admin: Identity, stranger: Identity
) -> None:
    image_id = create_image(http(admin), owner=None, visibility="public")["id"]

    response = http(stranger).get(f"/v2/images/{image_id}")

    assert response.status_code == 200
    assert response.json()["owner"] is None


def test_an_admin_sees_every_projects_private_images(
    api: httpx.Client, http: ClientFactory, admin: Identity
) -> None:
    image_id = create_image(api, visibility="private")["id"]

    assert http(admin).get(f"/v2/images/{image_id}").status_code == 200


def test_a_reader_of_the_owning_project_may_show_its_images(
    api: httpx.Client, http: ClientFactory, reader: Identity
) -> None:
    image_id = create_image(api, visibility="private")["id"]

    assert http(reader).get(f"/v2/images/{image_id}").status_code == 200


def test_an_unknown_id_is_404(api: httpx.Client) -> None:
    image_id = str(uuid.uuid4())

    assert_error(api.get(f"/v2/images/{image_id}"), 404, f"No image found with ID {image_id}")


def test_an_id_that_is_not_a_uuid_is_simply_not_found(api: httpx.Client) -> None:
    assert_error(api.get("/v2/images/not-a-uuid"), 404, "No image found with ID not-a-uuid")


def test_a_deleted_image_is_404_even_for_an_admin(
    api: httpx.Client, http: ClientFactory, admin: Identity
) -> None:
    image_id = create_image(api)["id"]
    assert api.delete(f"/v2/images/{image_id}").status_code == 204

    for client in (api, http(admin)):
        assert_error(
            client.get(f"/v2/images/{image_id}"), 404, f"No image found with ID {image_id}"
        )


def test_head_on_an_image_is_405_with_allow(api: httpx.Client) -> None:
    image_id = create_image(api)["id"]

    response = api.head(f"/v2/images/{image_id}")

    assert response.status_code == 405
    assert response.headers["allow"] == "GET, PATCH, DELETE"
    assert response.content == b""
    # As webob answers HEAD (recorded Glance 33 exchange head-image), whatever `Accept`.
    assert response.headers["content-type"] == "text/html; charset=UTF-8"
    assert response.headers["content-length"] == "0"


@pytest.mark.parametrize("method", ["GET", "DELETE", "PATCH"])
def test_an_empty_image_id_is_404_not_the_list(api: httpx.Client, method: str) -> None:
    # What a client sends when its id variable is empty: never a list, never a 405.
    create_image(api)

    response = api.request(method, "/v2/images/", follow_redirects=False)

    assert_error(response, 404, "The resource could not be found.")


def test_an_unknown_path_below_an_image_is_404(api: httpx.Client) -> None:
    image_id = create_image(api)["id"]

    response = api.get(f"/v2/images/{image_id}/nothing")

    assert_error(response, 404, "The resource could not be found.")
