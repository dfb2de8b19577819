"""Import plugins through the real server, as Glance's are configured
([image_import] plugins): image_decompression, image_conversion (to raw, by the
installed `qemu-img`) and inject_image_metadata, on servers of this module's own.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import random
import subprocess
import zipfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.api.image_v2.test_import import imported, new_image, stage, start_import
from tests.conftest import BACKENDS, ClientFactory
from tests.support.identities import Identity
from tests.support.servers import RunningServer, dedicated_server

RAW = random.Random(12).randbytes(1 << 20) + bytes(3 << 20)  # 4 MiB, mostly zeros
SIZE_CAP = 16 << 20
INJECTED = {"injected_by": "skylens", "hw_scsi_model": "virtio-scsi"}

CONFIG = f"""
[images]
image_size_cap = {SIZE_CAP}

[image_import]
plugins = ["image_decompression", "image_conversion", "inject_image_metadata"]

[image_conversion]
output_format = "raw"

[inject_metadata_properties]
ignore_user_roles = ["admin"]
inject = {{ injected_by = "skylens", hw_scsi_model = "virtio-scsi" }}
"""


@pytest.fixture(scope="module", params=BACKENDS)
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningServer]:
    data_dir = tmp_path_factory.mktemp(f"plugins-{request.param}")
    config = data_dir / "plugins.toml"
    config.write_text(CONFIG)
    with dedicated_server(data_dir, request.param, {"SKYLENS_CONFIG": str(config)}) as running:
        yield running


def qcow2_of(raw: bytes, directory: Path) -> bytes:
    """`raw` converted to qcow2 by qemu-img."""
    source, target = directory / "disk.raw", directory / "disk.qcow2"
    source.write_bytes(raw)
    subprocess.run(
        ["qemu-img", "convert", "-f", "raw", "-O", "qcow2", str(source), str(target)],
        check=True,
    )
    return target.read_bytes()


def zipped(data: bytes, *names: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name in names:
            archive.writestr(name, data)
    return buffer.getvalue()


def staged_import(api: httpx.Client, data: bytes, disk_format: str) -> dict[str, object]:
    image_id = new_image(api, disk_format=disk_format)
    assert stage(api, image_id, data).status_code == 204
    assert start_import(api, image_id).status_code == 202
    return imported(api, image_id)


def assert_active_with_raw(api: httpx.Client, image: dict[str, object]) -> None:
    assert image["status"] == "active", api.get(f"/v2/images/{image['id']}/tasks").json()
    assert (image["disk_format"], image["container_format"]) == ("raw", "bare")
    assert (image["size"], image["virtual_size"]) == (len(RAW), len(RAW))
    assert image["checksum"] == hashlib.md5(RAW, usedforsecurity=False).hexdigest()
    assert image["os_hash_value"] == hashlib.sha512(RAW).hexdigest()
    assert api.get(f"/v2/images/{image['id']}/file").content == RAW


def the_task_message(api: httpx.Client, image_id: object) -> tuple[str, str]:
    [task] = api.get(f"/v2/images/{image_id}/tasks").json()["tasks"]
    return task["status"], task["message"]


def test_a_qcow2_image_is_converted_to_raw(
    api: httpx.Client, tmp_path: Path, server: RunningServer
) -> None:
    qcow2 = qcow2_of(RAW, tmp_path)
    assert qcow2[:4] == b"QFI\xfb"
    assert len(qcow2) < len(RAW)

    image = staged_import(api, qcow2, "qcow2")

    assert_active_with_raw(api, image)
    assert not list((server.log.parent / "import-work").rglob("*"))  # no work file left


def test_gzip_data_is_decompressed(api: httpx.Client) -> None:
    image = staged_import(api, gzip.compress(RAW), "raw")

    assert_active_with_raw(api, image)


def test_a_zip_of_one_file_is_decompressed(api: httpx.Client) -> None:
    image = staged_import(api, zipped(RAW, "disk.raw"), "raw")

    assert_active_with_raw(api, image)


def test_a_zip_of_two_files_fails_the_import(api: httpx.Client) -> None:
    image = staged_import(api, zipped(RAW, "a.raw", "b.raw"), "raw")

    assert (image["status"], image["os_glance_failed_import"]) == ("queued", "local")
    assert the_task_message(api, image["id"]) == (
        "failure",
        "Error: Archive contains more than one file.",
    )


def test_data_that_decompresses_beyond_the_size_cap_fails_the_import(
    api: httpx.Client, server: RunningServer
) -> None:
    bomb = gzip.compress(bytes(SIZE_CAP + 1))
    assert len(bomb) < SIZE_CAP // 100

    image = staged_import(api, bomb, "raw")

    assert image["status"] == "queued"
    assert the_task_message(api, image["id"]) == (
        "failure",
        "Error: The image data is larger than this site accepts",
    )
    assert not list((server.log.parent / "import-work").rglob("*"))


def test_an_import_by_a_user_without_an_ignored_role_gets_the_injected_properties(
    api: httpx.Client,
) -> None:
    image = staged_import(api, RAW, "raw")

    assert image["status"] == "active"
    assert {key: image.get(key) for key in INJECTED} == INJECTED


def test_an_import_by_an_admin_gets_no_injected_properties(
    http: ClientFactory, admin: Identity
) -> None:
    image = staged_import(http(admin), RAW, "raw")

    assert image["status"] == "active"
    assert not set(INJECTED) & set(image)
