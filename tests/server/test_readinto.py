"""The request-body extension of `skylens serve`'s protocol, over a real uvicorn.

Tiny ASGI apps read bodies with `skylens.http.request.readinto` through
`GlanceHttpToolsProtocol`, from raw sockets on loopback that frame, split, pipeline and
cut requests as the tests need. `socket.recv_into` is watched: a body counts as
received into the application's buffer only if the bytes went through it.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import io
import json
import os
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from skylens.asgi_extensions import READ_INTO as EXTENSION
from skylens.server.protocol import GlanceHttpToolsProtocol
from tests.support.uvicorn_thread import (
    ReceivedInto,
    ThreadServer,
    uvicorn_thread,
    watch_recv_into,
)

MIB = 1 << 20
App = Callable[[dict[str, Any], Any, Any], Any]


@pytest.fixture(params=["uvloop", "asyncio"])
def serve_options(request: pytest.FixtureRequest) -> Iterator[Callable[..., ThreadServer]]:
    """Start an app on the protocol, with uvicorn options, on each event loop `serve`
    may run."""
    with contextlib.ExitStack() as stack:

        def start(app: App, **options: Any) -> ThreadServer:
            server = uvicorn_thread(app, GlanceHttpToolsProtocol, request.param, **options)
            return stack.enter_context(server)

        yield start


@pytest.fixture
def serve(serve_options: Callable[..., ThreadServer]) -> Callable[[App], ThreadServer]:
    return serve_options


@pytest.fixture
def received_into(monkeypatch: pytest.MonkeyPatch) -> ReceivedInto:
    return watch_recv_into(monkeypatch)


class Seen:
    """What the app saw of each request, in order."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.done = threading.Event()


def digest_app(seen: Seen, buffer_size: int = MIB + 3, stop_after: int | None = None) -> App:
    """Answers every request with what it read of the body: its size and sha256, and
    whether it read it through the extension. `stop_after`: bytes it reads at most."""

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        extension = (scope.get("extensions") or {}).get(EXTENSION)
        record: dict[str, Any] = {"path": scope["path"], "extension": extension is not None}
        seen.requests.append(record)
        digest, size = hashlib.sha256(), 0
        try:
            if extension is not None:
                buffer = memoryview(bytearray(buffer_size))
                while stop_after is None or size < stop_after:
                    count = await extension["readinto"](buffer)
                    if not count:
                        break
                    digest.update(buffer[:count])
                    size += count
            else:
                more = True
                while more:
                    message = await receive()
                    digest.update(message.get("body", b""))
                    size += len(message.get("body", b""))
                    more = message.get("more_body", False)
        except OSError as error:
            record["error"] = type(error).__name__
            raise
        finally:
            record["size"] = size
            seen.done.set()
        record["sha256"] = digest.hexdigest()
        body = json.dumps(record).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    return app


def put(host: str, body_length: int | None, path: str = "/", extra: str = "") -> bytes:
    framing = (
        "Transfer-Encoding: chunked" if body_length is None else f"Content-Length: {body_length}"
    )
    return f"PUT {path} HTTP/1.1\r\nHost: {host}\r\n{framing}\r\n{extra}\r\n".encode()


def get(host: str, path: str) -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode()


