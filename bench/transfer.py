"""Raw-socket HTTP/1.1 clients for image data that cost the machine as little as possible.

On a two-core machine the client competes with the server for the CPU, so neither
client touches the bytes in Python: the upload sends the file with sendfile(2) behind a
Content-Length, and the download receives into one reused buffer and throws it away.
"""

from __future__ import annotations

import dataclasses
import socket
import time
from collections.abc import Mapping
from typing import BinaryIO

RECEIVE_BUFFER = 1 << 20


@dataclasses.dataclass(frozen=True)
class Transfer:
    status: int
    size: int  # body bytes sent (upload) or received (download)
    seconds: float

    @property
    def mb_per_s(self) -> float:
        return self.size / self.seconds / 1e6 if self.seconds else 0.0


def upload(
    host: str,
    port: int,
    path: str,
    file: BinaryIO,
    headers: Mapping[str, str],
    repeat: int = 1,
) -> Transfer:
    """PUT the whole file (`repeat` times over, as one body); timed to the answer."""
    file.seek(0, 2)
    size = file.tell()
    head = _head(
        "PUT",
        host,
        port,
        path,
        {
            **headers,
            "Content-Type": "application/octet-stream",
            "Content-Length": str(size * repeat),
        },
    )
    with socket.create_connection((host, port), timeout=600) as sock:
        started = time.perf_counter()
        sock.sendall(head)
        try:
            for _ in range(repeat):
                sock.sendfile(file, 0, size)
        except ConnectionError:
            pass  # the server answered early (an error) and closed: read that answer
        reader = sock.makefile("rb")
        status, length = _read_head(reader)
        reader.read(length)
        seconds = time.perf_counter() - started
    return Transfer(status, size * repeat, seconds)


def download(host: str, port: int, path: str, headers: Mapping[str, str]) -> Transfer:
    """GET the body and discard it; timed from the request to the last byte."""
    buffer = bytearray(RECEIVE_BUFFER)
    view = memoryview(buffer)
    with socket.create_connection((host, port), timeout=600) as sock:
        started = time.perf_counter()
        sock.sendall(_head("GET", host, port, path, headers))
        received = b""
        while b"\r\n\r\n" not in received:
            chunk = sock.recv(65536)
            if not chunk:
                raise ConnectionError("the server closed before answering")
            received += chunk
        head, _, early = received.partition(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        status = int(lines[0].split(b" ", 2)[1])
        length = _content_length(lines[1:])
        got = len(early)
        while got < length:
            count = sock.recv_into(view)
            if not count:
                raise ConnectionError(f"the body ended after {got} of {length} bytes")
            got += count
        seconds = time.perf_counter() - started
    return Transfer(status, length, seconds)


def _head(method: str, host: str, port: int, path: str, headers: Mapping[str, str]) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}:{port}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def _read_head(reader: BinaryIO) -> tuple[int, int]:
    status = int(reader.readline().split(b" ", 2)[1])
    lines = []
    while (line := reader.readline()) not in (b"\r\n", b""):
        lines.append(line.rstrip(b"\r\n"))
    return status, _content_length(lines)


def _content_length(lines: list[bytes]) -> int:
    for line in lines:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value)
    return 0
