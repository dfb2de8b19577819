"""Image data (PUT/GET /v2/images/{id}/file) through real clients.

openstacksdk and python-glanceclient run on both backends; the `openstack` and
`glance` commands, which speak through those same libraries, on SQLite only.
Digests are compared with what the `md5sum` and `sha512sum` commands print.
Both libraries check downloads against the image's os_hash_value (sha512),
falling back to the md5 `checksum` or Content-MD5, so a corrupted blob proves
they verify.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest
from glanceclient import exc
from openstack import exceptions
from openstack.connection import Connection
from openstack.image.v2.image import Image

from tests.support.clients import BIN, GlanceFactory, SdkFactory, run_in_terminal
from tests.support.identities import Identity
from tests.support.servers import RunningServer

MIB = 1 << 20


def _random_file(directory: Path, size: int, name: str = "image.raw") -> Path:
    path = directory / name
    path.write_bytes(os.urandom(size))
    return path


def _qcow2(directory: Path, virtual_size: str = "16M") -> Path:
    path = directory / "disk.qcow2"
    subprocess.run(
        ["qemu-img", "create", "-q", "-f", "qcow2", str(path), virtual_size],
        check=True,
        capture_output=True,
        timeout=30,
    )
    return path


def _digest(command: str, path: Path) -> str:
    """The digest `md5sum` or `sha512sum` prints for `path`."""
    result = subprocess.run(
        [command, str(path)], check=True, capture_output=True, text=True, timeout=30
    )
    return result.stdout.split()[0]


def _record_requests(conn: Connection) -> list[tuple[str, str, int]]:
    """(method, path, status) of every request `conn` makes from now on."""
    requested: list[tuple[str, str, int]] = []

    def record(response: Any, *args: Any, **kwargs: Any) -> None:
        path = response.request.path_url.split("?")[0]
        requested.append((response.request.method, path, response.status_code))

    conn.session.session.hooks["response"].append(record)
    return requested


def _blob(server: RunningServer, image_id: str) -> Path:
    """The file a filesystem store under the server's data dir keeps the data in."""
    data_dir = server.log.parent
    found = [path for path in data_dir.rglob(image_id) if path.is_file()]
    assert len(found) == 1, f"no single blob for {image_id} under {data_dir}: {found}"
    return found[0]


