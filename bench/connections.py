"""A show on a new connection against a show on a kept-alive one (issue 17).

    .venv/bin/python -m bench.connections [--images 200] [--requests 500] [--rounds 3]

One `skylens serve` worker on SQLite with `--images` images created through the
API; `GET /v2/images/{id}` cycling through them, `--requests` one after another on
one keep-alive connection, then as many each on a connection of its own (connect,
request, answer, close), alternating for `--rounds` rounds so that the machine's
other work weighs on both alike. It prints the p50 of each and their ratio beside
the target (a new connection within 2x of a keep-alive show), and the 1-minute load
average. It prints figures; it never judges a run by failing. See bench/README.md.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from collections.abc import Sequence

import httpx

from bench.load import Result, fresh_connections, latency
from bench.server import bench_server, fresh_database

TARGET_RATIO = 2.0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.connections", description=__doc__)
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--requests", type=int, default=500, help="per figure and round")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    load_before = os.getloadavg()[0]
    kept: list[Result] = []
    fresh: list[Result] = []
    with (
        fresh_database("sqlite") as (url, scratch),
        bench_server(scratch / "server", url, "sqlite") as server,
    ):
        paths = []
        with httpx.Client(base_url=server.url, timeout=30) as client:
            for index in range(args.images):
                body = {"name": f"bench-{index}", "disk_format": "raw", "container_format": "bare"}
                response = client.post("/v2/images", json=body)
                response.raise_for_status()
                paths.append(f"/v2/images/{response.json()['id']}")
        host, port = "127.0.0.1", server.port
        latency(host, port, paths, {}, 50)  # warm up both ways
        fresh_connections(host, port, paths, {}, 50)
        for _ in range(args.rounds):
            kept.append(latency(host, port, paths, {}, args.requests))
            fresh.append(fresh_connections(host, port, paths, {}, args.requests))
    load_after = os.getloadavg()[0]
    errors = sum(result.errors for result in kept + fresh)
    print(
        f"skylens connection benchmark: SQLite, {args.images} images, 1 worker, "
        f"{args.rounds} rounds of {args.requests} shows each way; {os.cpu_count()} CPUs"
    )
    print(f"1-minute load average {load_before:.2f} before, {load_after:.2f} after")
    print(f"non-2xx answers: {errors}\n")
    kept_p50 = statistics.median(result.p50_ms for result in kept)
    fresh_p50 = statistics.median(result.p50_ms for result in fresh)
    ratio = fresh_p50 / kept_p50
    print("| measure | p50 ms (per round) | p95 ms (median of rounds) | target | met |")
    print("|---|---|---|---|---|")
    for name, results in (("show, keep-alive", kept), ("show, new connection", fresh)):
        rounds = ", ".join(f"{result.p50_ms:.2f}" for result in results)
        p95 = statistics.median(result.p95_ms for result in results)
        print(
            f"| {name} | {statistics.median(r.p50_ms for r in results):.2f} ({rounds}) "
            f"| {p95:.2f} | | |"
        )
    met = "yes" if ratio <= TARGET_RATIO else "NO"
    print(f"| new connection / keep-alive | {ratio:.2f}x | | <= {TARGET_RATIO:.0f}x | {met} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
