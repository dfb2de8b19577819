"""List and show at scale, over real HTTP against one `skylens serve` worker.

    .venv/bin/python -m bench.list_show [--images 100000] [--backend sqlite|postgresql]
                                        [--requests 200] [--seconds 10]

Seeds a fresh database, starts one worker on it and prints latency (p50/p95),
show throughput at 16 connections and the worker's resident memory next to the
targets and Glance 33's baseline. It prints figures; it never judges a run by
failing. See bench/README.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import sys
import time
from collections.abc import Sequence

import sqlalchemy as sa

from bench.load import Result, Throughput, best_throughput, latency
from bench.seed import ADMIN_PROJECT, MEMBER_PROJECT, Seeded, seed
from bench.server import Memory, RunningServer, bench_server, fresh_database, memory
from skylens.db.engine import create_engine, upgrade

IDENTITIES = {
    "admin": {
        "X-Project-Id": ADMIN_PROJECT,
        "X-User-Id": "bench-admin",
        "X-Roles": "admin,member,reader",
    },
    "member": {
        "X-Project-Id": MEMBER_PROJECT,
        "X-User-Id": "bench-user",
        "X-Roles": "member,reader",
    },
}


@dataclasses.dataclass(frozen=True)
class Case:
    label: str
    paths: Sequence[str]
    target: str  # printed next to the figure
    target_ms: float | None  # the p50 the target asks for, if any
    glance: str


@dataclasses.dataclass(frozen=True)
class Figures:
    latencies: dict[tuple[str, str], Result]  # (case label, identity) -> result
    throughput: dict[str, Result]  # identity -> result
    idle: Memory
    loaded: Memory
    load_average: tuple[float, float]  # 1-minute, before and after measuring


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    generator = best_throughput()
    with fresh_database(args.backend) as (url, scratch):
        started = time.perf_counter()
        seeded = _prepare(url, args.images)
        seed_seconds = time.perf_counter() - started
        with bench_server(scratch, url, args.backend) as server:
            figures = _measure(server, generator, seeded, args)
    _report(args, generator, seeded, seed_seconds, figures)
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench.list_show", description=__doc__)
    parser.add_argument("--images", type=int, default=100_000, help="images to seed")
    parser.add_argument("--backend", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument(
        "--requests", type=int, default=200, help="sequential requests per latency figure"
    )
    parser.add_argument("--seconds", type=float, default=10, help="duration of each throughput run")
    parser.add_argument("--connections", type=int, default=16, help="for the throughput run")
    return parser


def _prepare(url: str, count: int) -> Seeded:
    engine = create_engine(url, pool_size=1)
    upgrade(engine)
    seeded = seed(engine, count)
    if engine.dialect.name == "postgresql":
        # What autovacuum would do shortly after a bulk load; measure the steady state.
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.execute(sa.text("VACUUM ANALYZE"))
    engine.dispose()
    return seeded


def _cases(seeded: Seeded) -> list[Case]:
    shows = [f"/v2/images/{image_id}" for image_id in seeded.member_visible_ids]
    return [
        Case("list limit=25", ["/v2/images?limit=25"], "p50 < 10 ms", 10, "~50 ms (10k images)"),
        Case("list limit=1000", ["/v2/images?limit=1000"], "p50 < 100 ms", 100, "~760 ms"),
        Case(
            "list sort=name:asc (25)",
            ["/v2/images?sort=name:asc"],
            "p50 < 10 ms",
            10,
            "-",
        ),
        Case(
            "list os_distro=ubuntu (25)",
            ["/v2/images?os_distro=ubuntu"],
            "p50 < 10 ms",
            10,
            "~70 ms",
        ),
        Case("show /v2/images/{id}", shows, "-", None, "~5 ms"),
    ]


def _measure(
    server: RunningServer, generator: Throughput, seeded: Seeded, args: argparse.Namespace
) -> Figures:
    host, port = "127.0.0.1", server.port
    cases = _cases(seeded)
    # Idle: started, and a few everyday requests served (a show, a default list).
    for case in (cases[0], cases[-1]):
        for headers in IDENTITIES.values():
            latency(host, port, case.paths, headers, 5)
    idle = memory(server.pid)
    # Warm every path up (connection pool, statement caches, pages) before timing.
    for case in cases:
        for headers in IDENTITIES.values():
            latency(host, port, case.paths, headers, 10)
    load_before = os.getloadavg()[0]
    latencies = {}
    for case in cases:
        for identity, headers in IDENTITIES.items():
            latencies[case.label, identity] = latency(
                host, port, case.paths, headers, args.requests
            )
    shows = cases[-1].paths
    throughput = {
        identity: generator.run(host, port, shows, headers, args.connections, args.seconds)
        for identity, headers in IDENTITIES.items()
    }
    return Figures(
        latencies, throughput, idle, memory(server.pid), (load_before, os.getloadavg()[0])
    )


def _report(
    args: argparse.Namespace,
    generator: Throughput,
    seeded: Seeded,
    seed_seconds: float,
    figures: Figures,
) -> None:
    print(
        f"skylens list/show benchmark: backend={args.backend}, images={seeded.images:,} "
        f"(properties {seeded.properties:,}, tags {seeded.tags:,}, members {seeded.members:,}; "
        f"seeded in {seed_seconds:.1f} s)"
    )
    print(
        f"latency: {args.requests} sequential requests per figure (raw-socket keep-alive "
        f"client); throughput: {generator.name}, {args.connections} connections x "
        f"{args.seconds:g} s; "
        f"{os.cpu_count()} CPUs, Python {platform.python_version()}"
    )
    print(f"member = project {MEMBER_PROJECT} (member,reader); admin = {ADMIN_PROJECT}")
    before, after = figures.load_average
    print(
        f"1-minute load average {before:.2f} before measuring, {after:.2f} after "
        "(figures from a busy machine read low)\n"
    )
    rows = [("measure", "admin p50 / p95", "member p50 / p95", "target", "met", "Glance 33")]
    for case in _cases(seeded):
        admin = figures.latencies[case.label, "admin"]
        member = figures.latencies[case.label, "member"]
        worst = max(admin.p50_ms, member.p50_ms)
        met = "-" if case.target_ms is None else ("yes" if worst < case.target_ms else "NO")
        rows.append((case.label, _ms(admin), _ms(member), case.target, met, case.glance))
    admin_rate = figures.throughput["admin"]
    member_rate = figures.throughput["member"]
    rows.append(
        (
            f"show req/s, {args.connections} connections",
            f"{admin_rate.per_second:,.0f}",
            f"{member_rate.per_second:,.0f}",
            ">= 2,000 req/s",
            "yes" if min(admin_rate.per_second, member_rate.per_second) >= 2000 else "NO",
            "~190 req/s",
        )
    )
    rows.append(
        (
            "idle RSS, 1 worker",
            f"{figures.idle.rss_mib:.0f} MiB (anon {figures.idle.anon_mib:.0f})",
            f"after load {figures.loaded.rss_mib:.0f} MiB (anon {figures.loaded.anon_mib:.0f})",
            "< 100 MiB",
            "yes" if figures.idle.rss_mib < 100 else "NO",
            "~134 MiB",
        )
    )
    _print_table(rows)
    errors = sum(r.errors for r in [*figures.latencies.values(), *figures.throughput.values()])
    if errors:
        print(f"\nWARNING: {errors} requests failed (non-2xx or socket errors)")


def _ms(result: Result) -> str:
    return f"{result.p50_ms:.1f} / {result.p95_ms:.1f} ms"


def _print_table(rows: Sequence[tuple[str, ...]]) -> None:
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    for index, row in enumerate(rows):
        print(
            "| "
            + " | ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
            + " |"
        )
        if index == 0:
            print("|" + "|".join("-" * (width + 2) for width in widths) + "|")


if __name__ == "__main__":
    sys.exit(main())
