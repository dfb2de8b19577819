"""`skylens serve` bounds what a client can make it hold before a request even starts:
head sizes (issue 18.4), the time a head may take and the connections a worker holds
(issue 18.18). Everything goes through a real server and raw sockets."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import httpx
import pytest

from tests.support.raw_http import (
    closed_by_server,
    connection,
    read_answer,
    rss_bytes,
    send_until_answered,
)
from tests.support.servers import RunningServer, dedicated_server

MIB = 1 << 20


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """One server for the head-size tests: their connections are closed by then."""
    with dedicated_server(tmp_path_factory.mktemp("bounds"), "sqlite") as running:
        yield running


def head(*lines: str) -> bytes:
    return (
        "\r\n".join(["GET /v2/images HTTP/1.1", "Host: localhost", *lines]) + "\r\n\r\n"
    ).encode()


# -- head sizes ----------------------------------------------------------------------


def test_headers_that_never_end_are_431_and_leave_memory_flat(server: RunningServer) -> None:
    """The review's attack: six connections sending a header without end (150 MB in all)."""
    before = rss_bytes(server.pid)
    answers = []
    for _ in range(6):
        with connection(server.port) as sock:
            start = b"GET /v2/images HTTP/1.1\r\nHost: localhost\r\nX-Endless: "
            send_until_answered(sock, start, b"a" * 65536, most=25 * MIB)
            answers.append(read_answer(sock))
            assert closed_by_server(sock)
    after = rss_bytes(server.pid)

    assert [status for status, _, _ in answers] == [431] * 6
    assert answers[0][2].startswith(b"431 Request Header Fields Too Large\n\n")
    assert after - before < 32 * MIB


@pytest.mark.parametrize(
    ("lines", "status"),
    [
        (["X-Long: " + "a" * (16 << 10)], 431),  # one header line past 16 KiB
        ([f"X-H{n}: {'a' * 8000}" for n in range(9)], 431),  # 72 KB of headers in all
        ([f"X-H{n}: v" for n in range(101)], 431),  # 101 headers
    ],
    ids=["line", "total", "count"],
)
def test_heads_past_a_bound_are_431_and_the_connection_closes(
    server: RunningServer, lines: list[str], status: int
) -> None:
    with connection(server.port) as sock:
        sock.sendall(head(*lines))
        answer, headers, _ = read_answer(sock)
        assert (answer, headers["connection"]) == (status, "close")
        assert closed_by_server(sock)


def test_a_request_line_past_16_kib_is_414(server: RunningServer) -> None:
    with connection(server.port) as sock:
        sock.sendall(f"GET /v2/images?name={'a' * (16 << 10)} HTTP/1.1\r\n\r\n".encode())
        status, _, body = read_answer(sock)

    assert status == 414
    assert body.startswith(b"414 Request-URI Too Long\n\n")


def test_heads_at_the_bounds_are_served(server: RunningServer) -> None:
    # With httpx's five headers: 100 headers, one line of 16 KB, 62 KB in all.
    lines = [f"X-H{n}: {'a' * 480}" for n in range(94)] + ["X-Long: " + "a" * 16000]
    response = httpx.get(
        f"{server.url}/v2/images?name={'a' * 16000}",
        headers=dict(line.split(": ", 1) for line in lines),
    )

    assert response.status_code == 200


def test_limits_are_options(tmp_path: Path) -> None:
    env = {"SKYLENS_SERVER_MAX_HEADER_COUNT": "5", "SKYLENS_SERVER_MAX_REQUEST_LINE_BYTES": "64"}
    with dedicated_server(tmp_path, "sqlite", extra_env=env) as server:
        # httpx sends Host, Accept, Accept-Encoding, Connection and User-Agent
        assert httpx.get(f"{server.url}/v2/images").status_code == 200
        extra = httpx.get(f"{server.url}/v2/images", headers={"X-One": "more"})
        long = httpx.get(f"{server.url}/v2/images?name={'a' * 64}")

    assert (extra.status_code, long.status_code) == (431, 414)


# -- time and connections ------------------------------------------------------------


def test_a_head_that_does_not_arrive_in_time_is_408_and_closed(tmp_path: Path) -> None:
    env = {"SKYLENS_SERVER_HEADER_TIMEOUT_SECONDS": "1"}
    with (
        dedicated_server(tmp_path, "sqlite", extra_env=env) as server,
        connection(server.port) as silent,
        connection(server.port) as slow,
    ):
        slow.sendall(b"GET /v2/images HTTP/1.1\r\nHost: localhost\r\nX-Slow: ")
        status, _, _ = read_answer(slow)

        assert status == 408
        assert closed_by_server(slow)
        assert closed_by_server(silent)  # nothing sent: closed without a word
        assert httpx.get(f"{server.url}/healthcheck").status_code == 200


def test_idle_connections_past_the_cap_make_room_for_a_request(tmp_path: Path) -> None:
    """The review's slowloris: idle connections no longer starve everyone (issue 18.18).
    At the cap, the connections that have waited longest for a request head are
    closed to make room, so an ordinary request is answered at once."""
    env = {"SKYLENS_SERVER_MAX_CONNECTIONS": "20", "SKYLENS_SERVER_HEADER_TIMEOUT_SECONDS": "30"}
    with (
        dedicated_server(tmp_path, "sqlite", extra_env=env) as server,
        ExitStack() as stack,
    ):
        idle = [stack.enter_context(connection(server.port)) for _ in range(40)]
        answered = httpx.get(f"{server.url}/healthcheck", timeout=30)

        assert answered.status_code == 200
        # The oldest 21 made room (for the 20 after them and this request); the newest
        # 19 still wait for their heads.
        assert all(closed_by_server(sock) for sock in idle[:21])
        assert not any(closed_by_server(sock, wait=0.2) for sock in idle[21:])
        log = server.log.read_text()

    assert log.count("connection limit reached") == 1  # 21 closed, one line
    assert "server.max_connections = 20" in log


def test_past_the_cap_with_every_connection_busy_a_request_gets_503(tmp_path: Path) -> None:
    """Connections in the middle of a request are never closed to make room: when the
    cap is full of them, a new request is refused with 503 and Retry-After."""
    env = {"SKYLENS_SERVER_MAX_CONNECTIONS": "5"}
    with dedicated_server(tmp_path, "sqlite", extra_env=env) as server, ExitStack() as stack:
        with httpx.Client(base_url=server.url, headers={"Connection": "close"}) as api:
            body = {"disk_format": "raw", "container_format": "bare"}
            images = [api.post("/v2/images", json=body).json()["id"] for _ in range(5)]
        for image_id in images:  # five uploads under way, each waiting for its body
            sock = stack.enter_context(connection(server.port))
            sock.sendall(
                f"PUT /v2/images/{image_id}/file HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                "Content-Type: application/octet-stream\r\nContent-Length: 1000000\r\n\r\n".encode()
                + b"x" * 1000
            )
        refused = httpx.get(f"{server.url}/healthcheck", timeout=30)

    assert refused.status_code == 503
    assert refused.headers["retry-after"] == "5"


def test_connections_within_the_cap_are_served_while_it_is_full(tmp_path: Path) -> None:
    env = {"SKYLENS_SERVER_MAX_CONNECTIONS": "10"}
    with (
        dedicated_server(tmp_path, "sqlite", extra_env=env) as server,
        httpx.Client(base_url=server.url) as client,
        ExitStack() as stack,
    ):
        assert client.get("/healthcheck").status_code == 200  # keeps its connection
        for _ in range(20):
            stack.enter_context(connection(server.port))

        assert client.get("/healthcheck").status_code == 200
