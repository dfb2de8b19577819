"""Clients that load the server over real HTTP/1.1 keep-alive connections.

- Latency: one raw-socket client sending requests one after another. It waits
  for each answer, so it never competes with the server for the CPU, and its own
  cost (a few tens of microseconds) is part of the figure, as for any client.
- Throughput: wrk (C, one thread, so the other core is the server's); without
  wrk, an asyncio fallback that competes with the server and reads lower.

Each cycles through a list of paths and treats any answer >= 400 as an error.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import shutil
import socket
import statistics
import subprocess
import tempfile
import time
from collections.abc import Mapping, Sequence
from typing import BinaryIO


@dataclasses.dataclass(frozen=True)
class Result:
    requests: int
    errors: int  # answers >= 400, timeouts, socket errors
    p50_ms: float
    p95_ms: float
    per_second: float


def _requests(
    host: str, port: int, paths: Sequence[str], headers: Mapping[str, str]
) -> list[bytes]:
    extra = "".join(f"{key}: {value}\r\n" for key, value in headers.items())
    return [f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\n{extra}\r\n".encode() for path in paths]


def _summarise(timings: list[float], errors: int, elapsed: float) -> Result:
    ordered = sorted(timings)
    p95 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))] if ordered else 0.0
    return Result(
        requests=len(ordered),
        errors=errors,
        p50_ms=statistics.median(ordered) * 1000 if ordered else 0.0,
        p95_ms=p95 * 1000,
        per_second=len(ordered) / elapsed if elapsed else 0.0,
    )


# -- latency ---------------------------------------------------------------------


def latency(
    host: str, port: int, paths: Sequence[str], headers: Mapping[str, str], count: int
) -> Result:
    """`count` requests one after another on one connection; time to the last byte."""
    requests = _requests(host, port, paths, headers)
    timings: list[float] = []
    errors = 0
    with socket.create_connection((host, port), timeout=120) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        reader = sock.makefile("rb")
        started = time.perf_counter()
        for index in range(count):
            begin = time.perf_counter()
            sock.sendall(requests[index % len(requests)])
            status = _read_response(reader)
            timings.append(time.perf_counter() - begin)
            errors += status >= 400
        elapsed = time.perf_counter() - started
    return _summarise(timings, errors, elapsed)


def fresh_connections(
    host: str, port: int, paths: Sequence[str], headers: Mapping[str, str], count: int
) -> Result:
    """`count` requests one after another, each on a new connection (closed by the
    client after the answer); time from the connect to the last byte."""
    requests = _requests(host, port, paths, headers)
    timings: list[float] = []
    errors = 0
    started = time.perf_counter()
    for index in range(count):
        begin = time.perf_counter()
        with socket.create_connection((host, port), timeout=120) as sock:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.sendall(requests[index % len(requests)])
            with sock.makefile("rb") as reader:
                status = _read_response(reader)
        timings.append(time.perf_counter() - begin)
        errors += status >= 400
    elapsed = time.perf_counter() - started
    return _summarise(timings, errors, elapsed)


def _read_response(reader: BinaryIO) -> int:
    status = int(reader.readline().split(b" ", 2)[1])
    length = 0
    while (line := reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.partition(b":")
        if name.lower() == b"content-length":
            length = int(value)
    reader.read(length)
    return status


# -- throughput ------------------------------------------------------------------


class Throughput:
    """As many requests as `connections` concurrent connections manage in `seconds`."""

    name = "abstract"

    def run(
        self,
        host: str,
        port: int,
        paths: Sequence[str],
        headers: Mapping[str, str],
        connections: int,
        seconds: float,
    ) -> Result:
        raise NotImplementedError


def best_throughput() -> Throughput:
    wrk = shutil.which("wrk")
    return Wrk(wrk) if wrk else AsyncioThroughput()


_LUA = """
local paths = {%(paths)s}
local next_path = 0
%(headers)s
request = function()
  next_path = next_path %% #paths + 1
  return wrk.format("GET", paths[next_path])
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH {"requests": %%d, "errors": %%d, "p50": %%f, "p95": %%f, "us": %%d}\\n',
    summary.requests, e.status + e.connect + e.read + e.write + e.timeout,
    latency:percentile(50), latency:percentile(95), summary.duration))
end
"""


class Wrk(Throughput):
    name = "wrk (1 thread)"

    def __init__(self, executable: str) -> None:
        self.executable = executable

    def run(
        self,
        host: str,
        port: int,
        paths: Sequence[str],
        headers: Mapping[str, str],
        connections: int,
        seconds: float,
    ) -> Result:
        script = _LUA % {
            "paths": ", ".join(json.dumps(path) for path in paths),
            "headers": "\n".join(
                f"wrk.headers[{json.dumps(k)}] = {json.dumps(v)}" for k, v in headers.items()
            ),
        }
        with tempfile.NamedTemporaryFile("w", suffix=".lua") as lua:
            lua.write(script)
            lua.flush()
            command = [self.executable, "-t1", f"-c{connections}", f"-d{seconds:g}s"]
            command += ["--timeout", "30s", "-s", lua.name, f"http://{host}:{port}"]
            output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
        line = next(line for line in output.splitlines() if line.startswith("BENCH "))
        figures = json.loads(line.removeprefix("BENCH "))
        return Result(
            requests=figures["requests"],
            errors=figures["errors"],
            p50_ms=figures["p50"] / 1000,
            p95_ms=figures["p95"] / 1000,
            per_second=figures["requests"] / (figures["us"] / 1e6),
        )


class AsyncioThroughput(Throughput):
    name = "python asyncio (wrk not found; competes with the server for the CPU)"

    def run(
        self,
        host: str,
        port: int,
        paths: Sequence[str],
        headers: Mapping[str, str],
        connections: int,
        seconds: float,
    ) -> Result:
        return asyncio.run(self._drive(host, port, paths, headers, connections, seconds))

    @staticmethod
    async def _drive(
        host: str,
        port: int,
        paths: Sequence[str],
        headers: Mapping[str, str],
        connections: int,
        seconds: float,
    ) -> Result:
        requests = _requests(host, port, paths, headers)
        timings: list[float] = []
        errors = 0
        deadline = time.perf_counter() + seconds

        async def client(offset: int) -> None:
            nonlocal errors
            reader, writer = await asyncio.open_connection(host, port)
            index = offset
            while time.perf_counter() < deadline:
                begin = time.perf_counter()
                writer.write(requests[index % len(requests)])
                status = int((await reader.readline()).split(b" ", 2)[1])
                length = 0
                while (line := await reader.readline()) not in (b"\r\n", b""):
                    name, _, value = line.partition(b":")
                    if name.lower() == b"content-length":
                        length = int(value)
                await reader.readexactly(length)
                timings.append(time.perf_counter() - begin)
                errors += status >= 400
                index += connections
            writer.close()

        started = time.perf_counter()
        await asyncio.gather(*(client(n) for n in range(connections)))
        return _summarise(timings, errors, time.perf_counter() - started)
