"""Metadefs at scale, over real HTTP against one `skylens serve` worker.

    .venv/bin/python -m bench.metadefs [--properties 5000] [--namespaces 100]
                                       [--backend sqlite|postgresql] [--requests 200]

Seeds a fresh database with one public namespace holding `--properties` property
definitions and `--namespaces` - 1 small ones (10 properties and one resource type
association each; no shipped catalogue), starts one worker on it and prints the
latency (p50/p95) of listing the big namespace's properties, showing it, and
listing the namespaces, beside the list targets of `bench.list_show`. It prints
figures; it never judges a run by failing. See bench/README.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import os
import platform
import sys
import urllib.parse
from collections.abc import Sequence

import httpx
import sqlalchemy as sa

from bench.list_show import IDENTITIES, _ms, _print_table
from bench.load import Result, latency
from bench.seed import ADMIN_PROJECT
from bench.server import RunningServer, bench_server, fresh_database, memory
from skylens.db.engine import create_engine, upgrade
from skylens.db.metadefs import SqlMetadefRepository
from skylens.domain.metadefs import (
    Association,
    Namespace,
    NamespaceContents,
    NamespaceDetail,
    NamespaceVisibility,
)

BIG = "Bench::Big"
NS = "/v2/metadefs/namespaces"
NOW = dt.datetime(2026, 1, 1)


@dataclasses.dataclass(frozen=True)
class Case:
    label: str
    path: str
    target: str  # the list_show target it is read beside
    target_ms: float


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    with fresh_database(args.backend, "skylens_bench_metadefs") as (url, scratch):
        _prepare(url, args.properties, args.namespaces)
        with bench_server(scratch, url, args.backend) as server:
            results = _measure(server, args.namespaces, args.requests)
            rss = memory(server.pid).rss_mib
    _report(args, results, rss)
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench.metadefs", description=__doc__)
    parser.add_argument("--properties", type=int, default=5000, help="in the big namespace")
    parser.add_argument("--namespaces", type=int, default=100, help="namespaces in all")
    parser.add_argument("--backend", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument(
        "--requests", type=int, default=200, help="sequential requests per latency figure"
    )
    return parser


def _namespace(name: str, properties: int) -> NamespaceDetail:
    schemas = {
        f"bench_property_{index:05d}": {
            "title": f"Property {index}",
            "description": "A property of the benchmark, with a few allowed values.",
            "type": "string",
            "enum": ["one", "two", "three"],
            "default": "one",
        }
        for index in range(properties)
    }
    return NamespaceDetail(
        Namespace(
            name,
            f"{name} (bench)",
            "Seeded by bench.metadefs",
            NamespaceVisibility.PUBLIC,
            False,
            ADMIN_PROJECT,
            NOW,
            NOW,
        ),
        NamespaceContents(
            associations=(Association("OS::Glance::Image", "bench_", None, NOW, NOW),),
            properties=schemas,
        ),
    )


def _prepare(url: str, properties: int, namespaces: int) -> None:
    """The namespaces, loaded as the catalogue (so the shipped one is not)."""
    engine = create_engine(url, pool_size=1)
    upgrade(engine)
    details = [_namespace(BIG, properties)]
    details += [_namespace(f"Bench::Small::{index:03d}", 10) for index in range(namespaces - 1)]
    SqlMetadefRepository(engine).load_catalogue_once(details, NOW)
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.execute(sa.text("VACUUM ANALYZE"))
    engine.dispose()


def _cases(namespaces: int) -> list[Case]:
    big = f"{NS}/{urllib.parse.quote(BIG)}"
    large, small = "list limit=1000: p50 < 100 ms", "list limit=25: p50 < 10 ms"
    return [
        Case(f"list properties of {BIG}", f"{big}/properties", large, 100),
        Case(f"show {BIG}", big, large, 100),
        Case(f"list namespaces limit={namespaces}", f"{NS}?limit={namespaces}", large, 100),
        Case("list namespaces limit=25", f"{NS}?limit=25", small, 10),
    ]


def _measure(
    server: RunningServer, namespaces: int, requests: int
) -> dict[tuple[str, str], Result]:
    host, port = "127.0.0.1", server.port
    cases = _cases(namespaces)
    for case in cases:  # warm up: pool, statement caches, pages
        for headers in IDENTITIES.values():
            latency(host, port, [case.path], headers, 10)
    _check_sizes(server, namespaces)
    return {
        (case.label, identity): latency(host, port, [case.path], headers, requests)
        for case in cases
        for identity, headers in IDENTITIES.items()
    }


def _check_sizes(server: RunningServer, namespaces: int) -> None:
    """Say so if the pages are not the sizes the figures are labelled with."""
    for path, key, expected in (
        (f"{NS}?limit={namespaces}", "namespaces", namespaces),
        (f"{NS}/{urllib.parse.quote(BIG)}", "properties", None),
    ):
        response = httpx.get(server.url + path, headers=IDENTITIES["member"], timeout=60)
        found = len(response.json()[key])
        if expected is not None and found != expected:
            print(f"WARNING: {path} answered {found} {key}, not {expected}")


def _report(args: argparse.Namespace, results: dict[tuple[str, str], Result], rss: float) -> None:
    print(
        f"skylens metadefs benchmark: backend={args.backend}, {args.namespaces} namespaces, "
        f"{BIG} with {args.properties:,} properties (the others 10 each)"
    )
    print(
        f"latency: {args.requests} sequential requests per figure (raw-socket keep-alive "
        f"client); {os.cpu_count()} CPUs, Python {platform.python_version()}; "
        f"1-minute load average {os.getloadavg()[0]:.2f}\n"
    )
    rows = [("measure", "admin p50 / p95", "member p50 / p95", "list_show's target", "met")]
    for case in _cases(args.namespaces):
        admin, member = results[case.label, "admin"], results[case.label, "member"]
        met = "yes" if max(admin.p50_ms, member.p50_ms) < case.target_ms else "NO"
        rows.append((case.label, _ms(admin), _ms(member), case.target, met))
    _print_table(rows)
    print(f"\nworker RSS after the run: {rss:.0f} MiB")
    errors = sum(result.errors for result in results.values())
    if errors:
        print(f"\nWARNING: {errors} requests failed (non-2xx or socket errors)")


if __name__ == "__main__":
    sys.exit(main())
