"""A hashing sink: the most an upload server could do on this machine with a given client.

A plain socket server that answers every request `204 No Content` after reading its
body (Content-Length or chunked) into 8 MiB blocks and hashing each with md5 and
sha512 on two threads, while the next block is received: no disk, no inspection, no
HTTP framework. Driven by a client in the same run as Skylens is, its figure is the
bound for that client (the client's own cost on the shared cores included), so an
upload figure is read as a fraction of it. `Expect: 100-continue` is answered as soon
as the head is read, as a server ready for the body does.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import hashlib
import socket
import threading
from collections.abc import Iterator

from skylens.services.ingest import BLOCK_SIZE

_HEAD_LIMIT = 1 << 16


class _Connection:
    def __init__(self, sock: socket.socket, pool: concurrent.futures.ThreadPoolExecutor) -> None:
        self._sock = sock
        self._pool = pool
        self._buffered = bytearray()  # bytes received beyond what was consumed
        self._blocks = [memoryview(bytearray(BLOCK_SIZE)) for _ in range(2)]
        self._current = 0
        self._filled = 0
        self._pending: list[concurrent.futures.Future[None]] = []
        self._md5 = hashlib.md5(usedforsecurity=False)
        self._sha512 = hashlib.sha512()

    def serve(self) -> None:
        while (head := self._head()) is not None:
            headers = _headers(head)
            if headers.get(b"expect", b"").lower() == b"100-continue":
                self._sock.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
            if headers.get(b"transfer-encoding", b"").lower() == b"chunked":
                self._chunked()
            else:
                self._exactly(int(headers.get(b"content-length", b"0")))
            self._hand_over()
            for future in self._pending:
                future.result()
            self._pending = []
            self._sock.sendall(b"HTTP/1.1 204 No Content\r\nx-sink-md5: ")
            self._sock.sendall(self._md5.hexdigest().encode() + b"\r\n\r\n")
            self._md5 = hashlib.md5(usedforsecurity=False)
            self._sha512 = hashlib.sha512()

    def _head(self) -> bytes | None:
        while (end := self._buffered.find(b"\r\n\r\n")) < 0:
            data = self._sock.recv(_HEAD_LIMIT)
            if not data:
                return None
            self._buffered += data
        head = bytes(self._buffered[:end])
        del self._buffered[: end + 4]
        return head

    def _line(self) -> bytes:
        while (end := self._buffered.find(b"\r\n")) < 0:
            data = self._sock.recv(_HEAD_LIMIT)
            if not data:
                raise ConnectionError("the body ended early")
            self._buffered += data
        line = bytes(self._buffered[:end])
        del self._buffered[: end + 2]
        return line

    def _chunked(self) -> None:
        while size := int(self._line().split(b";")[0], 16):
            self._exactly(size)
            self._line()
        while self._line():
            pass  # trailers

    def _exactly(self, size: int) -> None:
        """`size` body bytes into the blocks: what was buffered, then straight from
        the socket."""
        while size:
            block = self._blocks[self._current]
            room = min(size, BLOCK_SIZE - self._filled)
            if self._buffered:
                count = min(room, len(self._buffered))
                block[self._filled : self._filled + count] = self._buffered[:count]
                del self._buffered[:count]
            else:
                count = self._sock.recv_into(block[self._filled : self._filled + room])
                if not count:
                    raise ConnectionError("the body ended early")
            self._filled += count
            size -= count
            if self._filled == BLOCK_SIZE:
                self._hand_over()

    def _hand_over(self) -> None:
        """Hash the current block on two threads; receive into the other meanwhile."""
        if not self._filled:
            return
        for future in self._pending:
            future.result()
        view = self._blocks[self._current][: self._filled]
        self._pending = [
            self._pool.submit(self._md5.update, view),
            self._pool.submit(self._sha512.update, view),
        ]
        self._current = 1 - self._current
        self._filled = 0


def _headers(head: bytes) -> dict[bytes, bytes]:
    headers = {}
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        headers[name.strip().lower()] = value.strip()
    return headers


@contextlib.contextmanager
def hashing_sink() -> Iterator[int]:
    """A sink on a free loopback port (its port), one connection at a time."""
    listener = socket.create_server(("127.0.0.1", 0))
    address = listener.getsockname()
    stopping = threading.Event()

    def accept() -> None:
        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            while not stopping.is_set():
                try:
                    sock, _ = listener.accept()
                except OSError:
                    return
                with sock, contextlib.suppress(OSError, ValueError):
                    _Connection(sock, pool).serve()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield address[1]
    finally:
        stopping.set()
        with contextlib.suppress(OSError):
            socket.create_connection(address, timeout=1).close()
        listener.close()
        thread.join(timeout=5)
