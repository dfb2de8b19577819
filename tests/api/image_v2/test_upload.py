"""PUT /v2/images/{id}/file over the wire: received into the ingest's blocks where the
server can, streamed elsewhere.

The first tests upload to `skylens serve`, whose protocol receives a body framed by
Content-Length straight into the upload's buffers (`recv_into`), from raw sockets that
split, pipeline and misstate bodies. The last ones run the same app on a uvicorn thread
of the test process, where `recv_into` can be watched: with skylens' protocol the body
goes through it, and with ASGI servers that lack the extension the handler reads the
ASGI stream instead.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import socket
from collections.abc import Mapping
from typing import Any

import httpx
import pytest

from skylens.api.app import create_app
from skylens.config import load
from skylens.server.protocol import GlanceHttpToolsProtocol
from tests.support.identities import Identity
from tests.support.servers import RunningServer
from tests.support.uvicorn_thread import ReceivedInto, uvicorn_thread, watch_recv_into

MIB = 1 << 20
SIZE = 20 * MIB + 12345  # several 8 MiB blocks, the last one partly filled
OCTET = {"Content-Type": "application/octet-stream"}


def new_image(client: httpx.Client) -> str:
    body = {"name": "upload", "disk_format": "raw", "container_format": "bare"}
    response = client.post("/v2/images", json=body)
    assert response.status_code == 201, response.text
    image_id: str = response.json()["id"]
    return image_id


def put_head(port: int, path: str, headers: Mapping[str, str], length: int) -> bytes:
    lines = [f"PUT {path} HTTP/1.1", f"Host: 127.0.0.1:{port}", f"Content-Length: {length}"]
    lines += [f"{name}: {value}" for name, value in {**headers, **OCTET}.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def get_head(port: int, path: str, headers: Mapping[str, str]) -> bytes:
    lines = [f"GET {path} HTTP/1.1", f"Host: 127.0.0.1:{port}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def read_response(reader: io.BufferedReader) -> tuple[int, bytes]:
    status = int(reader.readline().split(b" ", 2)[1])
    length = 0
    while (line := reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    return status, reader.read(length)


def assert_holds(client: httpx.Client, image_id: str, data: bytes) -> None:
    """The image is active with `data`'s size and hashes, and downloads as `data`."""
    image = client.get(f"/v2/images/{image_id}").json()
    assert image["status"] == "active"
    assert image["size"] == len(data)
    assert image["checksum"] == hashlib.md5(data, usedforsecurity=False).hexdigest()
    assert (image["os_hash_algo"], image["os_hash_value"]) == (
        "sha512",
        hashlib.sha512(data).hexdigest(),
    )
    assert client.get(f"/v2/images/{image_id}/file").content == data


# -- over `skylens serve` ------------------------------------------------------


def test_a_content_length_upload_gets_the_hashes_of_its_bytes(
    server: RunningServer, member: Identity, api: httpx.Client
) -> None:
    image_id = new_image(api)
    data = os.urandom(SIZE)
    head = put_head(server.port, f"/v2/images/{image_id}/file", member.headers, SIZE)

    with socket.create_connection(("127.0.0.1", server.port), timeout=60) as sock:
        sock.sendall(head + data[:100_000])  # the first bytes come with the headers
        sock.sendall(data[100_000:])
        with sock.makefile("rb") as reader:
            assert read_response(reader)[0] == 204

    assert_holds(api, image_id, data)


def test_a_chunked_upload_gets_the_same_hashes(api: httpx.Client) -> None:
    """python-glanceclient sends chunked bodies; they go the ASGI way."""
    image_id = new_image(api)
    data = os.urandom(SIZE)
    pieces = [data[start : start + 3 * MIB + 1] for start in range(0, SIZE, 3 * MIB + 1)]

    response = api.put(f"/v2/images/{image_id}/file", content=iter(pieces), headers=OCTET)

    assert response.request.headers["transfer-encoding"] == "chunked"
    assert response.status_code == 204
    assert_holds(api, image_id, data)


def test_requests_pipelined_behind_an_upload_are_answered_in_order(
    server: RunningServer, member: Identity, api: httpx.Client
) -> None:
    image_id = new_image(api)
    data = os.urandom(SIZE)
    show = get_head(server.port, f"/v2/images/{image_id}", member.headers)
    head = put_head(server.port, f"/v2/images/{image_id}/file", member.headers, SIZE)

    with socket.create_connection(("127.0.0.1", server.port), timeout=60) as sock:
        sock.sendall(head + data + show)
        with sock.makefile("rb") as reader:
            uploaded, shown = read_response(reader), read_response(reader)
            sock.sendall(show)  # and the connection lives on
            again = read_response(reader)

    assert uploaded[0] == 204
    assert (shown[0], json.loads(shown[1])["status"]) == (200, "active")
    assert again == shown
    assert_holds(api, image_id, data)


