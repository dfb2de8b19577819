"""Image import driven by real clients: openstacksdk (`stage_image`, `import_image`,
`create_image(..., use_import=True)`) and glanceclient's Python API."""

from __future__ import annotations

import hashlib
import io
import time
import uuid
from typing import Any

from openstack.connection import Connection

from tests.support.clients import GlanceFactory, SdkFactory
from tests.support.identities import Identity

DATA = b"imported by a client\n" * 500


def _settled(conn: Connection, image_id: str) -> Any:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        image = conn.image.get_image(image_id)
        if image.status not in ("uploading", "importing"):
            return image
        time.sleep(0.1)
    raise TimeoutError(f"image {image_id} stayed importing")


def test_openstacksdk_stages_and_imports(sdk: SdkFactory, member: Identity) -> None:
    conn = sdk(member)
    image = conn.image.create_image(
        name=f"sdk-{uuid.uuid4().hex[:8]}",
        disk_format="raw",
        container_format="bare",
        allow_duplicates=True,
    )
    image.data = DATA
    conn.image.stage_image(image)

    conn.image.import_image(image, method="glance-direct")

    imported = _settled(conn, image.id)
    assert imported.status == "active"
    assert imported.checksum == hashlib.md5(DATA, usedforsecurity=False).hexdigest()
    assert conn.image.get_import_info().import_methods["value"] == [
        "glance-direct",
        "web-download",
        "copy-image",
    ]
    [task] = list(conn.image.image_tasks(image.id))
    assert task.status == "success"


def test_openstacksdk_create_image_with_use_import(sdk: SdkFactory, member: Identity) -> None:
    conn = sdk(member)

    image = conn.create_image(
        f"sdk-import-{uuid.uuid4().hex[:8]}",
        data=DATA,
        disk_format="raw",
        container_format="bare",
        use_import=True,
        allow_duplicates=True,
    )
    assert image is not None

    # openstacksdk returns once the import is accepted (202), whatever `wait` says.
    assert _settled(conn, image.id).status == "active"
    assert conn.image.download_image(image.id).content == DATA


def test_glanceclient_stages_imports_and_lists_tasks(
    glance: GlanceFactory, member: Identity
) -> None:
    client = glance(member)
    image = client.images.create(name="gc-import", disk_format="raw", container_format="bare")

    client.images.stage(image["id"], io.BytesIO(DATA))
    client.images.image_import(image["id"], method="glance-direct")

    deadline = time.monotonic() + 60
    while client.images.get(image["id"])["status"] != "active":
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert client.images.get_import_info()["import-methods"]["value"] == [
        "glance-direct",
        "web-download",
        "copy-image",
    ]
    tasks = client.images.get_associated_image_tasks(image["id"])["tasks"]
    assert [task["status"] for task in tasks] == ["success"]
