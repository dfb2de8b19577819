"""PUT and DELETE /v2/images/{image_id}/tags/{tag}."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.conftest import ClientFactory
from tests.support.errors import assert_error, error_message
from tests.support.identities import Identity
from tests.support.images import create_image, show_image
from tests.support.seeding import activate
from tests.support.servers import RunningServer

UNKNOWN_ID = "6f4a3c52-0b1e-4f47-9a39-0d2b9c1e7a11"


@pytest.fixture
def image(api: httpx.Client) -> dict[str, Any]:
    return create_image(api, tags=["existing"])


def assert_no_content(response: httpx.Response) -> None:
    """Glance's bare 204: webob's default HTML content type and an explicit zero length."""
    assert response.status_code == 204, response.text
    assert response.headers["content-type"] == "text/html; charset=UTF-8"
    assert response.headers["content-length"] == "0"
    assert response.content == b""


def test_put_adds_the_tag_with_a_bare_204(api: httpx.Client, image: dict[str, Any]) -> None:
    assert_no_content(api.put(f"/v2/images/{image['id']}/tags/ubuntu"))

    assert sorted(show_image(api, image["id"])["tags"]) == ["existing", "ubuntu"]


def test_put_is_idempotent(api: httpx.Client, image: dict[str, Any]) -> None:
    for _ in range(2):
        assert_no_content(api.put(f"/v2/images/{image['id']}/tags/existing"))

    assert show_image(api, image["id"])["tags"] == ["existing"]


def test_a_tag_is_the_percent_decoded_path_segment(
    api: httpx.Client, image: dict[str, Any]
) -> None:
    assert_no_content(api.put(f"/v2/images/{image['id']}/tags/needs%20review"))

    assert "needs review" in show_image(api, image["id"])["tags"]


def test_tags_may_change_whatever_the_image_status(
    api: httpx.Client, server: RunningServer, image: dict[str, Any]
) -> None:
    activate(server, image["id"])

    assert_no_content(api.put(f"/v2/images/{image['id']}/tags/released"))
    assert_no_content(api.delete(f"/v2/images/{image['id']}/tags/existing"))


def test_delete_removes_the_tag_then_a_second_delete_is_404(
    api: httpx.Client, image: dict[str, Any]
) -> None:
    assert_no_content(api.delete(f"/v2/images/{image['id']}/tags/existing"))
    assert show_image(api, image["id"])["tags"] == []

    response = api.delete(f"/v2/images/{image['id']}/tags/existing")

    assert_error(response, 404, "The resource could not be found.")


def test_a_tag_longer_than_255_characters_is_400(api: httpx.Client, image: dict[str, Any]) -> None:
    tag = "t" * 256

    response = api.put(f"/v2/images/{image['id']}/tags/{tag}")

    assert response.status_code == 400
    assert error_message(response) == (
        f"Provided object does not match schema 'image': '{tag}' is too long"
    )
    assert api.put(f"/v2/images/{image['id']}/tags/{'t' * 255}").status_code == 204


def test_adding_a_tag_beyond_the_quota_is_413_with_glances_trailing_colon(
    api: httpx.Client,
) -> None:
    image = create_image(api, tags=[f"t{i}" for i in range(128)])

    response = api.put(f"/v2/images/{image['id']}/tags/one-too-many")

    assert_error(
        response,
        413,
        f"Image tag limit exceeded for image {image['id']}: The limit has been exceeded on "
        "the number of allowed image tags. Attempted: 129, Maximum: 128:",
    )


def test_re_adding_an_existing_tag_at_the_quota_is_fine(api: httpx.Client) -> None:
    image = create_image(api, tags=[f"t{i}" for i in range(128)])

    assert_no_content(api.put(f"/v2/images/{image['id']}/tags/t0"))


@pytest.mark.parametrize("method", ["PUT", "DELETE"])
def test_a_request_body_is_400(api: httpx.Client, image: dict[str, Any], method: str) -> None:
    response = api.request(method, f"/v2/images/{image['id']}/tags/existing", content=b"{}")

    assert_error(response, 400, "A body is not expected with this request.")


@pytest.mark.parametrize("method", ["PUT", "DELETE"])
def test_an_unknown_image_is_404(api: httpx.Client, method: str) -> None:
    response = api.request(method, f"/v2/images/{UNKNOWN_ID}/tags/x")

    assert_error(response, 404, f"Image {UNKNOWN_ID} not found.")


@pytest.mark.parametrize("method", ["PUT", "DELETE"])
def test_another_projects_private_image_is_404(
    http: ClientFactory, stranger: Identity, image: dict[str, Any], method: str
) -> None:
    response = http(stranger).request(method, f"/v2/images/{image['id']}/tags/existing")

    assert_error(response, 404, f"Image {image['id']} not found.")


@pytest.mark.parametrize("method", ["PUT", "DELETE"])
def test_another_projects_public_image_is_403(
    http: ClientFactory, admin: Identity, stranger: Identity, method: str
) -> None:
    image = create_image(http(admin), visibility="public", tags=["existing"])

    response = http(stranger).request(method, f"/v2/images/{image['id']}/tags/existing")

    assert_error(response, 403, "You are not authorized to complete modify_image action.")
    assert show_image(http(admin), image["id"])["tags"] == ["existing"]


def test_a_reader_may_not_tag(http: ClientFactory, reader: Identity, image: dict[str, Any]) -> None:
    response = http(reader).put(f"/v2/images/{image['id']}/tags/x")

    assert_error(response, 403, "You are not authorized to complete modify_image action.")


def test_get_on_a_tag_is_405_with_allow(api: httpx.Client, image: dict[str, Any]) -> None:
    response = api.get(f"/v2/images/{image['id']}/tags/existing")

    assert response.status_code == 405
    assert response.headers["allow"] == "PUT, DELETE"
