"""Image import driven by the command lines: `glance` (image-create-via-import,
image-stage, image-import, image-tasks, task-list, task-show, import-info) and
`openstack` (image create --import, image stage, image import, image task list),
on both backends.

The commands cannot send identity headers, so they act as the service's default
identity (project `default`, admin: copy-image and the task API are for admins).
Each command's output is checked, and the image's final state read back.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.clients import BIN, run_in_terminal
from tests.support.servers import RunningServer

DATA = os.urandom(300_000)
MD5 = hashlib.md5(DATA, usedforsecurity=False).hexdigest()


@pytest.fixture
def data_file(tmp_path: Path) -> Path:
    path = tmp_path / "image.raw"
    path.write_bytes(DATA)
    return path


def glance(server: RunningServer, *args: str) -> str:
    """`glance --os-image-api-version 2 ...` with a terminal as stdin; its stdout."""
    result = run_in_terminal(
        [
            str(BIN / "glance"),
            "--os-image-url",
            server.url,
            "--os-auth-token",
            "unused",
            "--os-image-api-version",
            "2",
            *args,
        ]
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def openstack(server: RunningServer, *args: str) -> str:
    result = run_in_terminal(
        [str(BIN / "openstack"), "--os-auth-type", "none", "--os-endpoint", server.url, *args]
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def table(output: str) -> dict[str, str]:
    """The Property | Value rows of a pretty table (continuation lines joined)."""
    rows: dict[str, str] = {}
    last = ""
    for line in output.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if not line.startswith("|") or len(cells) != 2 or cells == ["Property", "Value"]:
            continue
        if cells[0]:
            last = cells[0]
            rows[last] = cells[1]
        else:
            rows[last] += cells[1]
    return rows


def listing(output: str) -> list[dict[str, str]]:
    """The rows of a pretty list table, by column name."""
    lines = [line for line in output.splitlines() if line.startswith("|")]
    header = [cell.strip() for cell in lines[0].strip("|").split("|")]
    return [
        dict(zip(header, (cell.strip() for cell in line.strip("|").split("|")), strict=True))
        for line in lines[1:]
    ]


def image_of(server: RunningServer, image_id: str) -> dict[str, Any]:
    image: dict[str, Any] = httpx.get(f"{server.url}/v2/images/{image_id}").json()
    return image


def settled(server: RunningServer, image_id: str) -> dict[str, Any]:
    """The image once no import holds it and its tasks have ended."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        image = image_of(server, image_id)
        tasks = httpx.get(f"{server.url}/v2/images/{image_id}/tasks").json()["tasks"]
        ended = all(task["status"] in ("success", "failure") for task in tasks)
        if "os_glance_import_task" not in image and image["status"] != "importing" and ended:
            return image
        time.sleep(0.1)
    raise TimeoutError(f"the import of {image_id} did not end")


def staged_files(server: RunningServer, image_id: str) -> list[Path]:
    staging = server.log.parent / "staging"
    return [path for path in staging.rglob(f"*{image_id}*") if path.is_file()]


def test_glance_image_create_via_import_then_copy_image(
    server: RunningServer, data_file: Path
) -> None:
    name = f"cli-import-{uuid.uuid4().hex[:8]}"

    created = table(
        glance(
            server,
            "image-create-via-import",
            "--name",
            name,
            "--disk-format",
            "raw",
            "--container-format",
            "bare",
            "--import-method",
            "glance-direct",
            "--file",
            str(data_file),
        )
    )

    # The command prints the image as the import request left it.
    assert created["name"] == name
    assert created["size"] == str(len(DATA))
    assert created["status"] in ("importing", "active")
    image_id = created["id"]
    image = settled(server, image_id)
    assert (image["status"], image["checksum"], image["stores"]) == ("active", MD5, "local")
    assert httpx.get(f"{server.url}/v2/images/{image_id}/file").content == DATA
    assert staged_files(server, image_id) == []

    copied = glance(
        server, "image-import", image_id, "--import-method", "copy-image", "--stores", "cheap"
    )

    assert table(copied)["id"] == image_id
    image = settled(server, image_id)
    assert (image["status"], image["checksum"]) == ("active", MD5)
    assert image["stores"] == "local,cheap"
    assert (image["os_glance_importing_to_stores"], image["os_glance_failed_import"]) == ("", "")
    shown = table(glance(server, "image-show", image_id))
    assert (shown["status"], shown["stores"]) == ("active", "local,cheap")

    tasks = listing(glance(server, "image-tasks", image_id))
    assert [(task["Status"], task["Message"]) for task in tasks] == [
        ("success", "Copied 0 MiB"),
        ("success", "Copied 0 MiB"),
    ]
    task_ids = [
        task["id"] for task in httpx.get(f"{server.url}/v2/images/{image_id}/tasks").json()["tasks"]
    ]
    shown_task = table(glance(server, "task-show", task_ids[1]))
    assert (shown_task["type"], shown_task["status"]) == ("api_image_import", "success")
    assert shown_task["image_id"] == image_id
    assert json.loads(shown_task["input"])["import_req"] == {
        "method": {"name": "copy-image"},
        "stores": ["cheap"],
        "all_stores_must_succeed": False,  # glance's --allow-failure defaults to True
    }
    assert json.loads(shown_task["result"]) == {"image_id": image_id}
    # task-list sorts by status unless told otherwise; both tasks are listed.
    listed = listing(glance(server, "task-list", "--page-size", "1000"))
    assert set(task_ids) <= {task["ID"] for task in listed}
    statuses = [task["Status"] for task in listed]
    assert statuses == sorted(statuses, reverse=True)
    by_id = listing(glance(server, "task-list", "--sort-key", "id", "--sort-dir", "asc"))
    assert [task["ID"] for task in by_id] == sorted(task["ID"] for task in by_id)


