"""A location import (`POST /v2/images/{id}/locations` with `do_secure_hash`) whose
server is killed (kill -9) while it reads the location's data: the task is durable,
so another server sharing the PostgreSQL database takes it over once the lease lapses
and runs it again from the start, and the image ends active with the right hashes,
never stuck queued and locked."""

from __future__ import annotations

import contextlib
import hashlib
import os
import random
import signal
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx

from tests.api.image_v2.test_import_servers import task_row
from tests.support.imports import settled
from tests.support.locations import LOCATION_OPTIONS
from tests.support.servers import RunningServer, postgres_database, skylens_server
from tests.support.web_download import web_download_config
from tests.support.web_source import WebSource

MEMBER = {"X-Project-Id": "locators", "X-User-Id": "locator", "X-Roles": "reader,member"}
SIZE = 256 << 20  # long enough to be caught mid-read


@contextlib.contextmanager
def server_on(tmp: Path, url: str, name: str, files: WebSource) -> Iterator[RunningServer]:
    data_dir = tmp / name
    config = web_download_config(data_dir, files.port)
    lines = [*LOCATION_OPTIONS, "", "[tasks]", "lease_seconds = 2", "poll_seconds = 1"]
    config.write_text(config.read_text() + "\n".join(lines) + "\n")
    with skylens_server(
        data_dir, url, "postgresql", extra_args=("--config", str(config))
    ) as server:
        yield server


def test_a_server_killed_mid_hash_leaves_its_location_task_to_another(
    tmp_path: Path, web_files: WebSource
) -> None:
    data = random.Random(5).randbytes(1 << 20) * (SIZE >> 20)
    name = f"{uuid.uuid4().hex}.img"
    web_files.files[name] = data
    location = web_files.url(f"/files/{name}")
    validation = {"os_hash_algo": "sha512", "os_hash_value": hashlib.sha512(data).hexdigest()}
    with postgres_database(f"skylens_locations_{os.getpid()}_kill") as url:
        with (
            server_on(tmp_path, url, "doomed", web_files) as doomed,
            httpx.Client(base_url=doomed.url, headers=MEMBER, timeout=120) as api,
        ):
            body = {"name": "located", "disk_format": "raw", "container_format": "bare"}
            image_id = api.post("/v2/images", json=body).json()["id"]
            response = api.post(
                f"/v2/images/{image_id}/locations",
                json={"url": location, "validation_data": validation},
            )
            assert response.status_code == 202
            deadline = time.monotonic() + 60
            while task_row(url, image_id).status != "processing":
                assert time.monotonic() < deadline, "the location import never started"
                time.sleep(0.01)
            os.kill(doomed.pid, signal.SIGSTOP)  # frozen: it cannot finish meanwhile
            assert task_row(url, image_id).status == "processing"
            os.kill(doomed.pid, signal.SIGKILL)

        with (
            server_on(tmp_path, url, "survivor", web_files) as survivor,
            httpx.Client(base_url=survivor.url, headers=MEMBER, timeout=120) as api,
        ):
            image = settled(api, image_id, timeout=300)

            assert image["status"] == "active"
            assert image["os_hash_value"] == validation["os_hash_value"]
            assert image["checksum"] == hashlib.md5(data, usedforsecurity=False).hexdigest()
            assert image["size"] == SIZE
            assert image["locations"] == [{"url": location, "metadata": {"store": "web"}}]
            assert task_row(url, image_id) == ("success", 2)  # taken over, run again
    del web_files.files[name]
