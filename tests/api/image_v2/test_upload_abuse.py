"""Uploads that stall, crowd or break off (issue 18 items 3 and 21): what they may hold,
how they end, and what they log. Through real servers and raw sockets."""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.raw_http import (
    closed_by_server,
    read_answer,
    rss_bytes,
    wait_for,
)
from tests.support.servers import RunningServer, dedicated_server

MIB = 1 << 20
GIB = 1 << 30
OCTET = "Content-Type: application/octet-stream"
ALARMS = ("Traceback", "unhandled error", "Exception in ASGI application", "ERROR")


def new_image(client: httpx.Client) -> str:
    body = {"disk_format": "raw", "container_format": "bare"}
    image_id: str = client.post("/v2/images", json=body).json()["id"]
    return image_id


def upload(client: httpx.Client, image_id: str, data: bytes) -> httpx.Response:
    headers = {"Content-Type": "application/octet-stream"}
    return client.put(f"/v2/images/{image_id}/file", content=data, headers=headers)


def status_of(client: httpx.Client, image_id: str) -> str:
    status: str = client.get(f"/v2/images/{image_id}").json()["status"]
    return status


def upload_head(image_id: str, length: int | None) -> bytes:
    framing = "Transfer-Encoding: chunked" if length is None else f"Content-Length: {length}"
    return (
        f"PUT /v2/images/{image_id}/file HTTP/1.1\r\nHost: localhost\r\n{OCTET}\r\n"
        f"{framing}\r\n\r\n"
    ).encode()


def start_upload(port: int, image_id: str, data: bytes, length: int | None) -> socket.socket:
    """A connection that sent an upload's head and `data` of its body, and then nothing."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    body = data if length is not None else b"%x\r\n%s\r\n" % (len(data), data)
    sock.sendall(upload_head(image_id, length) + body)
    return sock


def partial_files(server: RunningServer) -> list[Path]:
    return list((server.log.parent / "images" / ".partial").iterdir())


class Log:
    """What a server logged since the mark."""

    def __init__(self, server: RunningServer) -> None:
        self._path = server.log
        self._start = self._path.stat().st_size

    def new(self) -> str:
        with open(self._path, "rb") as handle:
            handle.seek(self._start)
            return handle.read().decode()


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def impatient(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningServer]:
    """A server that waits 2 s for body bytes."""
    env = {"SKYLENS_SERVER_BODY_READ_TIMEOUT_SECONDS": "2"}
    data_dir = tmp_path_factory.mktemp(f"impatient-{request.param}")
    with dedicated_server(data_dir, request.param, extra_env=env) as server:
        yield server


# -- memory ----------------------------------------------------------------------------


def test_stalled_uploads_hold_memory_only_for_what_they_sent(tmp_path: Path) -> None:
    """The review's 40 uploads announcing 1 GiB and sending a byte (+936 MiB before)."""
    env = {"SKYLENS_SERVER_MAX_UPLOADS": "64"}
    with (
        dedicated_server(tmp_path, "sqlite", extra_env=env) as server,
        httpx.Client(base_url=server.url, timeout=30) as client,
        contextlib.ExitStack() as stack,
    ):
        warm = new_image(client)  # load everything an upload uses once
        assert upload(client, warm, os.urandom(MIB)).status_code == 204
        images = [new_image(client) for _ in range(40)]
        before = rss_bytes(server.pid)
        for image_id in images:
            stack.enter_context(start_upload(server.port, image_id, b"x", GIB))
        wait_for(lambda: all(status_of(client, i) == "saving" for i in images), "saving")
        during = rss_bytes(server.pid)

    assert during - before < 64 * MIB


# -- the body read timeout ----------------------------------------------------------------


@pytest.mark.parametrize("framing", ["content-length", "chunked"])
def test_an_upload_that_stops_sending_fails_cleanly(impatient: RunningServer, framing: str) -> None:
    log = Log(impatient)
    data = os.urandom(MIB)
    with httpx.Client(base_url=impatient.url, timeout=30) as client:
        image_id = new_image(client)
        length = 8 * MIB if framing == "content-length" else None
        with start_upload(impatient.port, image_id, data, length) as sock:
            wait_for(lambda: status_of(client, image_id) == "saving", "saving")
            assert closed_by_server(sock)
        wait_for(lambda: status_of(client, image_id) == "queued", "queued again")

        assert partial_files(impatient) == []
        # the lease is gone: the image takes an upload again at once
        assert upload(client, image_id, data).status_code == 204
    logged = log.new()
    assert logged.count(f"no request body bytes for 2 s during PUT /v2/images/{image_id}/file") == 1
    assert not [alarm for alarm in ALARMS if alarm in logged], logged


# -- uploads per worker -------------------------------------------------------------------


def test_uploads_past_the_worker_limit_get_503_with_retry_after(tmp_path: Path) -> None:
    env = {"SKYLENS_SERVER_MAX_UPLOADS": "2"}
    with (
        dedicated_server(tmp_path, "sqlite", extra_env=env) as server,
        httpx.Client(base_url=server.url, timeout=30) as client,
    ):
        first, second, third = (new_image(client) for _ in range(3))
        with (
            start_upload(server.port, first, b"x", MIB),
            start_upload(server.port, second, b"x", MIB),
        ):
            wait_for(lambda: status_of(client, second) == "saving", "saving")
            wait_for(lambda: status_of(client, first) == "saving", "saving")
            refused = upload(client, third, b"x" * 10)
            assert status_of(client, third) == "queued"
        wait_for(lambda: status_of(client, first) == "queued", "queued again")
        wait_for(lambda: status_of(client, second) == "queued", "queued again")
        accepted = upload(client, third, b"x" * 10)

    assert refused.status_code == 503
    assert refused.headers["retry-after"] == "10"
    assert "receiving as many image uploads as it may at once" in refused.text
    assert accepted.status_code == 204


# -- what breaking off logs -----------------------------------------------------------------


@pytest.mark.parametrize("framing", ["content-length", "chunked"])
def test_a_client_gone_mid_upload_logs_one_line(impatient: RunningServer, framing: str) -> None:
    log = Log(impatient)
    with httpx.Client(base_url=impatient.url, timeout=30) as client:
        image_id = new_image(client)
        length = 8 * MIB if framing == "content-length" else None
        with start_upload(impatient.port, image_id, os.urandom(MIB), length):
            wait_for(lambda: status_of(client, image_id) == "saving", "saving")
        wait_for(lambda: status_of(client, image_id) == "queued", "queued again")
        wait_for(lambda: "did not arrive" in log.new(), "logged")

    logged = log.new()
    assert logged.count(f"PUT /v2/images/{image_id}/file ended: the request body did not") == 1
    assert not [alarm for alarm in ALARMS if alarm in logged], logged


def test_a_malformed_chunked_body_is_400_and_logs_one_line(impatient: RunningServer) -> None:
    log = Log(impatient)
    with httpx.Client(base_url=impatient.url, timeout=30) as client:
        image_id = new_image(client)
        with start_upload(impatient.port, image_id, os.urandom(MIB), None) as sock:
            wait_for(lambda: status_of(client, image_id) == "saving", "saving")
            sock.sendall(b"10\r\nnot sixteen bytes, and no size after\r\n")
            status, _, _ = read_answer(sock)
        wait_for(lambda: status_of(client, image_id) == "queued", "queued again")
        wait_for(lambda: "did not arrive" in log.new(), "logged")

    assert status == 400
    logged = log.new()
    assert logged.count(f"PUT /v2/images/{image_id}/file ended: the request body did not") == 1
    assert not [alarm for alarm in ALARMS if alarm in logged], logged
