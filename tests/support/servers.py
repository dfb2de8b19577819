"""Start real Skylens servers (uvicorn subprocesses) and databases for tests."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import sqlalchemy as sa

POSTGRES_URL = os.environ.get("SKYLENS_TEST_POSTGRES_URL", "postgresql://127.0.0.1:5432/test")


@dataclasses.dataclass(frozen=True)
class RunningServer:
    url: str
    port: int
    pid: int  # uvicorn with one worker serves from this very process
    backend: str
    database_url: str
    log: Path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextlib.contextmanager
def postgres_database(name: str) -> Iterator[str]:
    """A fresh, empty PostgreSQL database; dropped afterwards."""
    admin = sa.make_url(POSTGRES_URL)
    with psycopg.connect(
        host=admin.host,
        port=admin.port,
        dbname=admin.database,
        user=admin.username,
        autocommit=True,
    ) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        connection.execute(f'CREATE DATABASE "{name}"')
    try:
        yield admin.set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(
            host=admin.host,
            port=admin.port,
            dbname=admin.database,
            user=admin.username,
            autocommit=True,
        ) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextlib.contextmanager
def skylens_server(
    data_dir: Path,
    database_url: str,
    backend: str,
    extra_env: dict[str, str] | None = None,
    extra_args: tuple[str, ...] = (),
) -> Iterator[RunningServer]:
    """Run `skylens serve` on a free loopback port until the block ends."""
    port = free_port()
    data_dir.mkdir(parents=True, exist_ok=True)
    log = data_dir / "server.log"
    env = {key: value for key, value in os.environ.items() if not key.startswith("SKYLENS_")}
    env.update({"SKYLENS_SERVER_ACCESS_LOG": "false", **(extra_env or {})})
    command = [
        sys.executable,
        "-m",
        "skylens.cli.main",
        "serve",
        "--port",
        str(port),
        "--data-dir",
        str(data_dir),
        "--database-url",
        database_url,
        *extra_args,
    ]
    with open(log, "wb") as log_file:
        process = subprocess.Popen(command, stdout=log_file, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_healthy(url, process, log)
        yield RunningServer(
            url=url,
            port=port,
            pid=process.pid,
            backend=backend,
            database_url=database_url,
            log=log,
        )
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
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{url}/healthcheck", timeout=1).status_code == 200:
                return
        time.sleep(0.1)
    raise RuntimeError(f"skylens did not become healthy:\n{log.read_text()}")