def read_answer(reader: io.BufferedReader) -> dict[str, Any]:
    status = reader.readline()
    assert status.startswith(b"HTTP/1.1 200"), status
    headers = {}
    while (line := reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.partition(b":")
        headers[name.strip().lower()] = value.strip()
    answer: dict[str, Any] = json.loads(reader.read(int(headers[b"content-length"])))
    return answer


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@contextlib.contextmanager
def connect(server: ThreadServer) -> Iterator[tuple[socket.socket, io.BufferedReader]]:
    with (
        socket.create_connection((server.host, server.port), timeout=30) as sock,
        sock.makefile("rb") as reader,
    ):
        yield sock, reader


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_a_content_length_body_is_received_into_the_apps_buffers(
    serve: Callable[[App], ThreadServer], received_into: ReceivedInto
) -> None:
    seen = Seen()
    server = serve(digest_app(seen))
    body = os.urandom(16 * MIB + 5)

    with connect(server) as (sock, reader):
        sock.sendall(put(server.host, len(body)))
        sock.sendall(body)
        answer = read_answer(reader)

    assert answer == {
        "path": "/",
        "extension": True,
        "size": len(body),
        "sha256": sha256(body),
    }
    # All but what uvicorn's parser took before the app asked (at most its first reads).
    assert sum(received_into.by(server)) > len(body) - MIB


def test_body_bytes_that_came_with_the_headers_come_first_and_once(
    serve: Callable[[App], ThreadServer], received_into: ReceivedInto
) -> None:
    seen = Seen()
    inner = digest_app(seen)

    async def late_reader(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await asyncio.sleep(0.3)  # the parser takes what came with the headers meanwhile
        await inner(scope, receive, send)

    server = serve(late_reader)
    body = os.urandom(4 * MIB)

    with connect(server) as (sock, reader):
        sock.sendall(put(server.host, len(body)) + body[:200_000])
        time.sleep(0.1)
        sock.sendall(body[200_000:])
        answer = read_answer(reader)

    assert (answer["size"], answer["sha256"]) == (len(body), sha256(body))
    assert 0 < sum(received_into.by(server)) < len(body)  # the first bytes came from the parser


def test_a_body_the_parser_already_has_whole_leaves_the_socket_alone(
    serve: Callable[[App], ThreadServer], received_into: ReceivedInto
) -> None:
    seen = Seen()
    inner = digest_app(seen)

    async def late_reader(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await asyncio.sleep(0.2)
        await inner(scope, receive, send)

    server = serve(late_reader)
    body = os.urandom(3000)

    with connect(server) as (sock, reader):
        sock.sendall(put(server.host, len(body)) + body)
        first = read_answer(reader)
        sock.sendall(put(server.host, len(body), "/again") + body)  # keep-alive
        second = read_answer(reader)

    assert first["sha256"] == second["sha256"] == sha256(body)
    assert (first["extension"], second["path"]) == (True, "/again")
    assert received_into.by(server) == []


def chunks(body: bytes, size: int) -> bytes:
    """`body` in chunked transfer coding, `size` bytes a chunk, with a chunk extension
    and a trailer for the parser to skip."""
    framed = [
        b"%x;ext=1\r\n%s\r\n" % (len(piece), piece)
        for piece in (body[i : i + size] for i in range(0, len(body), size))
    ]
    return b"".join(framed) + b"0\r\nx-trailer: 1\r\n\r\n"


def test_a_chunked_body_is_read_into_the_apps_buffers(
    serve: Callable[[App], ThreadServer],
) -> None:
    """python-glanceclient's way: 64 KiB chunks, sent as they are read; the parser's
    pieces go into the app's buffer, and the next request on the connection is served."""
    seen = Seen()
    server = serve(digest_app(seen))
    body = os.urandom(6 * MIB + 11)
    framed = chunks(body, 64 * 1024)

    with connect(server) as (sock, reader):
        sock.sendall(put(server.host, None))
        for start in range(0, len(framed), 300_001):  # pieces cut across the framing
            sock.sendall(framed[start : start + 300_001])
        answer = read_answer(reader)
        sock.sendall(get(server.host, "/after"))
        after = read_answer(reader)

    assert answer == {"path": "/", "extension": True, "size": len(body), "sha256": sha256(body)}
    assert (after["path"], after["extension"], after["size"]) == ("/after", False, 0)


def test_chunked_pieces_that_come_while_the_app_is_busy_are_kept_in_order(
    serve: Callable[[App], ThreadServer],
) -> None:
    seen = Seen()
    inner = digest_app(seen, buffer_size=100_000)

    async def late_reader(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await asyncio.sleep(0.3)  # the parser takes the first chunks meanwhile
        await inner(scope, receive, send)

    server = serve(late_reader)
    body = os.urandom(3 * MIB)

    with connect(server) as (sock, reader):
        sock.sendall(put(server.host, None) + chunks(body, 1000))
        answer = read_answer(reader)

    assert (answer["extension"], answer["size"], answer["sha256"]) == (
        True,
        len(body),
        sha256(body),
    )


@pytest.mark.parametrize("stop_after", [None, MIB], ids=["read-whole", "stops-early"])
def test_the_request_after_a_chunked_body_is_served(
    serve: Callable[[App], ThreadServer], stop_after: int | None
) -> None:
    """What the app leaves unread of a chunked body is discarded by the parser, which
    still knows where the body ends; nothing inside the body is taken for a request."""
    seen = Seen()
    server = serve(digest_app(seen, buffer_size=64 * 1024, stop_after=stop_after))
    body = (get(server.host, "/smuggled") + os.urandom(100_000)) * 30

    with connect(server) as (sock, reader):
        sock.sendall(put(server.host, None) + chunks(body, 70_000) + get(server.host, "/after"))
        first, second = read_answer(reader), read_answer(reader)

    read = body if stop_after is None else body[:MIB]
    assert (first["extension"], first["size"], first["sha256"]) == (True, len(read), sha256(read))
    assert [request["path"] for request in seen.requests] == ["/", "/after"]
    assert second["path"] == "/after"


def test_a_client_gone_mid_chunked_body_fails_the_read(
    serve: Callable[[App], ThreadServer],
) -> None:
    seen = Seen()
    server = serve(digest_app(seen))

    with connect(server) as (sock, _):
        sock.sendall(put(server.host, None) + chunks(os.urandom(3 * MIB), 65536)[:-100])
        time.sleep(0.3)
    assert seen.done.wait(30)

    assert seen.requests[0]["extension"] is True
    assert seen.requests[0]["error"] == "ConnectionResetError"
    assert seen.requests[0]["size"] < 3 * MIB


def test_expect_100_continue_is_answered_before_a_chunked_body_is_read(
    serve: Callable[[App], ThreadServer],
) -> None:
    seen = Seen()
    server = serve(digest_app(seen))
    body = os.urandom(MIB)

    with connect(server) as (sock, reader):
        sock.sendall(put(server.host, None, extra="Expect: 100-continue\r\n"))
        assert reader.readline() == b"HTTP/1.1 100 Continue\r\n"
        assert reader.readline() == b"\r\n"
        sock.sendall(chunks(body, 65536))
        answer = read_answer(reader)

    assert (answer["extension"], answer["sha256"]) == (True, sha256(body))


def test_bodiless_requests_get_no_extension(serve: Callable[[App], ThreadServer]) -> None:
    seen = Seen()
    server = serve(digest_app(seen))

    with connect(server) as (sock, reader):
        sock.sendall(get(server.host, "/"))
        bodiless = read_answer(reader)

    assert bodiless["extension"] is False


def test_expect_100_continue_is_answered_before_the_body_is_read(
    serve: Callable[[App], ThreadServer],
) -> None:
    seen = Seen()
    server = serve(digest_app(seen))
    body = os.urandom(2 * MIB)

    with connect(server) as (sock, reader):
        sock.sendall(put(server.host, len(body), extra="Expect: 100-continue\r\n"))
        assert reader.readline() == b"HTTP/1.1 100 Continue\r\n"
        assert reader.readline() == b"\r\n"
        sock.sendall(body)
        answer = read_answer(reader)

    assert answer["sha256"] == sha256(body)


@pytest.mark.parametrize("stop_after", [None, MIB], ids=["read-whole", "stops-early"])
def test_the_request_after_a_body_is_parsed_from_its_first_byte(
    serve: Callable[[App], ThreadServer], stop_after: int | None
) -> None:
    """Whether the app read the whole body or stopped early, the connection goes on
    with the next request, pipelined right behind the body, and nothing in the unread
    part of the body is ever taken for a request."""
    seen = Seen()
    server = serve(digest_app(seen, buffer_size=64 * 1024, stop_after=stop_after))
    smuggled = get(server.host, "/smuggled")
    body = (smuggled + os.urandom(100_000)) * 40  # about 4 MiB of "requests"

    with connect(server) as (sock, reader):
        sock.sendall(put(server.host, len(body)) + body + get(server.host, "/after"))
        first, second = read_answer(reader), read_answer(reader)
        sock.sendall(get(server.host, "/later"))
        third = read_answer(reader)

    read = body if stop_after is None else body[:MIB]
    assert (first["path"], first["extension"]) == ("/", True)
    assert (first["size"], first["sha256"]) == (len(read), sha256(read))
    assert [second["path"], third["path"]] == ["/after", "/later"]
    assert [request["path"] for request in seen.requests] == ["/", "/after", "/later"]


def test_a_client_gone_mid_body_fails_the_read_and_leaks_nothing(
    serve: Callable[[App], ThreadServer],
) -> None:
    seen = Seen()
    server = serve(digest_app(seen))
    baseline = open_fds()

    with connect(server) as (sock, _):
        sock.sendall(put(server.host, 8 * MIB) + os.urandom(3 * MIB))
        time.sleep(0.2)
    assert seen.done.wait(30)

    assert seen.requests[0]["error"] in ("ConnectionResetError", "ConnectionAbortedError")
    assert seen.requests[0]["size"] <= 3 * MIB
    assert wait_for(lambda: open_fds() == baseline)  # the socket and its duplicate


def test_receive_is_refused_mid_body_and_says_the_body_ended_after(
    serve: Callable[[App], ThreadServer],
) -> None:
    outcomes: list[Any] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        readinto = scope["extensions"][EXTENSION]["readinto"]
        buffer = memoryview(bytearray(MIB))
        await readinto(buffer)
        try:
            await receive()
        except RuntimeError as error:
            outcomes.append(type(error).__name__)
        while await readinto(buffer):
            pass
        outcomes.append(await receive())
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    server = serve(app)
    with connect(server) as (sock, reader):
        sock.sendall(put(server.host, 4 * MIB) + os.urandom(4 * MIB))
        assert reader.readline().startswith(b"HTTP/1.1 200")

    assert outcomes == [
        "RuntimeError",
        {"type": "http.request", "body": b"", "more_body": False},
    ]


def test_tls_connections_get_no_extension(
    serve_options: Callable[..., ThreadServer], tmp_path: Path
) -> None:
    """TLS decrypts in user space: the socket's bytes are not the body's."""
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"),
            *("-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"),
            *("-keyout", "key.pem", "-out", "cert.pem"),
        ],
        check=True,
        capture_output=True,
        cwd=tmp_path,
    )
    seen = Seen()
    server = serve_options(
        digest_app(seen),
        ssl_certfile=str(tmp_path / "cert.pem"),
        ssl_keyfile=str(tmp_path / "key.pem"),
    )
    body = os.urandom(3 * MIB)
    context = ssl.create_default_context(cafile=str(tmp_path / "cert.pem"))

    with (
        socket.create_connection((server.host, server.port), timeout=30) as raw,
        context.wrap_socket(raw, server_hostname="127.0.0.1") as sock,
        sock.makefile("rb") as reader,
    ):
        sock.sendall(put(server.host, len(body)) + body)
        answer = read_answer(reader)

    assert (answer["extension"], answer["sha256"]) == (False, sha256(body))


def test_plain_uvicorn_does_not_advertise_the_extension() -> None:
    """What the upload handler's fallback is for: ASGI servers without it."""
    seen = Seen()

    with uvicorn_thread(digest_app(seen), "httptools") as server, connect(server) as (sock, reader):
        sock.sendall(put(server.host, 5) + b"hello")
        answer = read_answer(reader)

    assert (answer["extension"], answer["sha256"]) == (False, sha256(b"hello"))


def wait_for(condition: Callable[[], bool], seconds: float = 10) -> bool:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True
