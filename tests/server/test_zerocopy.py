"""The zero-copy send extension of `skylens serve`'s protocol, over a real uvicorn.

Tiny ASGI apps send `http.response.zerocopysend` through `GlanceHttpToolsProtocol` on
real loopback sockets. The file objects they hand over refuse to be read from Python,
and `os.sendfile` is watched: a test passes only if the bytes really went from the
file to the socket in the kernel.
"""

from __future__ import annotations

import contextlib
import http.client
import io
import os
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from skylens.asgi_extensions import ZERO_COPY_SEND as EXTENSION
from skylens.server.protocol import GlanceHttpToolsProtocol
from tests.support.uvicorn_thread import ThreadServer, uvicorn_thread, watch_sendfile

MIB = 1 << 20
App = Callable[[dict[str, Any], Any, Any], Any]


class UnreadableFile(io.FileIO):
    """A real file whose bytes cannot be read through Python, only through its fd."""

    def read(self, size: int | None = -1, /) -> bytes:
        raise AssertionError("the server read the file through Python")

    def readinto(self, buffer: Any, /) -> int:
        raise AssertionError("the server read the file through Python")

    def readall(self) -> bytes:
        raise AssertionError("the server read the file through Python")


@pytest.fixture
def data(tmp_path: Path) -> tuple[Path, bytes]:
    """16 MiB of random bytes in a file: more than the socket buffers hold at once."""
    content = os.urandom(16 * MIB)
    path = tmp_path / "blob"
    path.write_bytes(content)
    return path, content


