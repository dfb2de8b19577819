"""Fresh databases and one real `skylens serve` process to measure.

Mirrors tests/support/servers.py, plus what a benchmark needs on top: the
worker's pid (uvicorn with workers=1 serves from the process it was started as)
so that its memory can be read from /proc.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import psycopg
import sqlalchemy as sa

POSTGRES_URL = os.environ.get("SKYLENS_BENCH_POSTGRES_URL", "postgresql://127.0.0.1:5432/test")


@dataclasses.dataclass(frozen=True)
class RunningServer:
    url: str
    host: str
    port: int
    pid: int
    log: Path


@contextlib.contextmanager
def fresh_database(backend: str, name: str = "skylens_bench") -> Iterator[tuple[str, Path]]:
    """(database URL, scratch directory) for an empty database; removed afterwards."""
    scratch = Path(tempfile.mkdtemp(prefix="skylens-bench-"))
    try:
        if backend == "sqlite":
            yield f"sqlite:///{scratch / 'skylens.db'}", scratch
        else:
            with _postgres_database(name) as url:
                yield url, scratch
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


@contextlib.contextmanager
def _postgres_database(name: str) -> Iterator[str]:
    admin = sa.make_url(POSTGRES_URL)

    def run(sql: str) -> None:
        with psycopg.connect(
            host=admin.host,
            port=admin.port,
            dbname=admin.database,
            user=admin.username,
            password=admin.password,
            autocommit=True,
        ) as connection:
            connection.execute(sql.encode())

    run(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    run(f'CREATE DATABASE "{name}"')
    try:
        yield admin.set(database=name).render_as_string(hide_password=False)
    finally:
        run(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextlib.contextmanager
def skylens_server(data_dir: Path, database_url: str) -> Iterator[RunningServer]:
    """`skylens serve` with one worker and no access log, until the block ends."""
    port = _free_port()
    log = data_dir / "server.log"
    env = {key: value for key, value in os.environ.items() if not key.startswith("SKYLENS_")}
    env.update({"SKYLENS_SERVER_ACCESS_LOG": "false", "SKYLENS_SERVER_LOG_LEVEL": "warning"})
    command = [
        sys.executable,
        "-m",
        "skylens.cli.main",
        "serve",
        "--port",
        str(port),
        "--workers",
        "1",
        "--data-dir",
        str(data_dir),
        "--database-url",
        database_url,
    ]
    with open(log, "wb") as log_file:
        process = subprocess.Popen(command, stdout=log_file, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_healthy(url, process, log)
        yield RunningServer(url=url, host="127.0.0.1", port=port, pid=process.pid, log=log)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_until_healthy(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"skylens exited with {process.returncode}:\n{log.read_text()}")
        with (
            contextlib.suppress(OSError),
            urllib.request.urlopen(f"{url}/healthcheck", timeout=1) as response,  # noqa: S310
        ):
            if response.status == 200:
                return
        time.sleep(0.1)
    raise RuntimeError(f"skylens did not become healthy:\n{log.read_text()}")


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
