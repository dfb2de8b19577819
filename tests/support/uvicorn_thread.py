"""A real uvicorn server on loopback, on a thread of the test process.

For tests that need to see inside the server while it serves real sockets: which
protocol class it runs, which system calls the bytes went through. Everything else
uses the `skylens serve` subprocesses of `servers.py`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import uvicorn


@dataclasses.dataclass(frozen=True)
class ThreadServer:
    host: str
    port: int

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"


@contextlib.contextmanager
def uvicorn_thread(
    app: Any, http: type[Any] | str, loop: str = "uvloop", **options: Any
) -> Iterator[ThreadServer]:
    """Serve `app` with uvicorn's `http` protocol (a class or a name) until the block ends;
    `options` go to `uvicorn.Config` (e.g. `ssl_certfile`)."""
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=0,
        http=http,
        loop=loop,
        ws="none",
        lifespan="off",
        log_config=None,  # leave the test process's logging alone
        access_log=False,
        **options,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.01)
    port: int = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield ThreadServer("127.0.0.1", port)
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def watch_sendfile(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Record what every `os.sendfile` call of this process sends (the real call)."""
    sent: list[int] = []
    real = os.sendfile

    def watched(out_fd: int, in_fd: int, offset: int | None, count: int) -> int:
        result = real(out_fd, in_fd, offset, count)
        sent.append(result)
        return result

    monkeypatch.setattr(os, "sendfile", watched)
    return sent


class ReceivedInto:
    """What `socket.recv_into` calls received on the server side of connections."""

    def __init__(self) -> None:
        self.calls: list[tuple[int, int]] = []  # (the socket's local port, bytes)

    def by(self, server: ThreadServer) -> list[int]:
        return [count for port, count in self.calls if port == server.port]


def watch_recv_into(monkeypatch: pytest.MonkeyPatch) -> ReceivedInto:
    """Record what every `socket.recv_into` call of this process receives (the real call)."""
    watch = ReceivedInto()
    real = socket.socket.recv_into

    def watched(self: socket.socket, buffer: Any, nbytes: int = 0, flags: int = 0) -> int:
        port = self.getsockname()[1]
        count = real(self, buffer, nbytes, flags)
        watch.calls.append((port, count))
        return count

    monkeypatch.setattr(socket.socket, "recv_into", watched)
    return watch
