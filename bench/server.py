"""Fresh databases and one real `skylens serve` process to measure.

The server and PostgreSQL databases come from the test harness
(tests/support/servers.py), so benchmarks measure exactly what tests start;
this adds what only a benchmark needs, such as the worker's memory.
"""

from __future__ import annotations

import contextlib
import dataclasses
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import sqlalchemy as sa
from tests.support.servers import (
    POSTGRES_URL,
    RunningServer,
    postgres_admin,
    postgres_database,
    skylens_server,
)

__all__ = ["Memory", "RunningServer", "bench_server", "fresh_database", "kept_database", "memory"]


@contextlib.contextmanager
def fresh_database(backend: str, name: str = "skylens_bench") -> Iterator[tuple[str, Path]]:
    """(database URL, scratch directory) for an empty database; removed afterwards."""
    scratch = Path(tempfile.mkdtemp(prefix="skylens-bench-"))
    try:
        if backend == "sqlite":
            yield f"sqlite:///{scratch / 'skylens.db'}", scratch
        else:
            with postgres_database(name) as url:
                yield url, scratch
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


@contextlib.contextmanager
def kept_database(name: str) -> Iterator[tuple[str, Path]]:
    """(URL, scratch directory) for the PostgreSQL database `name`, created if it
    does not exist and kept afterwards, to measure again without seeding again."""
    with postgres_admin() as connection:
        found = connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
        if found.fetchone() is None:
            connection.execute(f'CREATE DATABASE "{name}"')
    url = sa.make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
    scratch = Path(tempfile.mkdtemp(prefix="skylens-bench-"))
    try:
        yield url, scratch
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


@contextlib.contextmanager
def bench_server(
    data_dir: Path,
    database_url: str,
    backend: str,
    extra_args: tuple[str, ...] = (),
    workers: int = 1,
) -> Iterator[RunningServer]:
    """The test harness's real server, with one worker (or `workers`) and quiet logs."""
    with skylens_server(
        data_dir,
        database_url,
        backend,
        extra_env={"SKYLENS_SERVER_LOG_LEVEL": "warning"},
        extra_args=("--workers", str(workers), *extra_args),
    ) as server:
        yield server


@dataclasses.dataclass(frozen=True)
class Memory:
    rss_mib: float  # VmRSS: what `ps` and the targets mean by RSS
    anon_mib: float  # RssAnon: the process's own memory, without mapped files


def memory(pid: int) -> Memory:
    """A process's resident memory, from /proc/<pid>/status."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "RssAnon"):
            fields[name] = int(value.split()[0]) / 1024
    return Memory(rss_mib=fields["VmRSS"], anon_mib=fields["RssAnon"])
