"""List and show at scale, over real HTTP against one `skylens serve` worker.

    .venv/bin/python -m bench.list_show [--images 100000] [--backend sqlite|postgresql]
                                        [--requests 200] [--seconds 10]
                                        [--workers 1,2,4] [--keep-database]

Seeds a fresh database, starts one worker on it and prints latency (p50/p95),
show throughput at 16 connections and the worker's resident memory next to the
targets and Glance 33's baseline; with `--workers`, show throughput again with
each number of workers, and the CPU the workers and PostgreSQL spent. It prints
figures; it never judges a run by failing. See bench/README.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import sqlalchemy as sa

from bench.load import Result, Throughput, best_throughput, latency
from bench.seed import ADMIN_PROJECT, MEMBER_PROJECT, Seeded, seed
from bench.server import (
    Memory,
    RunningServer,
    bench_server,
    fresh_database,
    kept_database,
    memory,
)
from skylens.db.engine import create_engine, upgrade
from skylens.db.tables import image_members, image_properties, image_tags, images

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


@dataclasses.dataclass(frozen=True)
class Scaling:
    """Show throughput with one number of workers, and who spent the CPU."""

    workers: int
    throughput: dict[str, Result]  # identity -> result
    server_cpu_seconds: float  # the workers and their parent
    database_cpu_seconds: float  # every PostgreSQL process (other users' too)
    wall_seconds: float
    load_average: float  # 1-minute, after the run


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    generator = best_throughput()
    workers = [int(n) for n in args.workers.split(",")]
    if args.keep_database and args.backend == "postgresql":
        database = kept_database(f"skylens_bench_{args.images}")
    else:
        database = fresh_database(args.backend)
    with database as (url, scratch):
        started = time.perf_counter()
        seeded, reused = _prepare(url, args.images)
        seed_seconds = time.perf_counter() - started
        with bench_server(scratch, url, args.backend) as server:
            figures = _measure(server, generator, seeded, args)
        scaling = [
            _scale(scratch, url, args, generator, seeded, count)
            for count in workers
            if workers != [1]
        ]
    _report(args, generator, seeded, "reused" if reused else f"{seed_seconds:.1f} s", figures)
    if scaling:
        _report_scaling(args, scaling)
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
    parser.add_argument(
        "--workers",
        default="1",
        help="comma-separated worker counts to measure show throughput with (e.g. 1,2,4)",
    )
    parser.add_argument(
        "--keep-database",
        action="store_true",
        help="PostgreSQL: keep the seeded database skylens_bench_<images> and reuse it",
    )
    return parser


def _prepare(url: str, count: int) -> tuple[Seeded, bool]:
    """The seeded catalogue, and whether it was already there (a kept database)."""
    engine = create_engine(url, pool_size=1)
    upgrade(engine)
    with engine.connect() as connection:
        present = connection.execute(sa.select(sa.func.count()).select_from(images)).scalar()
    if present:
        engine.dispose()
        if present != count:
            raise SystemExit(f"the kept database holds {present:,} images, not {count:,}")
        return _counted(url), True
    seeded = seed(engine, count)
    if engine.dialect.name == "postgresql":
        # What autovacuum would do shortly after a bulk load; measure the steady state.
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.execute(sa.text("VACUUM ANALYZE"))
    engine.dispose()
    return seeded, False


def _counted(url: str) -> Seeded:
    """What `seed` reports, read back from a database it seeded earlier."""
    engine = create_engine(url, pool_size=1)
    with engine.connect() as connection:

        def rows(table: sa.Table) -> int:
            return connection.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()

        visible = connection.execute(
            sa.select(images.c.id)
            .where(sa.or_(images.c.visibility == "public", images.c.owner == MEMBER_PROJECT))
            .order_by(images.c.id)
            .limit(2000)
        ).scalars()
        seeded = Seeded(
            rows(images),
            rows(image_properties),
            rows(image_tags),
            rows(image_members),
            tuple(visible),
        )
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
            "p50 < 20 ms",
            20,
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


def _scale(
    scratch: Path,
    url: str,
    args: argparse.Namespace,
    generator: Throughput,
    seeded: Seeded,
    workers: int,
) -> Scaling:
    shows = _cases(seeded)[-1].paths
    with bench_server(scratch / f"workers-{workers}", url, args.backend, workers=workers) as server:
        for headers in IDENTITIES.values():  # every worker warm: more requests than workers
            generator.run("127.0.0.1", server.port, shows, headers, args.connections, 1)
        server_before, database_before = _cpu_seconds(server.pid), _database_cpu_seconds()
        started = time.perf_counter()
        throughput = {
            identity: generator.run(
                "127.0.0.1", server.port, shows, headers, args.connections, args.seconds
            )
            for identity, headers in IDENTITIES.items()
        }
        wall = time.perf_counter() - started
        server_cpu = _cpu_seconds(server.pid) - server_before
        database_cpu = _database_cpu_seconds() - database_before
    return Scaling(workers, throughput, server_cpu, database_cpu, wall, os.getloadavg()[0])


def _process_cpu(stat: str) -> tuple[int, float]:
    """(parent pid, user + system CPU seconds) from a /proc/<pid>/stat line."""
    fields = stat.rpartition(")")[2].split()
    return int(fields[1]), (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _processes() -> Iterator[tuple[int, str, str]]:
    """(pid, command name, stat line) of every process."""
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                yield (
                    int(entry.name),
                    (entry / "comm").read_text().strip(),
                    (entry / "stat").read_text(),
                )
            except OSError:
                continue  # gone meanwhile


def _cpu_seconds(root: int) -> float:
    """CPU spent so far by `root` and its children (uvicorn's workers)."""
    total = 0.0
    for pid, _name, stat in _processes():
        parent, seconds = _process_cpu(stat)
        if root in (pid, parent):
            total += seconds
    return total


def _database_cpu_seconds() -> float:
    """CPU spent so far by the PostgreSQL processes of this machine."""
    return sum(
        _process_cpu(stat)[1] for _pid, name, stat in _processes() if name.startswith("postgres")
    )


def _report(
    args: argparse.Namespace,
    generator: Throughput,
    seeded: Seeded,
    seeding: str,
    figures: Figures,
) -> None:
    print(
        f"skylens list/show benchmark: backend={args.backend}, images={seeded.images:,} "
        f"(properties {seeded.properties:,}, tags {seeded.tags:,}, members {seeded.members:,}; "
        f"seeding: {seeding})"
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


def _report_scaling(args: argparse.Namespace, scaling: Sequence[Scaling]) -> None:
    print(
        f"\nshow throughput by workers ({args.connections} connections x {args.seconds:g} s "
        f"per identity); CPU over both runs, in cores (PostgreSQL: all its processes on "
        f"this machine, {os.cpu_count()} CPUs)\n"
    )
    rows = [
        (
            "workers",
            "admin req/s",
            "member req/s",
            "per worker",
            "target",
            "workers' CPU",
            "PostgreSQL CPU",
            "load after",
        )
    ]
    for run in scaling:
        rates = [result.per_second for result in run.throughput.values()]
        rows.append(
            (
                str(run.workers),
                f"{run.throughput['admin'].per_second:,.0f}",
                f"{run.throughput['member'].per_second:,.0f}",
                f"{min(rates) / run.workers:,.0f}",
                ">= 2,000 req/s per worker",
                f"{run.server_cpu_seconds / run.wall_seconds:.2f}",
                f"{run.database_cpu_seconds / run.wall_seconds:.2f}",
                f"{run.load_average:.1f}",
            )
        )
    _print_table(rows)
    errors = sum(r.errors for run in scaling for r in run.throughput.values())
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
