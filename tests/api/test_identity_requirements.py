"""What a trusted-headers identity must hold (issue 18, items 5 and 19).

A caller without a project owns nothing, so it can create no image (an image
without owner is visible to everyone and counts in no quota) and change none; and
identity values longer than the database's 255-character columns, or holding
control characters, are refused with 400 on every backend.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import BACKENDS, ClientFactory
from tests.support.errors import assert_error
from tests.support.identities import Identity
from tests.support.images import create_image
from tests.support.servers import RunningServer, dedicated_server

NO_PROJECT = {"X-User-Id": "someone", "X-Roles": "member,reader"}
ADMIN_NO_PROJECT = {"X-User-Id": "root", "X-Roles": "admin"}


def _api(server: RunningServer, headers: dict[str, str]) -> httpx.Client:
    return httpx.Client(
        base_url=server.url, headers={"Accept": "application/json", **headers}, timeout=30
    )


def _ownerless(http: ClientFactory, admin: Identity, visibility: str) -> str:
    """An image an admin made without owner on purpose (Glance allows it)."""
    image = create_image(
        http(admin),
        owner=None,
        visibility=visibility,
        disk_format="raw",
        container_format="bare",
    )
    assert image["owner"] is None
    image_id: str = image["id"]
    return image_id


def test_a_caller_without_a_project_cannot_create_an_image(server: RunningServer) -> None:
    with _api(server, NO_PROJECT) as api:
        response = api.post("/v2/images", json={"name": f"nobody-{uuid.uuid4().hex[:8]}"})

    # Glance's ImageFactoryProxy refusal of an image owned by nobody.
    assert_error(
        response, 403, "You are not permitted to create images owned by 'None'", detail=True
    )


def test_an_admin_without_a_project_cannot_create_an_ownerless_image_by_default(
    server: RunningServer,
) -> None:
    with _api(server, ADMIN_NO_PROJECT) as api:
        response = api.post("/v2/images", json={"name": "admin-of-nothing"})

    assert response.status_code == 403, response.text


def test_a_caller_without_a_project_cannot_upload_to_an_ownerless_image(
    server: RunningServer, http: ClientFactory, admin: Identity
) -> None:
    image_id = _ownerless(http, admin, "public")
    with _api(server, NO_PROJECT) as api:
        response = api.put(
            f"/v2/images/{image_id}/file",
            content=b"\0" * 4096,
            headers={"Content-Type": "application/octet-stream"},
        )

    # It may not even see the image, so the refusal is Glance's 404 (as for a stranger).
    assert_error(response, 404, "The resource could not be found.")
    assert http(admin).get(f"/v2/images/{image_id}").json()["status"] == "queued"


@pytest.mark.parametrize(
    ("method", "path", "body", "status"),
    [
        # It may not even see the image: writes are refused with 404, as to a stranger.
        ("PATCH", "", [{"op": "replace", "path": "/name", "value": "taken"}], 404),
        ("DELETE", "", None, 404),
        ("POST", "/members", {"member": "someone-else"}, 404),
    ],
)
def test_a_caller_without_a_project_cannot_change_an_ownerless_image(
    server: RunningServer,
    http: ClientFactory,
    admin: Identity,
    method: str,
    path: str,
    body: object,
    status: int,
) -> None:
    image_id = _ownerless(http, admin, "shared")
    headers = {"Content-Type": "application/openstack-images-v2.1-json-patch"}
    with _api(server, NO_PROJECT) as api:
        response = api.request(
            method,
            f"/v2/images/{image_id}{path}",
            json=body,
            headers=headers if method == "PATCH" else None,
        )

    assert response.status_code == status, response.text
    after = http(admin).get(f"/v2/images/{image_id}")
    assert after.status_code == 200
    assert after.json()["name"] is None
    assert http(admin).get(f"/v2/images/{image_id}/members").json()["members"] == []


@pytest.fixture(scope="module", params=BACKENDS)
def quota_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningServer]:
    data_dir: Path = tmp_path_factory.mktemp(f"identity-quotas-{request.param}")
    config = data_dir / "quotas.toml"
    config.write_text('[quotas]\nsource = "config"\nimage_count_total = 3\nimage_size_total = 1\n')
    with dedicated_server(data_dir, request.param, extra_args=("--config", str(config))) as running:
        yield running


def test_a_caller_without_a_project_cannot_go_around_the_quotas(
    quota_server: RunningServer,
) -> None:
    with _api(quota_server, NO_PROJECT) as api:
        statuses = [
            api.post("/v2/images", json={"name": f"over-{i}"}).status_code for i in range(5)
        ]
    with _api(quota_server, ADMIN_NO_PROJECT | {"X-Project-Id": "ops"}) as admin:
        everything = admin.get("/v2/images", params={"limit": 100}).json()["images"]

    assert statuses == [403] * 5
    assert [image for image in everything if image["owner"] is None] == []


@pytest.mark.parametrize(
    ("header", "value", "message"),
    [
        ("X-Project-Id", "p" * 256, "X-Project-Id is longer than 255 characters."),
        ("X-Tenant-Id", "p" * 256, "X-Tenant-Id is longer than 255 characters."),
        ("X-User-Id", "u" * 256, "X-User-Id is longer than 255 characters."),
        ("X-Roles", "member," + "r" * 256, "A role in X-Roles is longer than 255 characters."),
        ("X-Project-Id", "p%00", "X-Project-Id contains a control character."),
        ("X-User-Id", "u%0Ax", "X-User-Id contains a control character."),
        ("X-Roles", "member%2Cre%01ader", "A role in X-Roles contains a control character."),
    ],
)
def test_impossible_identity_values_are_400(
    server: RunningServer, header: str, value: str, message: str
) -> None:
    headers = {"X-Project-Id": uuid.uuid4().hex, "X-User-Id": "u", "X-Roles": "member"}
    headers[header] = value
    with _api(server, headers) as api:
        created = api.post("/v2/images", json={"name": "long"})
        listed = api.get("/v2/images")

    assert_error(created, 400, message)
    assert_error(listed, 400, message)


def test_a_255_character_project_is_a_project(server: RunningServer) -> None:
    project = uuid.uuid4().hex + "p" * (255 - 32)
    headers = {"X-Project-Id": project, "X-User-Id": "u" * 255, "X-Roles": "member"}
    with _api(server, headers) as api:
        created = api.post("/v2/images", json={"name": "longest"})

    assert created.status_code == 201, created.text
    assert created.json()["owner"] == project
