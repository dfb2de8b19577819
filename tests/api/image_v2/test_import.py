"""Interoperable image import over raw HTTP: `GET /v2/info/import`, stage,
glance-direct, copy-image, an image's tasks and the task API, with Glance 33's
statuses and texts (tests/data/glance-33-exchanges/ 015, 208-235).

The session servers have three stores (`local`, the default, and `swift` and `s3`
on the real Swift server) and stage into a file store under their data directory.
"""

from __future__ import annotations

import hashlib
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import ClientFactory
from tests.support.errors import assert_error
from tests.support.identities import Identity
from tests.support.servers import RunningServer

OCTET = {"Content-Type": "application/octet-stream"}
DATA = b"Glance golden sample payload 0123456789abcdef\n" * 22


@pytest.fixture
def server(object_store_server: RunningServer) -> RunningServer:
    """Imports here go to the `swift` and `s3` stores too: servers that have them."""
    return object_store_server


def new_image(api: httpx.Client, **body: Any) -> str:
    body = {"name": "imported", "disk_format": "raw", "container_format": "bare", **body}
    response = api.post("/v2/images", json=body)
    assert response.status_code == 201, response.text
    image_id: str = response.json()["id"]
    return image_id


def stage(api: httpx.Client, image_id: str, data: bytes = DATA) -> httpx.Response:
    return api.put(f"/v2/images/{image_id}/stage", content=data, headers=OCTET)


def start_import(api: httpx.Client, image_id: str, **body: Any) -> httpx.Response:
    body.setdefault("method", {"name": "glance-direct"})
    return api.post(f"/v2/images/{image_id}/import", json=body)


