"""What the abuse suite's scenarios (bench/abuse_scenarios.py) are made of.

A scenario does one abuse of issue 18 to a real `skylens serve` and calls `probe()`
while the abuse is in flight: the runner (bench/abuse.py) then times /healthcheck
and an ordinary `GET /v2/images` on fresh connections, and samples the worker's RSS
throughout. The scenario returns an `Outcome`: what the abuse got, and what it
should have got.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import select
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
from tests.support.identities import Identity, member_of, new_project
from tests.support.servers import RunningServer

from bench.abuse_probe import timed_get as timed_get  # the runner's warm-up requests

MIB = 1 << 20
BOTH = ("sqlite", "postgresql")
SQLITE = ("sqlite",)
POSTGRESQL = ("postgresql",)


@dataclasses.dataclass(frozen=True)
class Scale:
    """`full`: the abuse as issue 18 reproduced it; otherwise the test suite's smaller
    form, big enough to show the defect on the code before its fix."""

    full: bool

    def of(self, full: int, reduced: int) -> int:
        return full if self.full else reduced


@dataclasses.dataclass(frozen=True)
class Outcome:
    got: tuple[str, ...]
    want: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return self.got == self.want


def outcome(got: list[str] | tuple[str, ...], want: list[str] | tuple[str, ...]) -> Outcome:
    return Outcome(tuple(got), tuple(want))


def distinct(answers: list[str]) -> list[str]:
    """The different answers, in order: for abuses repeated many times."""
    return sorted(set(answers))


@dataclasses.dataclass(frozen=True)
class Setup:
    """What a scenario's server needs besides the defaults."""

    env: Mapping[str, str] = dataclasses.field(default_factory=dict)
    args: tuple[str, ...] = ()
    extra: Any = None  # handed to the scenario as `target.extra`


Probe = Callable[[], None]