def test_glance_image_stage_then_image_import_to_two_stores(
    server: RunningServer, data_file: Path
) -> None:
    created = table(
        glance(
            server,
            "image-create",
            "--name",
            "cli-stage",
            "--disk-format",
            "raw",
            "--container-format",
            "bare",
        )
    )
    image_id = created["id"]

    glance(server, "image-stage", image_id, "--file", str(data_file))

    staged = table(glance(server, "image-show", image_id))
    assert (staged["status"], staged["size"]) == ("uploading", str(len(DATA)))
    assert len(staged_files(server, image_id)) == 1

    started = table(
        glance(
            server,
            "image-import",
            image_id,
            "--import-method",
            "glance-direct",
            "--stores",
            "local,cheap",
        )
    )

    assert started["id"] == image_id
    assert started["os_glance_importing_to_stores"] in ("local,cheap", "")
    image = settled(server, image_id)
    assert (image["status"], image["checksum"]) == ("active", MD5)
    assert image["stores"] == "local,cheap"
    assert staged_files(server, image_id) == []
    info = table(glance(server, "import-info"))
    assert json.loads(info["import-methods"])["value"] == [
        "glance-direct",
        "web-download",
        "copy-image",
    ]


def _openstack_json(server: RunningServer, *args: str) -> Any:
    return json.loads(openstack(server, *args, "-f", "json"))


def test_openstack_image_create_import_stage_import_and_task_list(
    server: RunningServer, data_file: Path
) -> None:
    created = _openstack_json(
        server,
        "image",
        "create",
        "--import",
        "--disk-format",
        "raw",
        "--container-format",
        "bare",
        "--file",
        str(data_file),
        f"osc-import-{uuid.uuid4().hex[:8]}",
    )
    assert created["status"] in ("importing", "active")
    assert created["size"] == len(DATA)
    first = settled(server, created["id"])
    assert (first["status"], first["checksum"], first["stores"]) == ("active", MD5, "local")

    staged_id = _openstack_json(
        server, "image", "create", "--disk-format", "raw", "--container-format", "bare", "osc-st"
    )["id"]
    openstack(server, "image", "stage", "--file", str(data_file), staged_id)
    shown = _openstack_json(server, "image", "show", staged_id)
    assert (shown["status"], shown["size"]) == ("uploading", len(DATA))

    imported = _openstack_json(
        server, "image", "import", staged_id, "--method", "glance-direct", "--store", "cheap"
    )

    assert imported["id"] == staged_id
    image = settled(server, staged_id)
    assert (image["status"], image["checksum"], image["stores"]) == ("active", MD5, "cheap")
    assert staged_files(server, staged_id) == []

    _openstack_json(
        server, "image", "import", staged_id, "--method", "copy-image", "--store", "local"
    )

    image = settled(server, staged_id)
    assert (image["status"], image["stores"]) == ("active", "cheap,local")
    assert httpx.get(f"{server.url}/v2/images/{staged_id}/file").content == DATA
    tasks = _openstack_json(server, "image", "task", "list", "--limit", "1000")
    ours = {
        task["id"]
        for image_id in (first["id"], staged_id)
        for task in httpx.get(f"{server.url}/v2/images/{image_id}/tasks").json()["tasks"]
    }
    assert len(ours) == 3
    listed = {task["ID"]: task for task in tasks}
    assert ours <= set(listed)
    assert {(listed[i]["Type"], listed[i]["Status"]) for i in ours} == {
        ("api_image_import", "success")
    }
    by_status = _openstack_json(server, "image", "task", "list", "--sort-key", "status")
    assert [task["Status"] for task in by_status] == sorted(
        (task["Status"] for task in by_status), reverse=True
    )