@pytest.fixture
def sendfile_bytes(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    return watch_sendfile(monkeypatch)


@pytest.fixture(params=["uvloop", "asyncio"])
def serve(request: pytest.FixtureRequest) -> Iterator[Callable[[App], ThreadServer]]:
    """Start an app on the protocol, on each event loop `serve` may run."""
    with contextlib.ExitStack() as stack:

        def start(app: App) -> ThreadServer:
            return stack.enter_context(uvicorn_thread(app, GlanceHttpToolsProtocol, request.param))

        yield start


def start_message(length: int | None, status: int = 200) -> dict[str, Any]:
    headers = [(b"content-type", b"application/octet-stream")]
    if length is not None:
        headers.append((b"content-length", str(length).encode()))
    return {"type": "http.response.start", "status": status, "headers": headers}


def file_app(path: Path, offset: int = 0, count: int | None = None) -> App:
    size = path.stat().st_size - offset if count is None else count

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        with UnreadableFile(path, "r") as file:
            await send(start_message(size))
            await send({"type": EXTENSION, "file": file, "offset": offset, "count": size})

    return app


def get(server: ThreadServer, path: str = "/", method: str = "GET") -> http.client.HTTPResponse:
    connection = http.client.HTTPConnection(server.host, server.port, timeout=30)
    connection.request(method, path)
    return connection.getresponse()


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_plain_tcp_connections_advertise_the_extension(
    serve: Callable[[App], ThreadServer],
) -> None:
    seen: list[dict[str, Any]] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        seen.append(scope.get("extensions") or {})
        await send(start_message(0))
        await send({"type": "http.response.body", "body": b""})

    assert get(serve(app)).status == 200
    assert seen == [{EXTENSION: {}}]


def test_the_bytes_go_from_the_file_to_the_socket_through_sendfile(
    serve: Callable[[App], ThreadServer], data: tuple[Path, bytes], sendfile_bytes: list[int]
) -> None:
    path, content = data

    response = get(serve(file_app(path)))

    assert response.status == 200
    assert response.getheader("content-length") == str(len(content))
    assert response.read() == content
    assert sum(sendfile_bytes) == len(content)
    assert len(sendfile_bytes) > 1  # several calls: the socket filled up in between


def test_offset_and_count_send_a_window_of_the_file(
    serve: Callable[[App], ThreadServer], data: tuple[Path, bytes], sendfile_bytes: list[int]
) -> None:
    path, content = data

    response = get(serve(file_app(path, offset=1000, count=5 * MIB + 7)))

    assert response.read() == content[1000 : 1000 + 5 * MIB + 7]
    assert sum(sendfile_bytes) == 5 * MIB + 7


def test_without_offset_and_count_it_sends_from_the_position_to_the_end(
    serve: Callable[[App], ThreadServer], data: tuple[Path, bytes]
) -> None:
    path, content = data
    positions: list[int] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        with UnreadableFile(path, "r") as file:
            file.seek(123)
            await send(start_message(len(content) - 123))
            await send({"type": EXTENSION, "file": file})
            positions.append(file.tell())

    assert get(serve(app)).read() == content[123:]
    # The app runs on after its last send: the client may finish reading first.
    assert wait_for(lambda: positions != [])
    assert positions == [len(content)]  # as a read would have left it


def test_it_mixes_with_body_messages_in_order(
    serve: Callable[[App], ThreadServer], data: tuple[Path, bytes]
) -> None:
    path, content = data

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        with UnreadableFile(path, "r") as file:
            await send(start_message(4 + 2 * MIB + 4))
            await send({"type": "http.response.body", "body": b"head", "more_body": True})
            await send({"type": EXTENSION, "file": file.fileno(), "count": MIB, "more_body": True})
            await send(
                {"type": EXTENSION, "file": file, "offset": 0, "count": MIB, "more_body": True}
            )
            await send({"type": "http.response.body", "body": b"tail"})

    assert get(serve(app)).read() == b"head" + content[:MIB] + content[:MIB] + b"tail"


def test_the_file_waits_for_the_bytes_buffered_before_it(
    serve: Callable[[App], ThreadServer], data: tuple[Path, bytes]
) -> None:
    path, content = data
    before = os.urandom(8 * MIB)  # more than the socket takes at once: uvicorn buffers it

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        with UnreadableFile(path, "r") as file:
            await send(start_message(len(before) + len(content)))
            await send({"type": "http.response.body", "body": before, "more_body": True})
            await send({"type": EXTENSION, "file": file, "offset": 0})

    assert get(serve(app)).read() == before + content


def test_a_response_without_content_length_gets_the_file_as_one_chunk(
    serve: Callable[[App], ThreadServer], data: tuple[Path, bytes]
) -> None:
    path, content = data

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        with UnreadableFile(path, "r") as file:
            await send(start_message(None))
            await send(
                {"type": EXTENSION, "file": file, "offset": 0, "count": 3 * MIB, "more_body": True}
            )
            await send({"type": "http.response.body", "body": b"end"})

    response = get(serve(app))

    assert response.getheader("transfer-encoding") == "chunked"
    assert response.read() == content[: 3 * MIB] + b"end"


def test_keep_alive_and_pipelined_requests_get_whole_responses_in_order(
    serve: Callable[[App], ThreadServer], data: tuple[Path, bytes]
) -> None:
    path, content = data
    server = serve(file_app(path))
    request = f"GET / HTTP/1.1\r\nHost: {server.host}\r\n\r\n".encode()

    with socket.create_connection((server.host, server.port), timeout=30) as sock:
        sock.sendall(request * 2)  # the second waits in uvicorn's pipeline
        reader = sock.makefile("rb")
        for _ in range(2):
            assert read_response(reader) == content
        sock.sendall(request)
        assert read_response(reader) == content


def test_head_sends_the_headers_and_keeps_the_connection(
    serve: Callable[[App], ThreadServer], data: tuple[Path, bytes], sendfile_bytes: list[int]
) -> None:
    path, content = data
    server = serve(file_app(path))
    connection = http.client.HTTPConnection(server.host, server.port, timeout=30)

    connection.request("HEAD", "/")
    head = connection.getresponse()
    assert head.getheader("content-length") == str(len(content))
    assert head.read() == b""
    local = connection.sock.getsockname() if connection.sock else None
    connection.request("GET", "/")

    assert connection.getresponse().read() == content
    assert connection.sock is not None
    assert connection.sock.getsockname() == local
    assert sum(sendfile_bytes) == len(content)


def test_a_slow_reader_gets_every_byte_and_the_server_serves_others_meanwhile(
    serve: Callable[[App], ThreadServer], data: tuple[Path, bytes]
) -> None:
    path, content = data

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["path"] == "/small":
            await send(start_message(2))
            await send({"type": "http.response.body", "body": b"ok"})
            return
        await file_app(path)(scope, receive, send)

    server = serve(app)
    with socket.create_connection((server.host, server.port), timeout=30) as slow:
        slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
        slow.sendall(f"GET / HTTP/1.1\r\nHost: {server.host}\r\n\r\n".encode())
        reader = slow.makefile("rb")
        status_line = reader.readline()
        time.sleep(0.2)  # the server's socket is full now: it waits for us
        assert get(server, "/small").read() == b"ok"  # ... and serves others meanwhile
        headers = read_headers(reader)
        body = bytearray()
        while len(body) < int(headers[b"content-length"]):
            body += reader.read(256 * 1024)
            time.sleep(0.001)

    assert status_line.startswith(b"HTTP/1.1 200")
    assert bytes(body) == content


@pytest.mark.parametrize("reset", [False, True], ids=["close", "reset"])
def test_a_client_gone_mid_transfer_leaves_the_server_whole(
    serve: Callable[[App], ThreadServer], tmp_path: Path, reset: bool
) -> None:
    path = tmp_path / "big"
    path.write_bytes(os.urandom(64 * MIB))
    finished = threading.Event()
    outcomes: list[str] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        try:
            await file_app(path)(scope, receive, send)
            outcomes.append("returned")
        except BaseException as error:
            outcomes.append(repr(error))
            raise
        finally:
            finished.set()

    server = serve(app)
    baseline = open_fds()
    with socket.create_connection((server.host, server.port), timeout=30) as sock:
        sock.sendall(f"GET / HTTP/1.1\r\nHost: {server.host}\r\n\r\n".encode())
        sock.recv(64 * 1024)
        if reset:  # RST at once rather than FIN (unread data makes Linux reset anyway)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    assert finished.wait(30)

    assert outcomes == ["returned"]  # as any send after a disconnect: silently
    assert wait_for(lambda: open_fds() == baseline)  # socket and its duplicate closed
    assert get(server, "/").read() == path.read_bytes()


def test_a_file_shorter_than_its_count_ends_the_connection(
    serve: Callable[[App], ThreadServer], data: tuple[Path, bytes]
) -> None:
    path, content = data
    errors: list[BaseException] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["path"] == "/whole":
            await file_app(path)(scope, receive, send)
            return
        with UnreadableFile(path, "r") as file:
            await send(start_message(len(content) + 100))
            try:
                await send({"type": EXTENSION, "file": file, "count": len(content) + 100})
            except RuntimeError as error:
                errors.append(error)
                raise

    server = serve(app)
    response = get(server, "/short")

    with pytest.raises(http.client.IncompleteRead):
        response.read()
    assert len(errors) == 1
    assert get(server, "/whole").read() == content


def test_more_than_the_content_length_is_refused_before_any_byte(
    serve: Callable[[App], ThreadServer], data: tuple[Path, bytes], sendfile_bytes: list[int]
) -> None:
    path, _ = data
    errors: list[str] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        with UnreadableFile(path, "r") as file:
            await send(start_message(10))
            try:
                await send({"type": EXTENSION, "file": file, "count": 11})
            except RuntimeError as error:
                errors.append(str(error))
                raise

    response = get(serve(app))

    with pytest.raises(http.client.IncompleteRead):
        response.read()
    assert errors == ["Response content longer than Content-Length"]
    assert sendfile_bytes == []


def test_plain_uvicorn_does_not_advertise_the_extension() -> None:
    """What the download handler's fallback is for: ASGI servers without it."""
    seen: list[dict[str, Any]] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        seen.append(scope.get("extensions") or {})
        await send(start_message(0))
        await send({"type": "http.response.body", "body": b""})

    with uvicorn_thread(app, "httptools") as server:
        assert get(server).status == 200
    assert EXTENSION not in seen[0]


# -- helpers -------------------------------------------------------------------


def read_headers(reader: io.BufferedReader) -> dict[bytes, bytes]:
    headers = {}
    while (line := reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.partition(b":")
        headers[name.strip().lower()] = value.strip()
    return headers


def read_response(reader: io.BufferedReader) -> bytes:
    assert reader.readline().startswith(b"HTTP/1.1 200")
    length = int(read_headers(reader)[b"content-length"])
    body = reader.read(length)
    assert len(body) == length
    return body


def wait_for(condition: Callable[[], bool], seconds: float = 10) -> bool:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True
