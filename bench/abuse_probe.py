"""The abuse suite's probes, run in a process of their own (`python -m bench.abuse_probe`).

A probe timed from the process that also runs the abuse measures that process as
well: 90 client threads building requests, or one encoding a 100 MB JSON body,
hold its GIL, and the probe's thread waits for it at each of its socket calls (a
list that the worker answered in 3 ms read as 300 ms). Here the probes share
nothing with the abuse but the machine's cores, as a monitoring client would.

Each line read from stdin is a JSON `[port, headers, count]`: `count` times a
/healthcheck then a `GET /v2/images` with `headers`, each on a fresh connection.
Each answer is a JSON line: `[[status, ms], ...]` in that order. Only the
standard library is imported, so the process starts in tens of milliseconds.
"""

from __future__ import annotations

import json
import socket
import sys
import time
from collections.abc import Mapping


def timed_get(port: int, path: str, headers: Mapping[str, str]) -> tuple[str, float]:
    """(status, seconds) of one GET on a fresh connection, from the connect to the
    body's last byte; a raw socket, so that the client's own cost stays in microseconds."""
    extra = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    request = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{extra}Connection: close\r\n\r\n"
    began = time.perf_counter()
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(request.encode())
            reader = sock.makefile("rb")
            code = reader.readline().split(b" ", 2)[1].decode()
            length = 0
            while (line := reader.readline()) not in (b"\r\n", b""):
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            reader.read(length)
        return code, time.perf_counter() - began
    except (OSError, IndexError) as error:
        return type(error).__name__, time.perf_counter() - began


def main() -> None:
    for line in sys.stdin:
        port, headers, count = json.loads(line)
        answers = []
        for _ in range(count):
            for path, sent in (("/healthcheck", {}), ("/v2/images", headers)):
                status, seconds = timed_get(port, path, sent)
                answers.append([status, seconds * 1000])
        print(json.dumps(answers), flush=True)


if __name__ == "__main__":
    main()
