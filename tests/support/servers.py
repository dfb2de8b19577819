"""Start real Skylens servers (uvicorn subprocesses) and databases for tests."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import socket
import sqlite3
import subprocess
import sys
import time
import tomllib
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import sqlalchemy as sa

from tests.support.swift import RunningSwift

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


def postgres_admin() -> psycopg.Connection[Any]:
    """An autocommit connection to the maintenance database of the test PostgreSQL
    server (`SKYLENS_TEST_POSTGRES_URL`), to create and drop databases."""
    admin = sa.make_url(POSTGRES_URL)
    return psycopg.connect(
        host=admin.host,
        port=admin.port,
        dbname=admin.database,
        user=admin.username,
        autocommit=True,
    )


@contextlib.contextmanager
def postgres_database(name: str) -> Iterator[str]:
    """A fresh, empty PostgreSQL database; dropped afterwards."""
    with postgres_admin() as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        connection.execute(f'CREATE DATABASE "{name}"')
    try:
        yield sa.make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        with postgres_admin() as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextlib.contextmanager
def dedicated_server(
    data_dir: Path,
    backend: str,
    extra_env: dict[str, str] | None = None,
    extra_args: tuple[str, ...] = (),
) -> Iterator[RunningServer]:
    """A server of a test's own on `backend`: an SQLite file in `data_dir`, or a fresh
    PostgreSQL database dropped afterwards."""
    with contextlib.ExitStack() as stack:
        if backend == "sqlite":
            url = f"sqlite:///{data_dir / 'skylens.db'}"
        else:
            url = stack.enter_context(postgres_database(f"skylens_own_{uuid.uuid4().hex[:12]}"))
        yield stack.enter_context(
            skylens_server(data_dir, url, backend, extra_env=extra_env, extra_args=extra_args)
        )


@contextlib.contextmanager
def database_held(server: RunningServer, lock: str, *values: object) -> Iterator[None]:
    """While the block runs, every write waits: on SQLite for the database's write
    lock; on PostgreSQL, what `lock` (with `values`) locks waits for its release."""
    url = sa.make_url(server.database_url)
    if url.get_backend_name() == "sqlite":
        writer = sqlite3.connect(str(url.database), isolation_level=None)
        try:
            writer.execute("BEGIN IMMEDIATE")
            yield
        finally:
            writer.execute("ROLLBACK")
            writer.close()
        return
    with psycopg.connect(
        host=url.host, port=url.port, dbname=url.database, user=url.username
    ) as locker:
        locker.execute(lock, values)
        try:
            yield
        finally:
            locker.rollback()


# The default file store, in the server's data directory.
LOCAL_STORE: dict[str, object] = {"kind": "file", "description": "Local disk", "weight": 0}


def stores_config(swift: RunningSwift, data_dir: Path, **storage: object) -> Path:
    """A config file with three stores: `local` (file, the default), and `swift` and `s3`
    in fresh containers of the real Swift server (one through its Swift API, one through
    s3api); `storage` adds [storage] options."""
    suffix = uuid.uuid4().hex[:12]
    stores: dict[str, dict[str, object]] = {
        "local": LOCAL_STORE,
        "swift": {
            "kind": "swift",
            "description": "Swift on loopback",
            "weight": 10,
            "auth_url": swift.auth_url,
            "user": swift.user,
            "key": swift.key,
            "container": f"swift-images-{suffix}",
            "create_container": True,
            "segment_size": 5 << 20,
        },
        "s3": {
            "kind": "s3",
            "weight": 5,
            "endpoint_url": swift.s3_endpoint,
            "region": swift.region,
            "access_key": swift.s3_access_key,
            "secret_key": swift.s3_secret_key,
            "bucket": f"s3-images-{suffix}",
            "path_style": True,
            "create_bucket": True,
            "part_size": 5 << 20,
        },
    }
    return _write_config(data_dir, stores, storage)


def file_stores_config(data_dir: Path) -> Path:
    """A config file with two file stores under `data_dir`: `local` (the default) and
    `cheap`. The shared servers' stores: no test of theirs needs Swift."""
    cheap = {
        "kind": "file",
        "description": "Cheap disk",
        "weight": 5,
        "root": str(data_dir / "cheap"),
    }
    return _write_config(data_dir, {"local": LOCAL_STORE, "cheap": cheap}, {})


def _write_config(
    data_dir: Path, stores: dict[str, dict[str, object]], storage: dict[str, object]
) -> Path:
    lines = ["[storage]", *(f"{key} = {json.dumps(value)}" for key, value in storage.items())]
    for name, options in stores.items():
        lines += ["", f"[stores.{name}]"]
        lines += [f"{key} = {json.dumps(value)}" for key, value in options.items()]
    path = data_dir / "stores.toml"
    data_dir.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return path


def configured_stores(server: RunningServer) -> dict[str, dict[str, Any]]:
    """The `[stores.*]` tables `stores_config` wrote for this server."""
    with open(server.log.parent / "stores.toml", "rb") as handle:
        stores: dict[str, dict[str, Any]] = tomllib.load(handle)["stores"]
    return stores


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


@contextlib.contextmanager
def database_away(server: RunningServer) -> Iterator[None]:
    """No connection to the server's database is possible until the block ends; the
    ones it holds are closed by the server side."""
    name = sa.make_url(server.database_url).database
    admin = sa.make_url(POSTGRES_URL)
    with psycopg.connect(
        host=admin.host, port=admin.port, dbname=admin.database, user=admin.username
    ) as connection:
        connection.autocommit = True
        connection.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
        connection.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
            (name,),
        )
        try:
            yield
        finally:
            connection.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
