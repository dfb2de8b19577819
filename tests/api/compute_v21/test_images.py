"""GET/DELETE /v2.1[/{project_id}]/images...: the Compute API's view of the catalogue."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from tests.conftest import ClientFactory
from tests.support.identities import Identity
from tests.support.images import create_image, patch_image
from tests.support.seeding import activate, set_image_columns
from tests.support.servers import RunningServer


def _links(server: RunningServer, image_id: str, project: str = "") -> list[dict[str, str]]:
    segment = f"/{project}" if project else ""
    return [
        {"rel": "self", "href": f"{server.url}/v2.1{segment}/images/{image_id}"},
        {"rel": "bookmark", "href": f"{server.url}{segment}/images/{image_id}"},
        {
            "rel": "alternate",
            "type": "application/vnd.openstack.image",
            "href": f"{server.url}/images/{image_id}",
        },
    ]


def _show(api: httpx.Client, image_id: str) -> dict[str, Any]:
    response = api.get(f"/v2.1/images/{image_id}")
    assert response.status_code == 200, response.text
    image: dict[str, Any] = response.json()["image"]
    return image


def test_show_has_exactly_the_compute_attributes(api: httpx.Client, server: RunningServer) -> None:
    created = create_image(api, name="cirros", min_ram=512, min_disk=2, os_distro="cirros")

    response = api.get(f"/v2.1/images/{created['id']}")

    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {
        "image": {
            "id": created["id"],
            "name": "cirros",
            "minRam": 512,
            "minDisk": 2,
            "metadata": {"os_distro": "cirros"},
            "created": created["created_at"],
            "updated": created["updated_at"],
            "status": "SAVING",
            "progress": 25,
            "OS-EXT-IMG-SIZE:size": 0,
            "links": _links(server, created["id"]),
        }
    }


@pytest.mark.parametrize(
    ("status", "shown", "progress"),
    [
        ("queued", "SAVING", 25),
        ("saving", "SAVING", 50),
        ("active", "ACTIVE", 100),
        ("killed", "ERROR", 0),
        ("pending_delete", "DELETED", 0),
        ("deactivated", "UNKNOWN", 0),
        ("uploading", "UNKNOWN", 0),
        ("importing", "UNKNOWN", 0),
    ],
)
def test_status_and_progress_map_from_the_image_status(
    api: httpx.Client, server: RunningServer, status: str, shown: str, progress: int
) -> None:
    image_id = create_image(api)["id"]
    set_image_columns(server, image_id, status=status)

    image = _show(api, image_id)

    assert (image["status"], image["progress"]) == (shown, progress)


def test_an_active_image_shows_its_size(api: httpx.Client, server: RunningServer) -> None:
    image_id = create_image(api)["id"]
    activate(server, image_id)
    set_image_columns(server, image_id, size=4096)

    assert _show(api, image_id)["OS-EXT-IMG-SIZE:size"] == 4096


def test_a_snapshot_links_its_server(api: httpx.Client, server: RunningServer) -> None:
    server_id = str(uuid.uuid4())
    image_id = create_image(api, instance_uuid=server_id, image_type="snapshot")["id"]

    image = _show(api, image_id)

    assert image["server"] == {
        "id": server_id,
        "links": [
            {"rel": "self", "href": f"{server.url}/v2.1/servers/{server_id}"},
            {"rel": "bookmark", "href": f"{server.url}/servers/{server_id}"},
        ],
    }
    assert image["metadata"] == {"instance_uuid": server_id, "image_type": "snapshot"}


@pytest.mark.parametrize(
    ("value", "shown"),
    [("True", "AUTO"), ("yes", "AUTO"), ("1", "AUTO"), ("false", "MANUAL"), ("x", "MANUAL")],
)
def test_auto_disk_config_shows_as_disk_config(api: httpx.Client, value: str, shown: str) -> None:
    image_id = create_image(api, auto_disk_config=value)["id"]

    image = _show(api, image_id)

    assert image["OS-DCF:diskConfig"] == shown
    assert list(image)[-1] == "OS-DCF:diskConfig"


def test_without_those_properties_neither_key_is_shown(api: httpx.Client) -> None:
    image = _show(api, create_image(api)["id"])

    assert "server" not in image
    assert "OS-DCF:diskConfig" not in image


def test_the_project_id_in_the_url_appears_in_the_links(
    api: httpx.Client, member: Identity, server: RunningServer
) -> None:
    image_id = create_image(api, name="scoped")["id"]

    shown = api.get(f"/v2.1/{member.project}/images/{image_id}").json()["image"]
    listed = api.get(f"/v2.1/{member.project}/images").json()["images"]

    assert shown["links"] == _links(server, image_id, member.project)
    assert listed == [
        {"id": image_id, "name": "scoped", "links": _links(server, image_id, member.project)}
    ]


def test_a_project_id_that_is_not_the_callers_is_400(
    api: httpx.Client, other_project: str, member: Identity
) -> None:
    image_id = create_image(api)["id"]

    for method, path in [
        ("GET", f"/v2.1/{other_project}/images"),
        ("GET", f"/v2.1/{other_project}/images/{image_id}"),
        ("DELETE", f"/v2.1/{other_project}/images/{image_id}"),
        ("GET", f"/v2.1/{other_project}/images/{image_id}/metadata"),
    ]:
        response = api.request(method, path)
        assert response.status_code == 400, path
        assert response.json() == {
            "badRequest": {
                "code": 400,
                "message": (
                    f"Malformed request URL: URL's project_id '{other_project}' doesn't "
                    f"match Context's project_id '{member.project}'"
                ),
            }
        }
    assert api.get(f"/v2/images/{image_id}").status_code == 200


def test_list_and_detail_show_the_callers_images(api: httpx.Client, server: RunningServer) -> None:
    first = create_image(api, name="one")["id"]
    second = create_image(api, name="two", build="7")["id"]

    listed = api.get("/v2.1/images").json()
    detailed = api.get("/v2.1/images/detail").json()

    assert list(listed) == ["images"]
    assert sorted(listed["images"], key=lambda image: image["name"]) == [
        {"id": first, "name": "one", "links": _links(server, first)},
        {"id": second, "name": "two", "links": _links(server, second)},
    ]
    # Created within the same second or not, both lists keep one order.
    order = [image["id"] for image in listed["images"]]
    assert [image["id"] for image in detailed["images"]] == order
    assert {image["id"]: image for image in detailed["images"]}[second] == _show(api, second)
    assert "images_links" not in detailed


def test_other_projects_private_images_are_not_found(
    api: httpx.Client, http: ClientFactory, stranger: Identity
) -> None:
    image_id = create_image(api, visibility="private")["id"]
    theirs = http(stranger)

    assert image_id not in [i["id"] for i in theirs.get("/v2.1/images").json()["images"]]
    for response in (
        theirs.get(f"/v2.1/images/{image_id}"),
        theirs.delete(f"/v2.1/images/{image_id}"),
        theirs.get(f"/v2.1/images/{image_id}/metadata"),
    ):
        assert response.json() == {"itemNotFound": {"code": 404, "message": "Image not found."}}


def test_an_unknown_image_is_404(api: httpx.Client) -> None:
    response = api.get(f"/v2.1/images/{uuid.uuid4()}")

    assert response.status_code == 404
    assert response.json() == {"itemNotFound": {"code": 404, "message": "Image not found."}}


def test_delete_removes_the_image_and_its_data(api: httpx.Client) -> None:
    image_id = create_image(api, disk_format="raw", container_format="bare")["id"]
    upload = api.put(
        f"/v2/images/{image_id}/file",
        content=b"x" * 1024,
        headers={"Content-Type": "application/octet-stream"},
    )
    assert upload.status_code == 204

    response = api.delete(f"/v2.1/images/{image_id}")

    assert response.status_code == 204
    assert response.content == b""
    assert api.get(f"/v2/images/{image_id}").status_code == 404
    assert api.get(f"/v2.1/images/{image_id}").status_code == 404
    assert api.delete(f"/v2.1/images/{image_id}").status_code == 404


def test_a_protected_image_cannot_be_deleted(api: httpx.Client) -> None:
    image_id = create_image(api, protected=True)["id"]

    response = api.delete(f"/v2.1/images/{image_id}")

    assert response.status_code == 403
    assert list(response.json()) == ["forbidden"]
    assert api.get(f"/v2/images/{image_id}").status_code == 200


def test_a_reader_cannot_delete(http: ClientFactory, api: httpx.Client, reader: Identity) -> None:
    image_id = create_image(api)["id"]

    response = http(reader).delete(f"/v2.1/images/{image_id}")

    assert response.status_code == 403
    assert list(response.json()) == ["forbidden"]


def test_changes_through_the_image_api_show_through_compute(api: httpx.Client) -> None:
    image_id = create_image(api, name="before", os_distro="fedora")["id"]
    patch = [
        {"op": "replace", "path": "/name", "value": "after"},
        {"op": "replace", "path": "/min_ram", "value": 1024},
        {"op": "add", "path": "/hw_disk_bus", "value": "scsi"},
        {"op": "remove", "path": "/os_distro"},
    ]
    assert patch_image(api, image_id, patch).status_code == 200

    image = _show(api, image_id)

    assert image["name"] == "after"
    assert image["minRam"] == 1024
    assert image["metadata"] == {"hw_disk_bus": "scsi"}


# -- what one list may ask for ----------------------------------------------------------

HUGE = "99999999999999999999"  # past 64 bits


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"minDisk": HUGE}, f"'min_disk' value out of range, must not exceed {2**31 - 1}."),
        ({"minRam": str(2**31)}, f"'min_ram' value out of range, must not exceed {2**31 - 1}."),
        (
            {f"property-p{index}": "x" for index in range(51)},
            "Too many property filters: 51. The maximum is 50.",
        ),
        ((("name", "x"),) * 129, "Too many query parameters: 129. The maximum is 128."),
    ],
)
def test_a_list_beyond_the_bounds_is_400(
    api: httpx.Client, params: dict[str, str] | tuple[tuple[str, str], ...], message: str
) -> None:
    """The Compute list shares the Image API's grammar and caps; its faults are Nova's."""
    for path in ("/v2.1/images", "/v2.1/images/detail"):
        response = api.get(path, params=params)
        assert response.status_code == 400, response.text
        assert response.json() == {"badRequest": {"code": 400, "message": message}}


def test_a_list_at_the_bounds_finds_its_images(api: httpx.Client) -> None:
    properties = {f"p{index}-{uuid.uuid4().hex[:6]}": "x" for index in range(50)}
    image_id = create_image(api, min_disk=2**31 - 1, **properties)["id"]
    params = {f"property-{name}": value for name, value in properties.items()}

    response = api.get("/v2.1/images", params={**params, "minDisk": str(2**31 - 1)})

    assert [image["id"] for image in response.json()["images"]] == [image_id]
