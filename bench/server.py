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

from tests.support.servers import RunningServer, postgres_database, skylens_server

__all__ = ["Memory", "RunningServer", "bench_server", "fresh_database", "memory"]


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
def bench_server(
    data_dir: Path, database_url: str, backend: str, extra_args: tuple[str, ...] = ()
) -> Iterator[RunningServer]:
    """The test harness's real server, with one worker and quiet logs."""
    with skylens_server(
        data_dir,
        database_url,
        backend,
        extra_env={"SKYLENS_SERVER_LOG_LEVEL": "warning"},
        extra_args=("--workers", "1", *extra_args),
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