def test_an_upload_refused_mid_body_leaves_the_connection_in_step(
    server: RunningServer, member: Identity, api: httpx.Client
) -> None:
    """The body goes on past the refusal; what follows it is still the next request,
    and nothing inside the unread part of the body is ever taken for one."""
    image_id = new_image(api)
    headers = {**member.headers, "x-openstack-image-size": "10", "Accept": "application/json"}
    show = get_head(server.port, f"/v2/images/{image_id}", member.headers)
    body = (show + os.urandom(MIB)) * 4  # requests hiding in the data
    head = put_head(server.port, f"/v2/images/{image_id}/file", headers, len(body))

    with socket.create_connection(("127.0.0.1", server.port), timeout=60) as sock:
        sock.sendall(head + body + show)
        with sock.makefile("rb") as reader:
            refused, shown = read_response(reader), read_response(reader)
            sock.sendall(get_head(server.port, "/versions", {}))
            versions = read_response(reader)  # not the answer to a request in the body

    assert refused[0] == 400
    assert json.loads(refused[1])["message"].startswith("Size exceeds: expected 10 bytes")
    assert (shown[0], json.loads(shown[1])["status"]) == (200, "queued")
    assert (versions[0], list(json.loads(versions[1]))) == (200, ["versions"])


# -- on a uvicorn thread, watching the system calls ------------------------------


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The whole service, as `skylens serve` builds it, on a fresh SQLite database; its
    image_size_cap is 32 MiB."""
    data_dir = tmp_path_factory.mktemp("in-process")
    overrides = {"data_dir": str(data_dir), "images.image_size_cap": 32 * MIB}
    return create_app(load(environ={}, overrides=overrides))


@pytest.fixture
def received_into(monkeypatch: pytest.MonkeyPatch) -> ReceivedInto:
    return watch_recv_into(monkeypatch)


def test_skylens_serve_s_protocol_receives_the_upload_into_the_blocks(
    app: Any, received_into: ReceivedInto
) -> None:
    data = os.urandom(SIZE)

    with (
        uvicorn_thread(app, GlanceHttpToolsProtocol) as server,
        httpx.Client(base_url=server.url, timeout=60) as client,
    ):
        image_id = new_image(client)
        response = client.put(f"/v2/images/{image_id}/file", content=data, headers=OCTET)
        assert response.status_code == 204
        assert_holds(client, image_id, data)

    # All but what uvicorn's parser took before the handler asked.
    assert sum(received_into.by(server)) > SIZE - MIB


@pytest.mark.parametrize("protocol", ["httptools", "h11"])
def test_servers_without_the_extension_get_the_upload_streamed(
    app: Any, received_into: ReceivedInto, protocol: str
) -> None:
    data = os.urandom(SIZE)

    with (
        uvicorn_thread(app, protocol) as server,
        httpx.Client(base_url=server.url, timeout=60) as client,
    ):
        image_id = new_image(client)
        response = client.put(f"/v2/images/{image_id}/file", content=data, headers=OCTET)
        assert response.status_code == 204
        assert_holds(client, image_id, data)

    assert received_into.by(server) == []


def test_the_size_cap_stops_a_received_upload_at_its_first_byte_over(
    app: Any, received_into: ReceivedInto
) -> None:
    cap = 32 * MIB
    data = os.urandom(cap + 1)

    with (
        uvicorn_thread(app, GlanceHttpToolsProtocol) as server,
        httpx.Client(base_url=server.url, timeout=60) as client,
    ):
        at_cap, over = new_image(client), new_image(client)
        accepted = client.put(f"/v2/images/{at_cap}/file", content=data[:cap], headers=OCTET)
        refused = client.put(f"/v2/images/{over}/file", content=data, headers=OCTET)
        image = client.get(f"/v2/images/{over}").json()
        assert_holds(client, at_cap, data[:cap])

    assert (accepted.status_code, refused.status_code) == (204, 413)
    assert (image["status"], image["size"]) == ("queued", None)
    assert sum(received_into.by(server)) > 2 * cap - 2 * MIB  # both went the fast way
