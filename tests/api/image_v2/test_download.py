"""GET /v2/images/{id}/file: sent by the kernel where the server can, streamed elsewhere.

The first tests download from `skylens serve`, whose protocol speaks the ASGI
zero-copy send extension, so their bytes come from sendfile(2). The last ones run the
same app on a uvicorn thread of the test process, where the system calls can be
watched: with skylens' protocol the body goes through `os.sendfile`, and with ASGI
servers that lack the extension the handler streams it instead.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import socket
import struct
from typing import Any

import httpx
import pytest

from skylens.api.app import create_app
from skylens.config import load
from skylens.server.protocol import GlanceHttpToolsProtocol
from tests.support.identities import Identity
from tests.support.servers import RunningServer
from tests.support.uvicorn_thread import uvicorn_thread, watch_sendfile

MIB = 1 << 20
SIZE = 24 * MIB  # several times what the socket buffers hold
OCTET = {"Content-Type": "application/octet-stream"}


def store(client: httpx.Client, data: bytes) -> str:
    """A raw image holding `data`."""
    body = {"name": "download", "disk_format": "raw", "container_format": "bare"}
    image_id: str = client.post("/v2/images", json=body).json()["id"]
    response = client.put(f"/v2/images/{image_id}/file", content=data, headers=OCTET)
    assert response.status_code == 204, response.text
    return image_id


@pytest.fixture
def data() -> bytes:
    return os.urandom(SIZE)


@pytest.fixture
def image_id(api: httpx.Client, data: bytes) -> str:
    return store(api, data)


def request_bytes(server: RunningServer, identity: Identity, path: str) -> bytes:
    headers = "".join(f"{name}: {value}\r\n" for name, value in identity.headers.items())
    return f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n{headers}\r\n".encode()


# -- over `skylens serve` ------------------------------------------------------


def test_the_download_is_the_uploaded_bytes_with_their_checksums(
    api: httpx.Client, image_id: str, data: bytes
) -> None:
    response = api.get(f"/v2/images/{image_id}/file")

    image = api.get(f"/v2/images/{image_id}").json()
    assert response.status_code == 200
    assert response.headers["content-length"] == str(SIZE)
    assert response.content == data
    md5 = hashlib.md5(response.content, usedforsecurity=False).hexdigest()
    assert md5 == image["checksum"] == response.headers["content-md5"]
    assert hashlib.sha512(response.content).hexdigest() == image["os_hash_value"]


@pytest.mark.parametrize(
    ("header", "first", "last"),
    [
        ("bytes=0-0", 0, 0),
        ("bytes=12345-9000000", 12345, 9000000),
        ("bytes=-1000000", SIZE - 1000000, SIZE - 1),
        ("bytes=20000000-", 20000000, SIZE - 1),
    ],
    ids=["first-byte", "middle", "suffix", "open-ended"],
)
def test_a_range_is_206_with_exactly_its_bytes(
    api: httpx.Client, image_id: str, data: bytes, header: str, first: int, last: int
) -> None:
    response = api.get(f"/v2/images/{image_id}/file", headers={"Range": header})

    assert response.status_code == 206
    assert response.headers["content-range"] == f"bytes {first}-{last}/{SIZE}"
    assert response.headers["content-length"] == str(last - first + 1)
    assert response.content == data[first : last + 1]


def test_two_downloads_share_one_keep_alive_connection(
    server: RunningServer, member: Identity, image_id: str, data: bytes
) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    path = f"/v2/images/{image_id}/file"

    connection.request("GET", path, headers=member.headers)
    first = connection.getresponse().read()
    assert connection.sock is not None
    local_address = connection.sock.getsockname()
    connection.request("GET", path, headers={**member.headers, "Range": "bytes=-100"})
    second = connection.getresponse()

    assert (first, second.status, second.read()) == (data, 206, data[-100:])
    assert connection.sock.getsockname() == local_address  # the same TCP connection
    connection.close()


def test_pipelined_downloads_come_back_whole_and_in_order(
    server: RunningServer, member: Identity, api: httpx.Client, data: bytes
) -> None:
    small = store(api, b"small image")
    big = store(api, data)
    requests = [request_bytes(server, member, f"/v2/images/{i}/file") for i in (big, small, big)]

    with socket.create_connection(("127.0.0.1", server.port), timeout=60) as sock:
        sock.sendall(b"".join(requests))
        reader = sock.makefile("rb")
        bodies = [read_body(reader) for _ in requests]

    assert bodies == [data, b"small image", data]


@pytest.mark.parametrize("reset", [False, True], ids=["close", "reset"])
def test_a_client_gone_mid_download_leaves_the_server_serving(
    server: RunningServer, member: Identity, image_id: str, data: bytes, reset: bool
) -> None:
    log_before = server.log.stat().st_size

    with socket.create_connection(("127.0.0.1", server.port), timeout=60) as sock:
        sock.sendall(request_bytes(server, member, f"/v2/images/{image_id}/file"))
        assert sock.recv(64 * 1024).startswith(b"HTTP/1.1 200")
        if reset:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))

    with httpx.Client(base_url=server.url, headers=member.headers, timeout=60) as client:
        assert client.get(f"/v2/images/{image_id}/file").content == data
    with open(server.log, "rb") as log:
        log.seek(log_before)
        assert b"Traceback" not in log.read()


def test_an_empty_image_downloads_as_an_empty_200(api: httpx.Client) -> None:
    image_id = store(api, b"")

    response = api.get(f"/v2/images/{image_id}/file")

    assert response.status_code == 200
    assert response.headers["content-length"] == "0"
    assert response.content == b""


# -- on a uvicorn thread, watching the system calls ------------------------------


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The whole service, as `skylens serve` builds it, on a fresh SQLite database."""
    data_dir = tmp_path_factory.mktemp("in-process")
    return create_app(load(environ={}, overrides={"data_dir": str(data_dir)}))


@pytest.fixture
def sendfile_bytes(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    return watch_sendfile(monkeypatch)


def download_twice(url: str, data: bytes) -> tuple[bytes, bytes]:
    """Upload `data`, then download it whole and its bytes 1000-1999."""
    with httpx.Client(base_url=url, timeout=60) as client:
        image_id = store(client, data)
        whole = client.get(f"/v2/images/{image_id}/file")
        part = client.get(f"/v2/images/{image_id}/file", headers={"Range": "bytes=1000-1999"})
    assert (whole.status_code, part.status_code) == (200, 206)
    return whole.content, part.content


def test_skylens_serve_s_protocol_sends_the_download_with_sendfile(
    app: Any, data: bytes, sendfile_bytes: list[int]
) -> None:
    with uvicorn_thread(app, GlanceHttpToolsProtocol) as server:
        whole, part = download_twice(server.url, data)

    assert (whole, part) == (data, data[1000:2000])
    assert sum(sendfile_bytes) == SIZE + 1000


@pytest.mark.parametrize("protocol", ["httptools", "h11"])
def test_servers_without_the_extension_get_the_download_streamed(
    app: Any, data: bytes, sendfile_bytes: list[int], protocol: str
) -> None:
    with uvicorn_thread(app, protocol) as server:
        whole, part = download_twice(server.url, data)

    assert (whole, part) == (data, data[1000:2000])
    assert sendfile_bytes == []


def read_body(reader: Any) -> bytes:
    assert reader.readline().startswith(b"HTTP/1.1 200")
    length = 0
    while (line := reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    body: bytes = reader.read(length)
    return body
