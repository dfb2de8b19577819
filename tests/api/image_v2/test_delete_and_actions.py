"""DELETE /v2/images/{image_id} and POST /v2/images/{image_id}/actions/{de,re}activate."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.conftest import ClientFactory
from tests.support.errors import assert_error
from tests.support.identities import Identity
from tests.support.images import create_image, patch_image, show_image
from tests.support.seeding import activate, set_image_columns
from tests.support.servers import RunningServer

UNKNOWN_ID = "0b4a7d0e-3f67-4a0c-b1f3-6d0b8a1c2e5f"


@pytest.fixture
def image(api: httpx.Client) -> dict[str, Any]:
    return create_image(api, name="to-go")


@pytest.fixture
def active_image(server: RunningServer, image: dict[str, Any]) -> dict[str, Any]:
    activate(server, image["id"])
    return image


def assert_no_content(response: httpx.Response) -> None:
    assert response.status_code == 204, response.text
    assert response.headers["content-type"] == "text/html; charset=UTF-8"
    assert response.headers["content-length"] == "0"
    assert response.content == b""


def action(client: httpx.Client, image_id: str, name: str) -> httpx.Response:
    return client.post(f"/v2/images/{image_id}/actions/{name}")


# -- delete --------------------------------------------------------------------


def test_delete_is_204_and_the_image_is_gone(api: httpx.Client, image: dict[str, Any]) -> None:
    assert_no_content(api.delete(f"/v2/images/{image['id']}"))

    assert_error(api.get(f"/v2/images/{image['id']}"), 404, f"No image found with ID {image['id']}")
    listed = api.get("/v2/images").json()["images"]
    assert image["id"] not in [each["id"] for each in listed]


def test_deleting_twice_is_404_the_second_time(api: httpx.Client, image: dict[str, Any]) -> None:
    assert api.delete(f"/v2/images/{image['id']}").status_code == 204

    response = api.delete(f"/v2/images/{image['id']}")

    assert_error(response, 404, f"Failed to find image {image['id']} to delete")


def test_deleting_an_unknown_image_is_404(api: httpx.Client) -> None:
    response = api.delete(f"/v2/images/{UNKNOWN_ID}")

    assert_error(response, 404, f"Failed to find image {UNKNOWN_ID} to delete")


def test_an_active_image_can_be_deleted(api: httpx.Client, active_image: dict[str, Any]) -> None:
    assert_no_content(api.delete(f"/v2/images/{active_image['id']}"))


def test_a_protected_image_cannot_be_deleted_until_unprotected(api: httpx.Client) -> None:
    image = create_image(api, protected=True)

    response = api.delete(f"/v2/images/{image['id']}")

    assert_error(response, 403, f"Image {image['id']} is protected and cannot be deleted.")
    assert show_image(api, image["id"])["status"] == "queued"
    patch_image(api, image["id"], [{"op": "replace", "path": "/protected", "value": False}])
    assert_no_content(api.delete(f"/v2/images/{image['id']}"))


def test_another_projects_private_image_cannot_be_found_to_delete(
    http: ClientFactory, stranger: Identity, image: dict[str, Any]
) -> None:
    response = http(stranger).delete(f"/v2/images/{image['id']}")

    assert_error(response, 404, f"Failed to find image {image['id']} to delete")


def test_another_projects_public_image_is_403_to_delete(
    http: ClientFactory, admin: Identity, stranger: Identity
) -> None:
    image = create_image(http(admin), visibility="public")

    response = http(stranger).delete(f"/v2/images/{image['id']}")

    assert_error(response, 403, "You are not authorized to complete delete_image action.")


def test_a_refusal_is_404_to_a_caller_who_may_not_read_the_image(
    http: ClientFactory, admin: Identity, other_project: str
) -> None:
    # Glance's ImageAPIPolicy turns a refusal into 404 when get_image refuses too:
    # `member` without `reader` (roles are literal) may not read another's image.
    image = create_image(http(admin), visibility="public")
    member_only = Identity(other_project, "member-only", ("member",))

    response = http(member_only).delete(f"/v2/images/{image['id']}")

    assert_error(response, 404, "The resource could not be found.")


def test_a_reader_may_not_delete(
    http: ClientFactory, reader: Identity, image: dict[str, Any]
) -> None:
    response = http(reader).delete(f"/v2/images/{image['id']}")

    assert_error(response, 403, "You are not authorized to complete delete_image action.")


def test_an_admin_may_delete_any_projects_image(
    http: ClientFactory, admin: Identity, image: dict[str, Any]
) -> None:
    assert_no_content(http(admin).delete(f"/v2/images/{image['id']}"))


# -- deactivate / reactivate ---------------------------------------------------


def test_deactivate_then_reactivate_an_active_image(
    api: httpx.Client, active_image: dict[str, Any]
) -> None:
    image_id = active_image["id"]

    assert_no_content(action(api, image_id, "deactivate"))
    assert show_image(api, image_id)["status"] == "deactivated"

    assert_no_content(action(api, image_id, "reactivate"))
    assert show_image(api, image_id)["status"] == "active"


def test_deactivate_and_reactivate_are_idempotent(
    api: httpx.Client, active_image: dict[str, Any]
) -> None:
    image_id = active_image["id"]

    assert_no_content(action(api, image_id, "reactivate"))
    assert show_image(api, image_id)["status"] == "active"
    for _ in range(2):
        assert_no_content(action(api, image_id, "deactivate"))
    assert show_image(api, image_id)["status"] == "deactivated"


@pytest.mark.parametrize("name", ["deactivate", "reactivate"])
@pytest.mark.parametrize("status", ["queued", "saving", "killed", "importing"])
def test_an_image_without_data_cannot_be_deactivated_or_reactivated(
    api: httpx.Client, server: RunningServer, image: dict[str, Any], name: str, status: str
) -> None:
    if status != "queued":
        set_image_columns(server, image["id"], status=status)

    response = action(api, image["id"], name)

    assert_error(response, 403, f"Not allowed to {name} image in status '{status}'")


def test_a_deactivated_image_can_be_deleted(
    api: httpx.Client, active_image: dict[str, Any]
) -> None:
    action(api, active_image["id"], "deactivate")

    assert_no_content(api.delete(f"/v2/images/{active_image['id']}"))


@pytest.mark.parametrize("name", ["deactivate", "reactivate"])
def test_an_action_with_a_body_is_400(
    api: httpx.Client, active_image: dict[str, Any], name: str
) -> None:
    response = api.post(f"/v2/images/{active_image['id']}/actions/{name}", json={})

    assert_error(response, 400, "A body is not expected with this request.")


@pytest.mark.parametrize("name", ["deactivate", "reactivate"])
def test_an_action_on_an_unknown_image_is_404(api: httpx.Client, name: str) -> None:
    assert_error(action(api, UNKNOWN_ID, name), 404, f"No image found with ID {UNKNOWN_ID}")


@pytest.mark.parametrize("name", ["deactivate", "reactivate"])
def test_an_action_on_another_projects_private_image_is_404(
    http: ClientFactory, stranger: Identity, active_image: dict[str, Any], name: str
) -> None:
    response = action(http(stranger), active_image["id"], name)

    assert_error(response, 404, f"No image found with ID {active_image['id']}")


@pytest.mark.parametrize("name", ["deactivate", "reactivate"])
def test_a_reader_may_not_deactivate_or_reactivate(
    http: ClientFactory, reader: Identity, active_image: dict[str, Any], name: str
) -> None:
    response = action(http(reader), active_image["id"], name)

    assert_error(response, 403, f"You are not authorized to complete {name} action.")


@pytest.mark.parametrize("name", ["deactivate", "reactivate"])
def test_another_projects_public_image_is_403_to_act_on(
    http: ClientFactory,
    server: RunningServer,
    admin: Identity,
    stranger: Identity,
    name: str,
) -> None:
    image = create_image(http(admin), visibility="public")
    activate(server, image["id"])

    response = action(http(stranger), image["id"], name)

    assert_error(response, 403, f"You are not authorized to complete {name} action.")


def test_an_admin_may_deactivate_and_reactivate_any_projects_image(
    http: ClientFactory, admin: Identity, active_image: dict[str, Any]
) -> None:
    client = http(admin)

    assert_no_content(action(client, active_image["id"], "deactivate"))
    assert_no_content(action(client, active_image["id"], "reactivate"))


@pytest.mark.parametrize("name", ["deactivate", "reactivate"])
def test_get_on_an_action_is_405_with_allow_post(
    api: httpx.Client, image: dict[str, Any], name: str
) -> None:
    response = api.get(f"/v2/images/{image['id']}/actions/{name}")

    assert response.status_code == 405
    assert response.headers["allow"] == "POST"


def test_an_unknown_action_is_404(api: httpx.Client, active_image: dict[str, Any]) -> None:
    response = action(api, active_image["id"], "hibernate")

    assert_error(response, 404, "The resource could not be found.")
