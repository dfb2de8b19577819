"""Imports across server processes sharing one PostgreSQL database: staging on one
server and importing through another, and a server killed (kill -9) mid-import
whose task another server takes over, so that the image never stays `importing`.

The servers have data directories of their own and share the stores: a file store
for images and one for staging, on a directory both see (as a shared filesystem
would be; an S3 or Swift staging store does the same across hosts).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa

from skylens.db.tables import tasks
from tests.support.imports import settled
from tests.support.servers import RunningServer, postgres_database, skylens_server

OCTET = {"Content-Type": "application/octet-stream"}
MEMBER = {"X-Project-Id": "importers", "X-User-Id": "importer", "X-Roles": "reader,member"}
CHUNK = 8 << 20


def shared_config(shared: Path, server: str, concurrency: int) -> Path:
    """A server's config: the shared stores, short task leases (a dead server's task
    is taken over within seconds)."""
    lines = [
        "[storage]",
        'default_store = "local"',
        'staging_store = "staging"',
        "[tasks]",
        "lease_seconds = 2",
        "poll_seconds = 1",
        f"concurrency = {concurrency}",
    ]
    for name in ("local", "staging"):
        lines += [f"[stores.{name}]", 'kind = "file"', f"root = {json.dumps(str(shared / name))}"]
    path = shared / f"{server}.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


@contextlib.contextmanager
def server_on(shared: Path, url: str, name: str, concurrency: int) -> Iterator[RunningServer]:
    config = shared_config(shared, name, concurrency)
    with skylens_server(
        shared / name, url, "postgresql", extra_args=("--config", str(config))
    ) as server:
        yield server


def chunks(size: int) -> Iterator[bytes]:
    """`size` bytes that are not all alike (so a lost block would show)."""
    for index in range(0, size, CHUNK):
        yield (index // CHUNK).to_bytes(8, "big") * (min(CHUNK, size - index) // 8)


def md5_of(size: int) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    for chunk in chunks(size):
        digest.update(chunk)
    return digest.hexdigest()


def new_staged_image(api: httpx.Client, size: int) -> str:
    body = {"name": "across", "disk_format": "raw", "container_format": "bare"}
    image_id: str = api.post("/v2/images", json=body).json()["id"]
    response = api.put(f"/v2/images/{image_id}/stage", content=chunks(size), headers=OCTET)
    assert response.status_code == 204, response.text
    return image_id


def task_row(url: str, image_id: str) -> Any:
    engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    try:
        with engine.connect() as connection:
            return connection.execute(
                sa.select(tasks.c.status, tasks.c.attempts).where(tasks.c.image_id == image_id)
            ).one()
    finally:
        engine.dispose()


def test_stage_through_one_server_and_import_through_another(tmp_path: Path) -> None:
    size = 3 * CHUNK + 5
    with (
        postgres_database(f"skylens_import_{os.getpid()}_two") as url,
        server_on(tmp_path, url, "stager", concurrency=0) as stager,
        server_on(tmp_path, url, "importer", concurrency=1) as importer,
        httpx.Client(base_url=stager.url, headers=MEMBER, timeout=60) as first,
        httpx.Client(base_url=importer.url, headers=MEMBER, timeout=60) as second,
    ):
        image_id = new_staged_image(first, size)

        response = second.post(
            f"/v2/images/{image_id}/import", json={"method": {"name": "glance-direct"}}
        )

        assert response.status_code == 202
        image = settled(first, image_id)
        assert (image["status"], image["checksum"]) == ("active", md5_of(size))
        assert task_row(url, image_id) == ("success", 1)
        assert b"".join(first.get(f"/v2/images/{image_id}/file").iter_bytes()) == b"".join(
            chunks(size)
        )


def test_a_server_killed_mid_import_leaves_its_task_to_another(tmp_path: Path) -> None:
    size = 512 << 20  # long enough to be caught mid-way
    with postgres_database(f"skylens_import_{os.getpid()}_kill") as url:
        with (
            server_on(tmp_path, url, "doomed", concurrency=1) as doomed,
            httpx.Client(base_url=doomed.url, headers=MEMBER, timeout=120) as api,
        ):
            image_id = new_staged_image(api, size)
            response = api.post(
                f"/v2/images/{image_id}/import", json={"method": {"name": "glance-direct"}}
            )
            assert response.status_code == 202
            deadline = time.monotonic() + 60
            while task_row(url, image_id).status != "processing":
                assert time.monotonic() < deadline, "the import never started"
                time.sleep(0.01)
            os.kill(doomed.pid, signal.SIGSTOP)  # frozen: it cannot finish meanwhile
            assert task_row(url, image_id).status == "processing"
            os.kill(doomed.pid, signal.SIGKILL)

        with (
            server_on(tmp_path, url, "survivor", concurrency=1) as survivor,
            httpx.Client(base_url=survivor.url, headers=MEMBER, timeout=120) as api,
        ):
            image = settled(api, image_id, timeout=300)

            assert (image["status"], image["checksum"]) == ("active", md5_of(size))
            assert image["stores"] == "local"
            assert task_row(url, image_id) == ("success", 2)  # taken over, run again
            assert not list((tmp_path / "staging").rglob(f"*{image_id}*"))