@dataclasses.dataclass
class Target:
    server: RunningServer
    scale: Scale
    extra: Any = None
    # Headers of the ordinary list probe; a scenario in another auth mode sets its own.
    probe_headers: dict[str, str] = dataclasses.field(
        default_factory=lambda: member_of(new_project()).headers
    )

    @property
    def url(self) -> str:
        return self.server.url

    def client(
        self, identity: Identity | None = None, headers: Mapping[str, str] | None = None
    ) -> httpx.Client:
        base = dict(identity.headers) if identity else {}
        # Plain HTTP on loopback: without a TLS trust store to load, a client costs
        # ~2 ms of CPU instead of ~23 (90 of them are one scenario's abuse).
        return httpx.Client(
            base_url=self.url,
            headers={**base, **(headers or {})},
            timeout=120,
            verify=False,  # noqa: S501
        )

    def image(self, identity: Identity, data: bytes | None = None, **body: Any) -> str:
        """A new image of `identity`'s project; active with `data` when given."""
        with self.client(identity) as api:
            body = {"disk_format": "raw", "container_format": "bare", **body}
            created = api.post("/v2/images", json=body)
            assert created.status_code == 201, created.text
            image_id: str = created.json()["id"]
            if data is not None:
                put = api.put(
                    f"/v2/images/{image_id}/file",
                    content=data,
                    headers={"Content-Type": "application/octet-stream"},
                )
                assert put.status_code == 204, put.text
        return image_id

    def connect(self) -> socket.socket:
        return socket.create_connection(("127.0.0.1", self.server.port), timeout=30)

    def head(self, method: str, path: str, headers: Mapping[str, str]) -> bytes:
        lines = [f"{method} {path} HTTP/1.1", f"Host: 127.0.0.1:{self.server.port}"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        return ("\r\n".join(lines) + "\r\n\r\n").encode()


def status(response: httpx.Response) -> str:
    return str(response.status_code)


# -- raw connections --------------------------------------------------------------


def readable(sock: socket.socket, wait: float) -> bool:
    """Whether `sock` has something to read (or has ended) within `wait` seconds; poll(2),
    as select(2) refuses descriptors past 1023 and a scenario holds more connections."""
    poller = select.poll()
    poller.register(sock, select.POLLIN)
    return bool(poller.poll(wait * 1000))


def answer(sock: socket.socket, wait: float) -> str:
    """The status the server answered on `sock` within `wait` seconds; "closed" if it
    closed (or reset) the connection without one, "open" if it did neither."""
    deadline = time.monotonic() + wait
    received = b""
    with contextlib.suppress(OSError):
        while b"\r\n" not in received:
            left = deadline - time.monotonic()
            if left <= 0 or not readable(sock, left):
                return "open"
            piece = sock.recv(65536)
            if not piece:
                break
            received += piece
    if received.startswith(b"HTTP/1."):
        return received.split(b" ", 2)[1].decode()
    return "closed"


def push(sock: socket.socket, pieces: Iterator[bytes]) -> bool:
    """Send `pieces` until they end or the server answers or closes; True if it did."""
    try:
        for piece in pieces:
            if readable(sock, 0):
                return True
            sock.sendall(piece)
    except OSError:
        return True
    return False


def repeated(piece: bytes, total: int) -> Iterator[bytes]:
    sent = 0
    while sent < total:
        yield piece
        sent += len(piece)


ABUSE_NICENESS = 10


def _lower_priority() -> None:
    os.nice(ABUSE_NICENESS)  # this thread only (Linux)


@contextlib.contextmanager
def in_background(*calls: Callable[[], Any]) -> Iterator[list[Future[Any]]]:
    """Run `calls` on threads of their own while the block runs; wait for them after.

    The threads run at a lower CPU priority (niceness +ABUSE_NICENESS, per thread on
    Linux): the abuse comes from clients, normally on other hosts; here they share
    the worker's cores, and 90 runnable client threads would otherwise take the
    cores from the worker and the probes, and the figures would time the harness."""
    with ThreadPoolExecutor(max(1, len(calls)), initializer=_lower_priority) as pool:
        futures = [pool.submit(call) for call in calls]
        yield futures
        for future in futures:
            future.exception()


@contextlib.contextmanager
def sockets(count: int, target: Target) -> Iterator[list[socket.socket]]:
    opened: list[socket.socket] = []
    try:
        for _ in range(count):
            opened.append(target.connect())
        yield opened
    finally:
        for sock in opened:
            sock.close()


def until_ended(opened: list[socket.socket], wait: float) -> list[str]:
    """Each connection's end within `wait` seconds: "ended" (an answer, or closed by
    the server) or "still open"."""
    deadline = time.monotonic() + wait
    return [
        "still open" if answer(sock, max(0.0, deadline - time.monotonic())) == "open" else "ended"
        for sock in opened
    ]


# -- the runner's measurements ----------------------------------------------------


class Prober:
    """The probes' own process (bench/abuse_probe.py), started before the abuse."""

    def __init__(self) -> None:
        self._process = subprocess.Popen(
            [sys.executable, "-m", "bench.abuse_probe"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=Path(__file__).parent.parent,
        )

    def probe(self, port: int, headers: Mapping[str, str], count: int) -> list[tuple[str, float]]:
        """`count` times a /healthcheck then a list: (status, ms) of each, in order."""
        assert self._process.stdin is not None
        assert self._process.stdout is not None
        self._process.stdin.write(json.dumps([port, dict(headers), count]) + "\n")
        self._process.stdin.flush()
        line = self._process.stdout.readline()
        if not line:
            raise RuntimeError("the probe process ended")
        return [(status, ms) for status, ms in json.loads(line)]

    def __enter__(self) -> Prober:
        return self

    def __exit__(self, *_exc: object) -> None:
        assert self._process.stdin is not None
        self._process.stdin.close()
        self._process.wait(10)


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


class PeakSampler:
    """The highest VmRSS of `pid`, sampled every 10 ms while the block runs."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak = 0.0
        self._stop = threading.Event()

    def __enter__(self) -> PeakSampler:
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _sample(self) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(OSError):
                self.peak = max(self.peak, rss_mib(self.pid))
            self._stop.wait(0.01)