def _corrupt(path: Path) -> None:
    """Flip one byte in the middle: same size, different digests."""
    with open(path, "r+b") as handle:
        handle.seek(path.stat().st_size // 2)
        byte = handle.read(1)
        handle.seek(-1, io.SEEK_CUR)
        handle.write(bytes([byte[0] ^ 0xFF]))


# -- openstacksdk -------------------------------------------------------------


def test_sdk_create_image_uploads_and_downloads_verified(
    sdk: SdkFactory, member: Identity, tmp_path: Path
) -> None:
    conn = sdk(member)
    source = _random_file(tmp_path, 3 * MIB + 17)
    data = source.read_bytes()
    md5, sha512 = _digest("md5sum", source), _digest("sha512sum", source)
    name = f"sdk-data-{uuid.uuid4().hex[:8]}"
    requested = _record_requests(conn)

    # The cloud layer: create, PUT the file, compare the `checksum` the server
    # computed with its own md5 (deleting the image on a mismatch), wait for active.
    image = conn.create_image(
        name,
        filename=str(source),
        disk_format="raw",
        container_format="bare",
        wait=True,
        validate_checksum=True,
    )

    assert isinstance(image, Image), requested
    assert image.status == "active"
    assert [r for r in requested if r[0] == "PUT"] == [("PUT", f"/v2/images/{image.id}/file", 204)]
    # Version discovery, then images only: no /v2/info/import, tasks or staging.
    assert {path for _, path, _ in requested if not path.startswith("/v2/images")} == {"/"}
    stored = conn.image.get_image(image.id)
    assert stored.name == name
    assert stored.size == len(data)
    assert stored.virtual_size == len(data)
    assert stored.checksum == md5
    assert stored.hash_algo == "sha512"
    assert stored.hash_value == sha512
    assert stored.disk_format == "raw"
    assert stored.properties["stores"] == "local"
    assert stored.properties["owner_specified.openstack.md5"] == md5

    whole = conn.image.download_image(image, stream=False)
    assert whole.status_code == 200
    assert whole.content == data
    assert whole.headers["Content-MD5"] == md5

    streamed = conn.image.download_image(image.id, stream=True)
    try:
        assert streamed.headers["Content-MD5"] == md5
        assert int(streamed.headers["Content-Length"]) == len(data)
        assert b"".join(streamed.iter_content(chunk_size=64 * 1024)) == data
    finally:
        streamed.close()

    target = tmp_path / "out.raw"
    conn.image.download_image(image, output=str(target))
    assert target.read_bytes() == data
    assert _digest("sha512sum", target) == sha512
    with open(tmp_path / "out2.raw", "wb") as handle:
        conn.image.download_image(image, output=handle, chunk_size=MIB)
    assert _digest("md5sum", tmp_path / "out2.raw") == md5


def test_sdk_qcow2_gets_its_virtual_size(sdk: SdkFactory, member: Identity, tmp_path: Path) -> None:
    conn = sdk(member)
    source = _qcow2(tmp_path, "16M")

    image = conn.create_image(
        f"sdk-qcow2-{uuid.uuid4().hex[:8]}",
        filename=str(source),
        disk_format="qcow2",
        container_format="bare",
        wait=True,
    )

    assert isinstance(image, Image)
    stored = conn.image.get_image(image.id)
    assert stored.status == "active"
    assert stored.disk_format == "qcow2"
    assert stored.virtual_size == 16 * MIB
    assert stored.size == source.stat().st_size
    assert stored.size < MIB  # qemu-img allocates nothing for an empty disk
    assert stored.checksum == _digest("md5sum", source)
    assert stored.hash_value == _digest("sha512sum", source)
    assert conn.image.download_image(stored).content == source.read_bytes()


def test_sdk_proxy_create_then_upload(sdk: SdkFactory, member: Identity, tmp_path: Path) -> None:
    conn = sdk(member)
    source = _random_file(tmp_path, 2 * MIB)
    image = conn.image.create_image(
        name=f"sdk-two-step-{uuid.uuid4().hex[:8]}",
        disk_format="raw",
        container_format="bare",
        allow_duplicates=True,
    )
    assert conn.image.get_image(image.id).status == "queued"
    # Nothing to download yet: a bare 204, which the SDK hands back as is.
    empty = conn.image.download_image(image)
    assert empty.status_code == 204
    assert empty.content == b""

    with open(source, "rb") as handle:
        response = image.upload(conn.image, data=handle)

    assert response.status_code == 204
    stored = conn.image.get_image(image.id)
    assert stored.status == "active"
    assert stored.size == 2 * MIB
    assert stored.checksum == _digest("md5sum", source)
    assert conn.image.download_image(image).content == source.read_bytes()


def test_sdk_detects_corrupted_data(
    sdk: SdkFactory, member: Identity, server: RunningServer, tmp_path: Path
) -> None:
    conn = sdk(member)
    source = _random_file(tmp_path, MIB)
    image = conn.create_image(
        f"sdk-rot-{uuid.uuid4().hex[:8]}",
        filename=str(source),
        disk_format="raw",
        container_format="bare",
        wait=True,
    )
    assert isinstance(image, Image)
    assert conn.image.download_image(image).content == source.read_bytes()

    _corrupt(_blob(server, image.id))

    with pytest.raises(exceptions.InvalidResponse, match="checksum mismatch"):
        conn.image.download_image(image)
    with pytest.raises(exceptions.SDKException, match="checksum mismatch"):
        conn.image.download_image(image, output=str(tmp_path / "rotten"))


# -- python-glanceclient ------------------------------------------------------


def test_glanceclient_upload_and_data(
    glance: GlanceFactory, member: Identity, tmp_path: Path
) -> None:
    client = glance(member)
    source = _random_file(tmp_path, 3 * MIB + 5)
    data = source.read_bytes()
    image = client.images.create(
        name=f"glance-data-{uuid.uuid4().hex[:8]}", disk_format="raw", container_format="bare"
    )
    assert client.images.data(image.id).wrapped is None  # 204: no data yet

    with open(source, "rb") as handle:
        client.images.upload(image.id, handle)

    stored = client.images.get(image.id)
    assert stored.status == "active"
    assert stored.size == len(data)
    assert stored.virtual_size == len(data)
    assert stored.checksum == _digest("md5sum", source)
    assert stored.os_hash_algo == "sha512"
    assert stored.os_hash_value == _digest("sha512sum", source)
    assert stored.stores == "local"

    body = client.images.data(image.id)
    assert len(body) == len(data)  # from Content-Length
    assert b"".join(body) == data


def test_glanceclient_upload_with_declared_size(
    glance: GlanceFactory, member: Identity, tmp_path: Path
) -> None:
    client = glance(member)
    source = _qcow2(tmp_path, "16M")
    image = client.images.create(
        name=f"glance-qcow2-{uuid.uuid4().hex[:8]}", disk_format="qcow2", container_format="bare"
    )

    with open(source, "rb") as handle:
        client.images.upload(image.id, handle, image_size=source.stat().st_size)

    stored = client.images.get(image.id)
    assert stored.status == "active"
    assert stored.virtual_size == 16 * MIB
    assert stored.size == source.stat().st_size
    assert b"".join(client.images.data(image.id)) == source.read_bytes()


@pytest.mark.parametrize(
    ("declared", "make"),
    [
        ("qcow2", lambda directory: _random_file(directory, MIB)),
        ("raw", lambda directory: _qcow2(directory, "16M")),
    ],
    ids=["random-bytes-as-qcow2", "qcow2-as-raw"],
)
def test_glanceclient_upload_refuses_data_of_another_format(
    glance: GlanceFactory, member: Identity, tmp_path: Path, declared: str, make: Any
) -> None:
    client = glance(member)
    source: Path = make(tmp_path)
    image = client.images.create(
        name=f"glance-mismatch-{uuid.uuid4().hex[:8]}",
        disk_format=declared,
        container_format="bare",
    )

    with open(source, "rb") as handle, pytest.raises(exc.HTTPException) as raised:
        client.images.upload(image.id, handle)

    # glanceclient has no class of its own for 415: the base HTTPException.
    assert type(raised.value) is exc.HTTPException
    assert f"Image disk_format {declared} does not match" in str(raised.value)
    stored = client.images.get(image.id)
    assert stored.status == "queued"
    assert stored.size is None
    assert stored.checksum is None
    assert client.images.data(image.id).wrapped is None

    # Back in queued, the image takes data of the declared format.
    client.images.update(image.id, disk_format="qcow2" if declared == "raw" else "raw")
    with open(source, "rb") as handle:
        client.images.upload(image.id, handle)
    assert client.images.get(image.id).status == "active"


def test_glanceclient_detects_corrupted_data(
    glance: GlanceFactory, member: Identity, server: RunningServer, tmp_path: Path
) -> None:
    client = glance(member)
    source = _random_file(tmp_path, MIB)
    image = client.images.create(
        name=f"glance-rot-{uuid.uuid4().hex[:8]}", disk_format="raw", container_format="bare"
    )
    with open(source, "rb") as handle:
        client.images.upload(image.id, handle)

    _corrupt(_blob(server, image.id))

    with pytest.raises(IOError, match="Corrupt image download"):
        b"".join(client.images.data(image.id))
    # Without verification the client hands back what the store now holds.
    unverified = b"".join(client.images.data(image.id, do_checksum=False))
    assert len(unverified) == MIB
    assert unverified != source.read_bytes()


# -- the command lines (SQLite only) -----------------------------------------


def _run(*args: str) -> tuple[int, str, str]:
    result = run_in_terminal(list(args))
    return result.returncode, result.stdout, result.stderr


def _openstack(server: RunningServer, *args: str) -> tuple[int, str, str]:
    return _run(
        str(BIN / "openstack"), "--os-auth-type", "none", "--os-endpoint", server.url, *args
    )


def _glance(server: RunningServer, *args: str) -> tuple[int, str, str]:
    return _run(str(BIN / "glance"), "--os-image-url", server.url, "--os-auth-token", "x", *args)


def _table(output: str) -> dict[str, str]:
    """The Property | Value rows of glance's pretty table, values wrapped at
    80 columns (a sha512 hex digest is 128) joined back together."""
    rows: dict[str, str] = {}
    key = ""
    for line in output.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if line.startswith("|") and len(cells) == 2:
            if cells[0]:
                key = cells[0]
                rows[key] = cells[1]
            elif key:
                rows[key] += cells[1]
    return rows


def test_openstack_cli_create_with_file_and_save(
    sqlite_server: RunningServer, tmp_path: Path
) -> None:
    server = sqlite_server
    source = _random_file(tmp_path, 2 * MIB + 3)
    md5 = _digest("md5sum", source)
    name = f"osc-data-{uuid.uuid4().hex[:8]}"

    code, out, err = _openstack(
        server,
        "image",
        "create",
        "--disk-format",
        "raw",
        "--container-format",
        "bare",
        "--file",
        str(source),
        name,
        "-f",
        "json",
    )
    assert code == 0, err
    # The command fetches the image again after the upload: its final state.
    created = json.loads(out)
    assert created["name"] == name
    assert created["status"] == "active"
    assert created["size"] == source.stat().st_size
    assert created["virtual_size"] == source.stat().st_size
    assert created["checksum"] == md5
    assert created["disk_format"] == "raw"

    target = tmp_path / "saved.raw"
    code, _out, err = _openstack(server, "image", "save", "--file", str(target), name)
    assert code == 0, err
    assert target.read_bytes() == source.read_bytes()

    code, _out, err = _openstack(server, "image", "delete", created["id"])
    assert code == 0, err


def test_glance_cli_create_with_file_and_download(
    sqlite_server: RunningServer, tmp_path: Path
) -> None:
    server = sqlite_server
    source = _random_file(tmp_path, 2 * MIB + 9)
    name = f"cli-data-{uuid.uuid4().hex[:8]}"

    code, out, err = _glance(
        server,
        "image-create",
        "--file",
        str(source),
        "--disk-format",
        "raw",
        "--container-format",
        "bare",
        "--name",
        name,
    )
    assert code == 0, err
    created = _table(out)
    assert created["name"] == name
    assert created["status"] == "active"
    assert created["size"] == str(source.stat().st_size)
    assert created["checksum"] == _digest("md5sum", source)
    assert created["os_hash_value"] == _digest("sha512sum", source)

    target = tmp_path / "downloaded.raw"
    code, _out, err = _glance(server, "image-download", "--file", str(target), created["id"])
    assert code == 0, err
    assert target.read_bytes() == source.read_bytes()

    code, _out, err = _glance(server, "image-delete", created["id"])
    assert code == 0, err
