"""PUT and GET /v2/images/{id}/file: streaming upload and (ranged) download."""

from __future__ import annotations

import hashlib
import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.errors import assert_error
from tests.support.identities import Identity
from tests.support.isos import make_iso
from tests.support.seeding import set_image_columns
from tests.support.servers import RunningServer, skylens_server

OCTET = {"Content-Type": "application/octet-stream"}


def md5(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def new_image(api: httpx.Client, disk_format: str = "raw", **extra: object) -> str:
    body = {"name": "data", "disk_format": disk_format, "container_format": "bare", **extra}
    response = api.post("/v2/images", json=body)
    assert response.status_code == 201, response.text
    image_id: str = response.json()["id"]
    return image_id


def upload(api: httpx.Client, image_id: str, data: bytes) -> httpx.Response:
    return api.put(f"/v2/images/{image_id}/file", content=data, headers=OCTET)


def leftovers(server: RunningServer) -> list[str]:
    partial = server.log.parent / "images" / ".partial"
    return os.listdir(partial) if partial.exists() else []


@pytest.fixture(scope="module")
def qcow2_images(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Real images made by qemu-img, including crafted malicious ones."""
    directory = tmp_path_factory.mktemp("qemu")

    def qemu_img(*args: str) -> None:
        subprocess.run(["qemu-img", *args], check=True, capture_output=True, cwd=directory)

    qemu_img("create", "-q", "-f", "qcow2", "plain.qcow2", "64M")
    qemu_img("create", "-q", "-f", "qcow2", "-b", "/etc/passwd", "-F", "raw", "backing.qcow2")
    qemu_img("create", "-q", "-f", "qcow2", "-o", "data_file=/etc/hostname", "datafile.qcow2", "1M")
    qemu_img("create", "-q", "-f", "vmdk", "-o", "subformat=monolithicFlat", "flat.vmdk", "1M")
    qemu_img("create", "-q", "-f", "vmdk", "-o", "subformat=streamOptimized", "stream.vmdk", "8M")
    qemu_img("create", "-q", "-f", "vhdx", "disk.vhdx", "32M")
    make_iso(directory, "hybrid.iso", hybrid=True)
    return {path.name: path for path in directory.iterdir() if path.is_file()}


def test_upload_records_size_and_the_hashes_md5sum_and_sha512sum_print(
    api: httpx.Client, tmp_path: Path
) -> None:
    path = tmp_path / "disk.raw"
    path.write_bytes(os.urandom(5 * 1024 * 1024 + 123))
    image_id = new_image(api)

    response = upload(api, image_id, path.read_bytes())

    assert response.status_code == 204
    assert response.content == b""
    image = api.get(f"/v2/images/{image_id}").json()
    md5 = subprocess.run(["md5sum", path], capture_output=True, text=True, check=True)
    sha512 = subprocess.run(["sha512sum", path], capture_output=True, text=True, check=True)
    assert image["status"] == "active"
    assert image["size"] == image["virtual_size"] == path.stat().st_size
    assert image["checksum"] == md5.stdout.split()[0]
    assert image["os_hash_algo"] == "sha512"
    assert image["os_hash_value"] == sha512.stdout.split()[0]
    assert image["stores"] == "local"


def test_download_streams_the_bytes_with_content_md5(api: httpx.Client) -> None:
    data = os.urandom(3 * 1024 * 1024)
    image_id = new_image(api)
    upload(api, image_id, data)

    response = api.get(f"/v2/images/{image_id}/file")

    assert response.status_code == 200
    assert response.content == data
    assert response.headers["content-type"] == "application/octet-stream"
    assert response.headers["content-length"] == str(len(data))
    assert response.headers["content-md5"] == md5(data)


@pytest.mark.parametrize(
    ("header", "status", "expected", "content_range"),
    [
        ("bytes=0-0", 206, slice(0, 1), "bytes 0-0/1000"),
        ("bytes=10-19", 206, slice(10, 20), "bytes 10-19/1000"),
        ("bytes=990-", 206, slice(990, 1000), "bytes 990-999/1000"),
        ("bytes=-5", 206, slice(995, 1000), "bytes 995-999/1000"),
        ("bytes=-5000", 206, slice(0, 1000), "bytes 0-999/1000"),
        ("bytes=500-99999", 206, slice(500, 1000), "bytes 500-999/1000"),
        ("bytes=0-1,5-6", 200, slice(0, 1000), None),  # multi-range: the whole body
        ("items=0-1", 200, slice(0, 1000), None),
        ("bytes=9-3", 200, slice(0, 1000), None),
        # Numbers longer than any position (int() refuses 5000 digits: it was a 500).
        (f"bytes=-{'9' * 5000}", 206, slice(0, 1000), "bytes 0-999/1000"),
        (f"bytes=10-{'9' * 5000}", 206, slice(10, 1000), "bytes 10-999/1000"),
        (f"bytes={'0' * 5000}10-19", 206, slice(10, 20), "bytes 10-19/1000"),
    ],
    ids=lambda value: value[:24] if isinstance(value, str) else None,
)
def test_a_single_range_gives_206_with_content_range(
    api: httpx.Client, header: str, status: int, expected: slice, content_range: str | None
) -> None:
    data = os.urandom(1000)
    image_id = new_image(api)
    upload(api, image_id, data)

    response = api.get(f"/v2/images/{image_id}/file", headers={"Range": header})

    assert response.status_code == status
    assert response.content == data[expected]
    assert response.headers.get("content-range") == content_range
    # Content-MD5 stays the whole image's, as in Glance.
    assert response.headers["content-md5"] == md5(data)


@pytest.mark.parametrize(
    "header",
    ["bytes=1000-", "bytes=5000-6000", "bytes=-0", f"bytes={'5' * 5000}-", f"bytes=-{'0' * 5000}"],
    ids=lambda header: header[:24],
)
def test_an_unsatisfiable_range_is_416(api: httpx.Client, header: str) -> None:
    image_id = new_image(api)
    upload(api, image_id, os.urandom(1000))

    response = api.get(f"/v2/images/{image_id}/file", headers={"Range": header})

    assert response.status_code == 416
    assert response.headers["content-range"] == "bytes */1000"
    assert response.json()["code"] == "416 Request Range Not Satisfiable"


def test_an_image_without_data_downloads_as_a_bare_204(api: httpx.Client) -> None:
    response = api.get(f"/v2/images/{new_image(api)}/file")

    assert response.status_code == 204
    assert response.content == b""
    assert "content-type" not in response.headers


def test_uploading_twice_is_409(api: httpx.Client) -> None:
    image_id = new_image(api)
    upload(api, image_id, b"first")

    response = upload(api, image_id, b"second")

    assert response.status_code == 409
    assert response.json()["message"].startswith(
        "Image status transition from active to saving is not allowed"
    )
    assert api.get(f"/v2/images/{image_id}/file").content == b"first"


def test_a_body_that_is_not_octet_stream_is_415(api: httpx.Client) -> None:
    image_id = new_image(api)

    response = api.put(
        f"/v2/images/{image_id}/file", content=b"x", headers={"Content-Type": "text/plain"}
    )

    assert response.status_code == 415
    assert api.get(f"/v2/images/{image_id}").json()["status"] == "queued"


def test_formats_must_be_set_before_data(api: httpx.Client) -> None:
    image_id = api.post("/v2/images", json={"container_format": "bare"}).json()["id"]

    response = upload(api, image_id, b"data")

    assert response.status_code == 400
    assert response.json()["message"].startswith(
        "Property disk_format must be set prior to saving data."
    )
    assert api.get(f"/v2/images/{image_id}").json()["status"] == "queued"


def test_qcow2_gets_its_virtual_size(api: httpx.Client, qcow2_images: dict[str, Path]) -> None:
    image_id = new_image(api, "qcow2")

    assert upload(api, image_id, qcow2_images["plain.qcow2"].read_bytes()).status_code == 204

    image = api.get(f"/v2/images/{image_id}").json()
    assert image["virtual_size"] == 64 * 1024 * 1024
    assert image["size"] == qcow2_images["plain.qcow2"].stat().st_size


@pytest.mark.parametrize(
    ("disk_format", "file_name"),
    [("vmdk", "stream.vmdk"), ("vhdx", "disk.vhdx")],
)
def test_safe_images_of_other_formats_are_accepted(
    api: httpx.Client, qcow2_images: dict[str, Path], disk_format: str, file_name: str
) -> None:
    image_id = new_image(api, disk_format)

    assert upload(api, image_id, qcow2_images[file_name].read_bytes()).status_code == 204
    assert api.get(f"/v2/images/{image_id}").json()["status"] == "active"


@pytest.mark.parametrize(
    ("disk_format", "file_name", "status", "message"),
    [
        ("qcow2", "backing.qcow2", 415, "Image failed safety checks"),
        ("qcow2", "datafile.qcow2", 415, "Image failed safety checks"),
        ("vmdk", "flat.vmdk", 415, "Image failed safety checks"),
        ("raw", "plain.qcow2", 415, "Image disk_format raw does not match stream data qcow2"),
        ("raw", "backing.qcow2", 415, "Image failed safety checks"),
        ("vhdx", "plain.qcow2", 415, "Image disk_format vhdx does not match stream data qcow2"),
    ],
)
def test_unsafe_or_mismatched_data_is_refused_and_the_image_stays_queued(
    api: httpx.Client,
    server: RunningServer,
    qcow2_images: dict[str, Path],
    disk_format: str,
    file_name: str,
    status: int,
    message: str,
) -> None:
    image_id = new_image(api, disk_format)

    response = upload(api, image_id, qcow2_images[file_name].read_bytes())

    assert response.status_code == status
    assert response.json()["message"].startswith(message)
    image = api.get(f"/v2/images/{image_id}").json()
    assert (image["status"], image["size"], image["checksum"]) == ("queued", None, None)
    assert api.get(f"/v2/images/{image_id}/file").status_code == 204
    assert leftovers(server) == []


@pytest.mark.parametrize("disk_format", ["iso", "raw"])
def test_a_hybrid_installer_iso_is_accepted_as_iso_or_raw(
    api: httpx.Client, qcow2_images: dict[str, Path], disk_format: str
) -> None:
    """ISO 9660 behind a GPT, as most Linux installer ISOs are: the inspector finds
    both formats, and Glance 33 takes that pair (only that pair) as the ISO."""
    data = qcow2_images["hybrid.iso"].read_bytes()
    image_id = new_image(api, disk_format)

    response = upload(api, image_id, data)

    assert response.status_code == 204, response.text
    image = api.get(f"/v2/images/{image_id}").json()
    assert (image["status"], image["size"]) == ("active", len(data))
    assert api.get(f"/v2/images/{image_id}/file").content == data


@pytest.mark.parametrize("disk_format", ["ami", "aki", "ari", "ploop"])
def test_formats_without_a_header_refuse_data_of_a_known_format(
    api: httpx.Client, server: RunningServer, qcow2_images: dict[str, Path], disk_format: str
) -> None:
    """Nothing recognises an AMI (or AKI, ARI, ploop), so Glance 33 takes such data
    only when nothing else recognises it either: a qcow2 declared `ami` is refused."""
    image_id = new_image(api, disk_format)

    refused = upload(api, image_id, qcow2_images["plain.qcow2"].read_bytes())

    assert_error(refused, 415, f"Image disk_format {disk_format} does not match stream data qcow2")
    assert api.get(f"/v2/images/{image_id}").json()["status"] == "queued"
    assert leftovers(server) == []
    assert upload(api, image_id, os.urandom(70000)).status_code == 204
    assert api.get(f"/v2/images/{image_id}").json()["status"] == "active"


def test_raw_data_declared_as_qcow2_is_415(api: httpx.Client) -> None:
    image_id = new_image(api, "qcow2")

    response = upload(api, image_id, os.urandom(70000))

    assert response.status_code == 415
    assert response.json()["message"].startswith(
        "Image disk_format qcow2 does not match stream data raw"
    )


def test_a_failed_upload_can_be_retried(api: httpx.Client) -> None:
    image_id = new_image(api, "qcow2")
    assert upload(api, image_id, os.urandom(70000)).status_code == 415

    api.patch(
        f"/v2/images/{image_id}",
        json=[{"op": "replace", "path": "/disk_format", "value": "raw"}],
        headers={"Content-Type": "application/openstack-images-v2.1-json-patch"},
    )

    assert upload(api, image_id, b"raw bytes").status_code == 204


def test_strangers_cannot_see_the_image_and_readers_cannot_upload(
    http: Callable[..., httpx.Client], api: httpx.Client, stranger: Identity, reader: Identity
) -> None:
    image_id = new_image(api)

    assert upload(http(stranger), image_id, b"x").status_code == 404
    assert upload(http(reader), image_id, b"x").status_code == 403
    upload(api, image_id, b"mine")
    assert http(stranger).get(f"/v2/images/{image_id}/file").status_code == 404
    # Glance 33's download_image needs `member`: a reader sees the record, not the data.
    assert_error(
        http(reader).get(f"/v2/images/{image_id}/file"),
        403,
        "You are not authorized to complete download_image action.",
    )
    assert http(reader).get(f"/v2/images/{image_id}").status_code == 200


def test_a_deactivated_image_is_downloadable_only_by_admins(
    http: Callable[..., httpx.Client], api: httpx.Client, admin: Identity
) -> None:
    image_id = new_image(api)
    upload(api, image_id, b"payload")
    assert api.post(f"/v2/images/{image_id}/actions/deactivate").status_code == 204

    refused = api.get(f"/v2/images/{image_id}/file")

    assert refused.status_code == 403
    assert http(admin).get(f"/v2/images/{image_id}/file").content == b"payload"


def test_concurrent_uploads_to_one_image_exactly_one_wins(
    api: httpx.Client, server: RunningServer
) -> None:
    import concurrent.futures

    image_id = new_image(api)
    payloads = [os.urandom(2 * 1024 * 1024) for _ in range(4)]

    def attempt(data: bytes) -> int:
        with httpx.Client(base_url=server.url, headers=api.headers, timeout=60) as client:
            return upload(client, image_id, data).status_code

    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        statuses = sorted(pool.map(attempt, payloads))

    assert statuses == [204, 409, 409, 409]
    stored = api.get(f"/v2/images/{image_id}/file").content
    assert stored in payloads
    assert api.get(f"/v2/images/{image_id}").json()["checksum"] == md5(stored)


def test_deleting_an_image_removes_its_data(api: httpx.Client, server: RunningServer) -> None:
    image_id = new_image(api)
    upload(api, image_id, b"bytes to forget")
    data_file = next((server.log.parent / "images").rglob(image_id))

    assert api.delete(f"/v2/images/{image_id}").status_code == 204

    assert not data_file.exists()


def test_seeded_active_images_without_data_download_as_204(
    api: httpx.Client, server: RunningServer
) -> None:
    image_id = new_image(api)
    set_image_columns(server, image_id, status="active")

    assert api.get(f"/v2/images/{image_id}/file").status_code == 204


@pytest.fixture(scope="module")
def capped_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """A server whose image_size_cap is 1 MiB."""
    data_dir = tmp_path_factory.mktemp("capped")
    with skylens_server(
        data_dir,
        f"sqlite:///{data_dir / 'skylens.db'}",
        "sqlite",
        extra_env={"SKYLENS_IMAGES_IMAGE_SIZE_CAP": str(1 << 20)},
    ) as running:
        yield running


@pytest.fixture
def capped(capped_server: RunningServer, member: Identity) -> Iterator[httpx.Client]:
    with httpx.Client(
        base_url=capped_server.url, headers={**member.headers, "Accept": "application/json"}
    ) as client:
        yield client


def test_the_size_cap_is_enforced_while_streaming(
    capped: httpx.Client, capped_server: RunningServer
) -> None:
    image_id = new_image(capped)
    assert upload(capped, image_id, os.urandom(1 << 20)).status_code == 204
    too_big = new_image(capped)

    response = upload(capped, too_big, os.urandom((1 << 20) + 1))

    assert_error(response, 413, "The incoming image is too large: The provided image is too large.")
    assert capped.get(f"/v2/images/{too_big}").json()["status"] == "queued"
    assert leftovers(capped_server) == []


def test_an_announced_size_over_the_cap_is_refused_before_any_byte(capped: httpx.Client) -> None:
    image_id = new_image(capped)

    response = capped.put(
        f"/v2/images/{image_id}/file",
        content=b"small",
        headers={**OCTET, "x-openstack-image-size": str(1 << 40)},
    )

    assert response.status_code == 413
    assert capped.get(f"/v2/images/{image_id}").json()["status"] == "queued"


# -- x-openstack-image-size: the size the client announces --------------------------


def test_an_announced_size_that_matches_is_accepted(api: httpx.Client) -> None:
    image_id = new_image(api)

    response = api.put(
        f"/v2/images/{image_id}/file",
        content=b"x" * 1000,
        headers={**OCTET, "x-openstack-image-size": "1000"},
    )

    assert response.status_code == 204
    assert api.get(f"/v2/images/{image_id}").json()["size"] == 1000


def test_zero_announces_nothing(api: httpx.Client) -> None:
    image_id = new_image(api)

    response = api.put(
        f"/v2/images/{image_id}/file",
        content=b"any size",
        headers={**OCTET, "x-openstack-image-size": "0"},
    )

    assert response.status_code == 204


@pytest.mark.parametrize(
    ("announced", "sent", "message"),
    [
        (1000, 999, "Size mismatch: expected 1000 bytes, got 999 bytes"),
        (10, 5 << 20, "Size exceeds: expected 10 bytes, got "),
    ],
)
def test_data_of_another_size_than_announced_is_refused(
    api: httpx.Client, server: RunningServer, announced: int, sent: int, message: str
) -> None:
    image_id = new_image(api)

    response = api.put(
        f"/v2/images/{image_id}/file",
        content=os.urandom(sent),
        headers={**OCTET, "x-openstack-image-size": str(announced)},
    )

    assert response.status_code == 400
    assert response.json()["message"].startswith(message)
    image = api.get(f"/v2/images/{image_id}").json()
    assert (image["status"], image["size"]) == ("queued", None)
    assert leftovers(server) == []


@pytest.mark.parametrize("announced", ["ten", "-1", "1.5", ""])
def test_an_announced_size_that_is_not_a_size_is_400(api: httpx.Client, announced: str) -> None:
    image_id = new_image(api)

    response = api.put(
        f"/v2/images/{image_id}/file",
        content=b"data",
        headers={**OCTET, "x-openstack-image-size": announced},
    )

    assert_error(response, 400, "Invalid or missing image size in request headers.")
    assert api.get(f"/v2/images/{image_id}").json()["status"] == "queued"
