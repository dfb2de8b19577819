"""HTTP/1.1 over raw sockets, for tests that send what no client library would:
endless headers, heads that never end, bodies that stop."""

from __future__ import annotations

import contextlib
import select
import socket
import time
from collections.abc import Iterator
from pathlib import Path

WAIT = 30.0  # seconds a test waits for the server; generous, never a measured bound


@contextlib.contextmanager
def connection(port: int, timeout: float = WAIT) -> Iterator[socket.socket]:
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        yield sock
    finally:
        sock.close()


def send_until_answered(sock: socket.socket, start: bytes, filler: bytes, most: int) -> int:
    """Send `start`, then `filler` again and again (`most` bytes at most) until the
    server answers or stops reading; the bytes sent."""
    sent = 0
    with contextlib.suppress(OSError):  # the server closed: it has had its say
        sock.sendall(start)
        while sent < most:
            readable, _, _ = select.select([sock], [], [], 0)
            if readable:
                break
            sock.sendall(filler)
            sent += len(filler)
    return sent


def read_answer(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """The status, headers and body of the next response (the body up to the close,
    or its Content-Length)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError(f"closed before a response head: {data!r}")
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "-1"))
    while length < 0 or len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return int(status_line.split()[1]), headers, body


def closed_by_server(sock: socket.socket, wait: float | None = None) -> bool:
    """Wait (up to `wait` seconds, else the socket's timeout) until the server closes
    the connection; whether it did. What it sent first is read and dropped."""
    if wait is not None:
        sock.settimeout(wait)
    try:
        while sock.recv(65536):
            pass
    except TimeoutError:
        return False
    except ConnectionResetError:
        pass
    return True


def rss_bytes(pid: int) -> int:
    """The resident memory of process `pid`."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


def wait_for(condition: object, what: str, timeout: float = WAIT) -> None:
    """Poll `condition()` until it is true; fail after `timeout` seconds."""
    assert callable(condition)
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"still not {what} after {timeout} s")
        time.sleep(0.05)