def imported(api: httpx.Client, image_id: str) -> dict[str, Any]:
    """The image once its import has ended: the image's import lock is gone, then
    the task records its end (just after the image does)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        image: dict[str, Any] = api.get(f"/v2/images/{image_id}").json()
        tasks = api.get(f"/v2/images/{image_id}/tasks").json()["tasks"]
        ended = all(task["status"] in ("success", "failure") for task in tasks)
        if "os_glance_import_task" not in image and ended:
            return image
        time.sleep(0.05)
    raise TimeoutError(f"the import of {image_id} did not end")


def staged_files(server: RunningServer) -> list[Path]:
    return [path for path in (server.log.parent / "staging").rglob("*") if path.is_file()]


def test_info_import_lists_the_enabled_methods(api: httpx.Client) -> None:
    response = api.get("/v2/info/import")

    assert response.status_code == 200
    assert response.json() == {
        "import-methods": {
            "description": "Import methods available.",
            "type": "array",
            "value": ["glance-direct", "web-download", "copy-image"],
        }
    }


def test_create_announces_the_import_methods(api: httpx.Client) -> None:
    response = api.post("/v2/images", json={"name": "x"})

    assert response.headers["OpenStack-image-import-methods"] == (
        "glance-direct,web-download,copy-image"
    )


def test_stage_keeps_the_data_aside_and_the_image_uploading(api: httpx.Client) -> None:
    image_id = new_image(api)

    response = stage(api, image_id)

    assert response.status_code == 204
    assert response.headers["content-type"] == "text/html; charset=UTF-8"
    image = api.get(f"/v2/images/{image_id}").json()
    assert (image["status"], image["size"], image["checksum"]) == ("uploading", len(DATA), None)
    assert "stores" not in image
    assert "os_glance_stage_host" not in image  # kept, but never shown (as Glance)
    assert api.get(f"/v2/images/{image_id}/file").status_code == 204


@pytest.mark.parametrize("imported_first", [False, True])
def test_deleting_an_image_deletes_its_staged_data(
    api: httpx.Client, server: RunningServer, imported_first: bool
) -> None:
    image_id = new_image(api, disk_format="qcow2" if imported_first else "raw")
    assert stage(api, image_id).status_code == 204
    if imported_first:  # a failed import (the data is raw) leaves the image queued
        start_import(api, image_id)
        assert imported(api, image_id)["status"] == "queued"
        assert stage(api, image_id).status_code == 204  # staged again
    assert [path for path in staged_files(server) if image_id in path.name]

    assert api.delete(f"/v2/images/{image_id}").status_code == 204

    assert not [path for path in staged_files(server) if image_id in path.name]


def test_staging_twice_is_409(api: httpx.Client) -> None:
    image_id = new_image(api)
    stage(api, image_id)

    assert_error(
        stage(api, image_id),
        409,
        "Image status transition from uploading to uploading is not allowed",
    )


def test_stage_needs_octet_stream(api: httpx.Client) -> None:
    image_id = new_image(api)

    response = api.put(f"/v2/images/{image_id}/stage", content=DATA)

    assert response.status_code == 415


def test_stage_short_of_the_announced_size_leaves_the_image_queued(
    api: httpx.Client, server: RunningServer
) -> None:
    image_id = new_image(api)

    response = api.put(
        f"/v2/images/{image_id}/stage",
        content=DATA,
        headers={**OCTET, "x-openstack-image-size": str(len(DATA) + 1)},
    )

    assert_error(
        response, 400, f"Size mismatch: expected {len(DATA) + 1} bytes, got {len(DATA)} bytes"
    )
    image = api.get(f"/v2/images/{image_id}").json()
    assert (image["status"], image["size"]) == ("queued", None)
    assert not [path for path in staged_files(server) if image_id in path.name]


def test_glance_direct_imports_the_staged_data_to_the_default_store(
    api: httpx.Client, server: RunningServer
) -> None:
    image_id = new_image(api)
    stage(api, image_id)

    response = start_import(api, image_id)

    assert response.status_code == 202
    assert response.content == b""
    image = imported(api, image_id)
    assert image["status"] == "active"
    assert image["stores"] == "local"
    assert image["checksum"] == hashlib.md5(DATA, usedforsecurity=False).hexdigest()
    assert image["os_hash_value"] == hashlib.sha512(DATA).hexdigest()
    assert (image["size"], image["virtual_size"]) == (len(DATA), len(DATA))
    assert image["os_glance_importing_to_stores"] == ""
    assert image["os_glance_failed_import"] == ""
    assert api.get(f"/v2/images/{image_id}/file").content == DATA
    assert not [path for path in staged_files(server) if image_id in path.name]


def test_glance_direct_to_several_stores(api: httpx.Client) -> None:
    image_id = new_image(api)
    stage(api, image_id)

    start_import(api, image_id, stores=["swift", "s3"])

    image = imported(api, image_id)
    assert (image["status"], image["stores"]) == ("active", "swift,s3")


def test_glance_direct_to_all_stores(api: httpx.Client) -> None:
    image_id = new_image(api)
    stage(api, image_id)

    start_import(api, image_id, all_stores=True)

    assert imported(api, image_id)["stores"] == "local,swift,s3"


def test_x_image_meta_store_names_the_target(api: httpx.Client) -> None:
    image_id = new_image(api)
    stage(api, image_id)

    response = api.post(
        f"/v2/images/{image_id}/import",
        json={"method": {"name": "glance-direct"}},
        headers={"X-Image-Meta-Store": "s3"},
    )

    assert response.status_code == 202
    assert imported(api, image_id)["stores"] == "s3"


def test_an_import_that_fails_sends_the_image_back_to_queued(
    api: httpx.Client, server: RunningServer
) -> None:
    image_id = new_image(api, disk_format="qcow2")  # the data is raw: refused
    stage(api, image_id)

    start_import(api, image_id)

    image = imported(api, image_id)
    assert (image["status"], image["size"]) == ("queued", None)
    assert image["os_glance_failed_import"] == "local"
    assert image["os_glance_importing_to_stores"] == ""
    assert "stores" not in image
    tasks = api.get(f"/v2/images/{image_id}/tasks").json()["tasks"]
    assert [(task["status"], task["message"]) for task in tasks] == [
        ("failure", "Error: Image disk_format qcow2 does not match stream data raw")
    ]
    assert not [path for path in staged_files(server) if image_id in path.name]


def test_an_image_lists_its_import_tasks(api: httpx.Client, member: Identity) -> None:
    image_id = new_image(api)
    stage(api, image_id)
    request_id = start_import(api, image_id).headers["x-openstack-request-id"]
    imported(api, image_id)

    response = api.get(f"/v2/images/{image_id}/tasks")

    assert response.status_code == 200
    [task] = response.json()["tasks"]
    assert task["type"] == "api_image_import"
    assert task["status"] == "success"
    assert task["owner"] == member.project
    assert task["user_id"] == member.user
    assert task["request_id"] == request_id
    assert task["image_id"] == image_id
    assert task["input"] == {
        "image_id": image_id,
        "import_req": {"method": {"name": "glance-direct"}},
        "backend": ["local"],
    }
    assert task["result"] == {"image_id": image_id}
    assert task["message"] == "Copied 0 MiB"
    assert (task["deleted"], task["deleted_at"]) == (False, None)
    assert task["expires_at"] > task["created_at"]


def test_the_tasks_of_an_image_nobody_may_see_are_404(
    api: httpx.Client, http: ClientFactory, stranger: Identity
) -> None:
    image_id = new_image(api)

    assert_error(
        http(stranger).get(f"/v2/images/{image_id}/tasks"),
        404,
        "The resource could not be found.",
    )


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"meth": 1}, "Import request requires a 'method' field."),
        ({"method": {"nam": "glance-direct"}}, "Import request requires a 'name' field."),
        ({"method": {"name": "teleport"}}, "Unknown import method name 'teleport'."),
        # Not served: refused as Glance refuses a disabled method.
        ({"method": {"name": "glance-download"}}, "Unknown import method name 'glance-download'."),
        (
            {"method": {"name": "glance-direct"}, "all_stores": "yes"},
            "'all_stores' must be boolean value only",
        ),
        (
            {"method": {"name": "glance-direct"}, "all_stores_must_succeed": 1},
            "'all_stores_must_succeed' must be boolean value only",
        ),
        (
            {"method": {"name": "glance-direct"}, "all_stores": True, "stores": ["local"]},
            "All_stores parameter can't be used with x-image-meta-store header or stores parameter",
        ),
    ],
)
def test_malformed_import_requests_are_400(
    api: httpx.Client, body: dict[str, Any], message: str
) -> None:
    image_id = new_image(api)
    stage(api, image_id)

    assert_error(api.post(f"/v2/images/{image_id}/import", json=body), 400, message)


def test_stores_and_the_store_header_together_are_400(api: httpx.Client) -> None:
    image_id = new_image(api)

    response = api.post(
        f"/v2/images/{image_id}/import",
        json={"method": {"name": "glance-direct"}, "stores": ["local"]},
        headers={"X-Image-Meta-Store": "s3"},
    )

    assert_error(
        response, 400, "Stores parameter and x-image-meta-store header can't be both specified"
    )


def test_glance_direct_before_stage_is_409(api: httpx.Client) -> None:
    image_id = new_image(api)

    assert_error(
        start_import(api, image_id),
        409,
        "Image needs to be staged before 'glance-direct' method can be used",
    )


def test_an_unknown_store_is_409(api: httpx.Client) -> None:
    image_id = new_image(api)
    stage(api, image_id)

    assert_error(
        start_import(api, image_id, stores=["nowhere"]),
        409,
        "Store for identifier nowhere not found",
    )


def test_an_active_image_cannot_be_imported_again(api: httpx.Client) -> None:
    image_id = new_image(api)
    stage(api, image_id)
    start_import(api, image_id)
    imported(api, image_id)

    assert_error(
        start_import(api, image_id), 409, "Image with status active cannot be target for import"
    )


def test_import_needs_the_formats(api: httpx.Client) -> None:
    response = api.post("/v2/images", json={"name": "no formats"})
    image_id = response.json()["id"]
    stage(api, image_id)

    assert_error(
        start_import(api, image_id), 409, "'container_format' needs to be set before import"
    )


def test_a_reader_may_not_import(api: httpx.Client, http: ClientFactory, reader: Identity) -> None:
    image_id = new_image(api)
    stage(api, image_id)

    assert_error(
        start_import(http(reader), image_id),
        403,
        "You are not authorized to complete modify_image action.",
    )


def test_another_projects_image_is_404(
    api: httpx.Client, http: ClientFactory, stranger: Identity
) -> None:
    image_id = new_image(api)
    stage(api, image_id)

    assert_error(start_import(http(stranger), image_id), 404, f"No image found with ID {image_id}")


def _active_image(api: httpx.Client) -> str:
    image_id = new_image(api)
    stage(api, image_id)
    start_import(api, image_id)
    assert imported(api, image_id)["status"] == "active"
    return image_id


def test_copy_image_is_for_admins(api: httpx.Client) -> None:
    image_id = _active_image(api)

    assert_error(
        start_import(api, image_id, method={"name": "copy-image"}, stores=["s3"]),
        403,
        "You are not authorized to complete copy_image action.",
    )


def test_copy_image_needs_an_active_image(
    api: httpx.Client, http: ClientFactory, admin: Identity
) -> None:
    image_id = new_image(api)

    assert_error(
        start_import(http(admin), image_id, method={"name": "copy-image"}, stores=["s3"]),
        409,
        "Only images with status active can be targeted for copying",
    )


def test_copy_image_copies_to_more_stores_and_the_copies_can_go(
    api: httpx.Client, http: ClientFactory, admin: Identity
) -> None:
    image_id = _active_image(api)
    operator = http(admin)

    response = start_import(
        operator, image_id, method={"name": "copy-image"}, stores=["swift", "s3"]
    )

    assert response.status_code == 202
    image = imported(api, image_id)
    assert (image["status"], image["stores"]) == ("active", "local,swift,s3")
    assert image["checksum"] == hashlib.md5(DATA, usedforsecurity=False).hexdigest()
    assert_error(
        start_import(operator, image_id, method={"name": "copy-image"}, stores=["s3"]),
        400,
        "Image is already present at store 's3'",
    )
    assert operator.delete(f"/v2/stores/local/{image_id}").status_code == 204
    assert imported(api, image_id)["stores"] == "swift,s3"
    assert api.get(f"/v2/images/{image_id}/file").content == DATA


def test_copy_image_to_all_stores_skips_those_that_have_it(
    api: httpx.Client, http: ClientFactory, admin: Identity
) -> None:
    image_id = _active_image(api)

    response = start_import(http(admin), image_id, method={"name": "copy-image"}, all_stores=True)

    assert response.status_code == 202
    assert imported(api, image_id)["stores"] == "local,swift,s3"
    tasks = api.get(f"/v2/images/{image_id}/tasks").json()["tasks"]
    assert [task["input"]["backend"] for task in tasks] == [["local"], ["swift", "s3"]]


def test_the_task_api_is_for_admins(
    api: httpx.Client, http: ClientFactory, admin: Identity
) -> None:
    image_id = _active_image(api)
    [task] = api.get(f"/v2/images/{image_id}/tasks").json()["tasks"]
    denied = "You are not authorized to complete tasks_api_access action."

    assert_error(api.get("/v2/tasks"), 403, denied)
    assert_error(api.get(f"/v2/tasks/{task['id']}"), 403, denied)
    assert_error(api.post("/v2/tasks", json={"type": "import", "input": {}}), 403, denied)
    shown = http(admin).get(f"/v2/tasks/{task['id']}")
    assert shown.status_code == 200
    assert shown.json()["self"] == f"/v2/tasks/{task['id']}"
    assert shown.json()["status"] == "success"
    listed = http(admin).get("/v2/tasks", params={"limit": 1000}).json()
    assert task["id"] in [t["id"] for t in listed["tasks"]]
    assert listed["schema"] == "/v2/schemas/tasks"


@pytest.mark.parametrize("sort_key", ["status", "type", "id", "updated_at"])
def test_tasks_sort_by_the_keys_glanceclient_offers_and_page_so(
    api: httpx.Client, http: ClientFactory, admin: Identity, sort_key: str
) -> None:
    """`glance task-list` sends `sort_key=status` unless told otherwise (and offers
    `id` and `type`); ties go by `created_at`, then `id`, and paging keeps the order."""
    failed = new_image(api, disk_format="qcow2")  # the data is raw: a failed task
    stage(api, failed)
    start_import(api, failed)
    imported(api, failed)
    _active_image(api)
    client = http(admin)
    params = {"sort_key": sort_key, "sort_dir": "asc"}
    everything = client.get("/v2/tasks", params={**params, "limit": 1000}).json()["tasks"]
    paged: list[dict[str, Any]] = []
    page = client.get("/v2/tasks", params={**params, "limit": 2}).json()
    while True:
        paged += page["tasks"]
        if "next" not in page:
            break
        page = client.get(page["next"]).json()

    assert [task["id"] for task in paged] == [task["id"] for task in everything]
    keys = [(task[sort_key], task["created_at"]) for task in everything]
    assert keys == sorted(keys)
    assert {"success", "failure"} <= {task["status"] for task in everything}


def test_an_unknown_task_is_404(http: ClientFactory, admin: Identity) -> None:
    unknown = "3f0e2a1b-0000-4000-8000-000000000000"

    assert_error(http(admin).get(f"/v2/tasks/{unknown}"), 404, f"Could not find task {unknown}")


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"limit": "x"}, "limit param must be an integer"),
        ({"limit": "-1"}, "limit param must be positive"),
        ({"sort_dir": "up"}, "Invalid sort direction: up"),
        ({"status": "done"}, "Invalid status value: done"),
        ({"type": "api_image_import"}, "Invalid type value: api_image_import"),
        ({"marker": "nope"}, "Invalid marker format"),
        ({"sort_key": "input"}, "Unsupported sort_key: input"),
    ],
)
def test_bad_task_list_parameters_are_400(
    http: ClientFactory, admin: Identity, params: dict[str, str], message: str
) -> None:
    assert_error(http(admin).get("/v2/tasks", params=params), 400, message)


def test_the_task_schemas_are_glances(api: httpx.Client, repo_root: Path) -> None:
    import json

    recorded = repo_root / "tests" / "data" / "glance-33-exchanges"
    for name, file in (("task", "011-schema-task.json"), ("tasks", "012-schema-tasks.json")):
        expected = json.loads((recorded / file).read_text())["response"]["body"]
        assert api.get(f"/v2/schemas/{name}").json() == expected
