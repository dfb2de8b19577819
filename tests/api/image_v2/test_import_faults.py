"""Imports that go wrong, through real servers: a server killed (kill -9) while a
client stages, while a web-download streams from a slow source or while copy-image
runs, a target store that fails in a multi-store import (a full disk), and staging
in an object store shared by two servers.

Whatever happens, no image stays `uploading` or `importing` for ever, an active
image keeps the data it had, and no staged or partial bytes stay once a sweep ran.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from skylens.db.tables import tasks
from skylens.storage.registry import build_store
from tests.support.identities import admin_of, member_of, new_project
from tests.support.imports import settled, tmpfs
from tests.support.servers import RunningServer, postgres_database, skylens_server
from tests.support.swift import RunningSwift
from tests.support.web_source import WebSource, web_source

MIB = 1 << 20
GRACE = 1  # seconds an unfinished write must be idle before a sweep removes it
OCTET = {"Content-Type": "application/octet-stream"}
STAGING_LINE = (
    "store os_glance_staging_store: ok; removed {} unfinished upload(s), {} orphaned blob(s)"
)


def write_config(path: Path, stores: dict[str, dict[str, Any]], **sections: dict[str, Any]) -> Path:
    lines: list[str] = []
    for section, options in sections.items():
        lines += [
            f"[{section}]",
            *(f"{key} = {json.dumps(value)}" for key, value in options.items()),
        ]
    for name, options in stores.items():
        lines += [
            f"[stores.{name}]",
            *(f"{key} = {json.dumps(value)}" for key, value in options.items()),
        ]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return path


def file_store(root: Path, **options: Any) -> dict[str, Any]:
    return {"kind": "file", "root": str(root), **options}


def run_sweep(config: Path, data_dir: Path, url: str) -> list[str]:
    """`skylens sweep`, as cron runs it; its report lines."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("SKYLENS_")}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "skylens.cli.main",
            "sweep",
            "--config",
            str(config),
            "--data-dir",
            str(data_dir),
            "--database-url",
            url,
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


def new_image(api: httpx.Client) -> str:
    body = {"name": "faulty", "disk_format": "raw", "container_format": "bare"}
    response = api.post("/v2/images", json=body)
    assert response.status_code == 201, response.text
    image_id: str = response.json()["id"]
    return image_id


def wait_for(condition: Any, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.05)


def files_under(root: Path) -> list[Path]:
    return [path for path in root.rglob("*") if path.is_file()] if root.exists() else []


def task_row(url: str, image_id: str) -> Any:
    engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    try:
        with engine.connect() as connection:
            return connection.execute(
                sa.select(tasks.c.status, tasks.c.attempts, tasks.c.message)
                .where(tasks.c.image_id == image_id)
                .order_by(tasks.c.created_at.desc())
            ).first()
    finally:
        engine.dispose()


def kill(server: RunningServer) -> None:
    os.kill(server.pid, signal.SIGKILL)
    with contextlib.suppress(ChildProcessError):
        os.waitpid(server.pid, 0)


# -- kill -9 during stage ---------------------------------------------------------------


@contextlib.contextmanager
def unfinished_stage(
    server: RunningServer, headers: dict[str, str], image_id: str, sent: int
) -> Iterator[socket.socket]:
    """A PUT /stage announcing 64 MiB that has sent only `sent` bytes so far."""
    head = (
        f"PUT /v2/images/{image_id}/stage HTTP/1.1\r\n"
        f"Host: 127.0.0.1:{server.port}\r\n"
        "Content-Type: application/octet-stream\r\n"
        f"Content-Length: {64 * MIB}\r\n"
        + "".join(f"{name}: {value}\r\n" for name, value in headers.items())
        + "\r\n"
    )
    connection = socket.create_connection(("127.0.0.1", server.port))
    try:
        connection.sendall(head.encode())
        connection.sendall(os.urandom(sent))
        yield connection
    finally:
        connection.close()


def test_a_server_killed_mid_stage_leaves_a_queued_image_and_nothing_staged(
    tmp_path: Path,
) -> None:
    config = write_config(
        tmp_path / "skylens.toml",
        {"local": {"kind": "file"}},
        storage={"sweep_grace_seconds": GRACE, "sweep_interval_seconds": -1},
    )
    url = f"sqlite:///{tmp_path / 'skylens.db'}"
    headers = member_of(new_project()).headers
    staging = tmp_path / "staging"
    args = ("--config", str(config))
    with skylens_server(tmp_path, url, "sqlite", extra_args=args) as server:
        api = httpx.Client(base_url=server.url, headers=headers, timeout=60)
        image_id = new_image(api)
        with unfinished_stage(server, headers, image_id, sent=12 * MIB):
            wait_for(lambda: api.get(f"/v2/images/{image_id}").json()["status"] == "uploading")
            wait_for(lambda: bool(files_under(staging)))
            kill(server)
        api.close()

    assert files_under(staging)  # the killed process cleaned nothing
    time.sleep(GRACE + 1.5)  # the stage's lease lapses; its partial write ages

    swept = run_sweep(config, tmp_path, url)

    assert swept[0] == "uploads: ok; 1 abandoned upload(s) back to queued"
    assert swept[-1] == STAGING_LINE.format(1, 0)
    assert files_under(staging) == []
    with (
        skylens_server(tmp_path, url, "sqlite", extra_args=args) as server,
        httpx.Client(base_url=server.url, headers=headers, timeout=60) as api,
    ):
        image = api.get(f"/v2/images/{image_id}").json()
        assert (image["status"], image["size"]) == ("queued", None)
        again = api.put(f"/v2/images/{image_id}/stage", content=b"staged again", headers=OCTET)
        assert again.status_code == 204, again.text
        started = api.post(
            f"/v2/images/{image_id}/import", json={"method": {"name": "glance-direct"}}
        )
        assert started.status_code == 202, started.text
        assert settled(api, image_id)["status"] == "active"
        assert files_under(staging) == []


# -- kill -9 during copy-image ----------------------------------------------------------


def test_a_server_killed_mid_copy_image_keeps_the_image_active_and_leaves_no_partial_copy(
    tmp_path: Path,
) -> None:
    cheap = tmp_path / "cheap"
    config = write_config(
        tmp_path / "skylens.toml",
        {"local": {"kind": "file"}, "cheap": file_store(cheap)},
        storage={"sweep_grace_seconds": GRACE, "sweep_interval_seconds": -1},
        tasks={"lease_seconds": 2, "poll_seconds": 1, "concurrency": 1},
    )
    url = f"sqlite:///{tmp_path / 'skylens.db'}"
    headers = admin_of(new_project()).headers  # copy-image is for admins
    args = ("--config", str(config))
    size = 256 * MIB  # long enough to be caught mid-way
    digest = hashlib.md5(usedforsecurity=False)
    chunk = os.urandom(MIB)
    for _ in range(size // MIB):
        digest.update(chunk)
    with (
        skylens_server(tmp_path, url, "sqlite", extra_args=args) as server,
        httpx.Client(base_url=server.url, headers=headers, timeout=300) as api,
    ):
        image_id = new_image(api)
        uploaded = api.put(
            f"/v2/images/{image_id}/file",
            content=(chunk for _ in range(size // MIB)),
            headers=OCTET,
        )
        assert uploaded.status_code == 204, uploaded.text
        started = api.post(
            f"/v2/images/{image_id}/import",
            json={"method": {"name": "copy-image"}, "stores": ["cheap"]},
        )
        assert started.status_code == 202, started.text
        wait_for(lambda: (task_row(url, image_id) or ("",))[0] == "processing", 60)
        os.kill(server.pid, signal.SIGSTOP)  # frozen: it cannot finish meanwhile
        assert task_row(url, image_id).status == "processing"
        kill(server)
    assert files_under(cheap / ".partial")  # a partial copy, left by the dead process
    time.sleep(GRACE + 1.5)

    # The partial copy is no one's: the sweep removes it.
    assert "store cheap: ok; removed 1 unfinished upload(s), 0 orphaned blob(s)" in (
        run_sweep(config, tmp_path, url)
    )
    with (
        skylens_server(tmp_path, url, "sqlite", extra_args=args) as server,
        httpx.Client(base_url=server.url, headers=headers, timeout=300) as api,
    ):
        image = settled(api, image_id)

        # Taken over after the lease lapsed and run again from its start. The task row
        # records the end just after the image does (two transactions): wait for it.
        wait_for(lambda: (task_row(url, image_id) or ("",))[0] != "processing", 60)
        assert task_row(url, image_id)[:2] == ("success", 2)
        assert (image["status"], image["checksum"]) == ("active", digest.hexdigest())
        assert image["stores"] == "local,cheap"
        assert files_under(cheap / ".partial") == []
        assert [path.name for path in files_under(cheap)] == [image_id]


# -- kill -9 during web-download --------------------------------------------------------


def web_download_config(root: Path, source: WebSource) -> Path:
    """Stores under `root` (shared by every server of the test), web-download allowed
    from the loopback `source` and patient with it, short task leases."""
    return write_config(
        root / "skylens.toml",
        {"local": file_store(root / "local")},
        storage={"sweep_grace_seconds": GRACE, "sweep_interval_seconds": -1},
        tasks={"lease_seconds": 2, "poll_seconds": 1, "concurrency": 1},
        import_filtering={"allowed_hosts": ["127.0.0.1"], "allowed_ports": [source.port]},
        web_download={"read_timeout_seconds": 120},
    )


@contextlib.contextmanager
def killed_mid_web_download(
    root: Path, url: str, backend: str, source: WebSource, name: str, headers: dict[str, str]
) -> Iterator[str]:
    """A server that took a web-download of `name` from `source`, which hangs half-way
    through the first request, killed (kill -9) mid-transfer; the image's id."""
    config = web_download_config(root, source)
    uri = source.url(f"/files/{name}?stall_first={len(source.files[name]) // 2}")
    with (
        skylens_server(
            root / "doomed", url, backend, extra_args=("--config", str(config))
        ) as doomed,
        httpx.Client(base_url=doomed.url, headers=headers, timeout=60) as api,
    ):
        image_id = new_image(api)
        started = api.post(
            f"/v2/images/{image_id}/import", json={"method": {"name": "web-download", "uri": uri}}
        )
        assert started.status_code == 202, started.text
        wait_for(lambda: (task_row(url, image_id) or ("",))[0] == "processing", 60)
        wait_for(lambda: sum(path.stat().st_size for path in files_under(root / "local")) > 0)
        assert api.get(f"/v2/images/{image_id}").json()["status"] == "importing"
        os.kill(doomed.pid, signal.SIGSTOP)  # frozen mid-transfer: it cannot finish meanwhile
        assert task_row(url, image_id).status == "processing"
        kill(doomed)
    yield image_id


def survivor(root: Path, url: str, backend: str, name: str) -> Any:
    config = root / "skylens.toml"
    return skylens_server(root / name, url, backend, extra_args=("--config", str(config)))


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_a_server_killed_mid_web_download_has_its_task_run_again_by_the_next(
    tmp_path: Path, backend: str
) -> None:
    """kill -9 while the source sends: the partial write is left (the sweep's), and the
    next server (a restart on SQLite, a second process sharing PostgreSQL) takes the
    task over when its lease lapses and downloads the image again from its start."""
    data = os.urandom(48 * MIB)
    with (
        web_source() as source,
        contextlib.ExitStack() as stack,
    ):
        if backend == "sqlite":
            url = f"sqlite:///{tmp_path / 'skylens.db'}"
        else:
            url = stack.enter_context(postgres_database(f"skylens_wd_kill_{uuid.uuid4().hex[:8]}"))
        name = f"{uuid.uuid4().hex}.img"
        source.files[name] = data
        headers = member_of(new_project()).headers
        with killed_mid_web_download(tmp_path, url, backend, source, name, headers) as image_id:
            assert files_under(tmp_path / "local" / ".partial")  # left by the dead process
            time.sleep(GRACE + 1.5)

            assert "store local: ok; removed 1 unfinished upload(s), 0 orphaned blob(s)" in (
                run_sweep(tmp_path / "skylens.toml", tmp_path / "sweeper", url)
            )
            assert files_under(tmp_path / "local" / ".partial") == []
            with (
                survivor(
                    tmp_path, url, backend, "doomed" if backend == "sqlite" else "next"
                ) as server,
                httpx.Client(base_url=server.url, headers=headers, timeout=60) as api,
            ):
                image = settled(api, image_id)
                wait_for(lambda: (task_row(url, image_id) or ("",))[0] != "processing", 60)

                assert task_row(url, image_id)[:2] == ("success", 2)  # taken over, run again
                assert (image["status"], image["stores"]) == ("active", "local")
                assert image["checksum"] == hashlib.md5(data, usedforsecurity=False).hexdigest()
                assert image["os_hash_value"] == hashlib.sha512(data).hexdigest()
                assert api.get(f"/v2/images/{image_id}/file").content == data
        assert [path.name for path in files_under(tmp_path / "local")] == [image_id]
        ranges = [seen.range for seen in source.requests if name in seen.path]
        assert ranges == [None, None]  # the whole file again, not a resumption
        assert files_under(tmp_path / "doomed" / "staging") == []


def test_a_web_download_killed_mid_transfer_whose_source_is_gone_fails_cleanly(
    tmp_path: Path,
) -> None:
    """The same, but the file is gone when the task is taken over: the task fails, the
    image goes back to queued with the store listed as failed, and nothing is left."""
    url = f"sqlite:///{tmp_path / 'skylens.db'}"
    headers = member_of(new_project()).headers
    with web_source() as source:
        name = f"{uuid.uuid4().hex}.img"
        source.files[name] = os.urandom(48 * MIB)
        with killed_mid_web_download(tmp_path, url, "sqlite", source, name, headers) as image_id:
            del source.files[name]
            time.sleep(GRACE + 1.5)
            with (
                survivor(tmp_path, url, "sqlite", "doomed") as server,
                httpx.Client(base_url=server.url, headers=headers, timeout=60) as api,
            ):
                image = settled(api, image_id)
                wait_for(lambda: (task_row(url, image_id) or ("",))[0] != "processing", 60)
            swept = run_sweep(tmp_path / "skylens.toml", tmp_path / "sweeper", url)

    status, attempts, message = task_row(url, image_id)
    assert (status, attempts) == ("failure", 2)
    uri = source.url(f"/files/{name}?stall_first={24 * MIB}")
    assert message == f"Error: Could not fetch {uri}: the server answered 404"
    assert (image["status"], image["size"], image["checksum"]) == ("queued", None, None)
    assert (image["os_glance_failed_import"], image["os_glance_importing_to_stores"]) == (
        "local",
        "",
    )
    assert "store local: ok; removed 1 unfinished upload(s), 0 orphaned blob(s)" in swept
    assert files_under(tmp_path / "local") == []


# -- a target store failing in a multi-store import --------------------------------------


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    """A 1 MiB filesystem of its own."""
    with tmpfs(tmp_path / "tiny", "1m") as root:
        yield root


@pytest.fixture
def tiny_server(tmp_path: Path, tiny_disk: Path) -> Iterator[RunningServer]:
    config = write_config(
        tmp_path / "skylens.toml",
        {"local": {"kind": "file"}, "tiny": file_store(tiny_disk)},
        tasks={"poll_seconds": 1},
    )
    url = f"sqlite:///{tmp_path / 'skylens.db'}"
    with skylens_server(tmp_path, url, "sqlite", extra_args=("--config", str(config))) as server:
        yield server


def stage_and_import(api: httpx.Client, data: bytes, must_succeed: bool) -> dict[str, Any]:
    image_id = new_image(api)
    staged = api.put(f"/v2/images/{image_id}/stage", content=data, headers=OCTET)
    assert staged.status_code == 204, staged.text
    started = api.post(
        f"/v2/images/{image_id}/import",
        json={
            "method": {"name": "glance-direct"},
            "stores": ["local", "tiny"],
            "all_stores_must_succeed": must_succeed,
        },
    )
    assert started.status_code == 202, started.text
    return settled(api, image_id)


def test_a_failing_store_fails_an_import_that_all_stores_must_succeed(
    tiny_server: RunningServer, tiny_disk: Path, tmp_path: Path
) -> None:
    with httpx.Client(
        base_url=tiny_server.url, headers=member_of(new_project()).headers, timeout=60
    ) as api:
        image = stage_and_import(api, os.urandom(3 * MIB), must_succeed=True)

        assert (image["status"], image["size"]) == ("queued", None)
        assert "stores" not in image
        assert "tiny" in image["os_glance_failed_import"].split(",")
        assert image["os_glance_importing_to_stores"] == ""
        [task] = api.get(f"/v2/images/{image['id']}/tasks").json()["tasks"]
        assert task["status"] == "failure"
        # Nothing committed anywhere, nothing partial, nothing staged.
        assert files_under(tiny_disk) == []
        assert files_under(tmp_path / "images") == []
        assert files_under(tmp_path / "staging") == []


def test_a_failing_store_is_listed_when_the_others_may_succeed_without_it(
    tiny_server: RunningServer, tiny_disk: Path, tmp_path: Path
) -> None:
    data = os.urandom(3 * MIB)
    with httpx.Client(
        base_url=tiny_server.url, headers=member_of(new_project()).headers, timeout=60
    ) as api:
        image = stage_and_import(api, data, must_succeed=False)

        assert (image["status"], image["stores"]) == ("active", "local")
        assert image["checksum"] == hashlib.md5(data, usedforsecurity=False).hexdigest()
        assert image["os_glance_failed_import"] == "tiny"
        assert image["os_glance_importing_to_stores"] == ""
        assert api.get(f"/v2/images/{image['id']}/file").content == data
        assert files_under(tiny_disk) == []
        assert files_under(tmp_path / "staging") == []


# -- staging in an object store, shared by two servers ------------------------------------


@pytest.mark.parametrize("kind", ["swift", "s3"])
def test_stage_through_one_server_and_import_through_another_via_object_store_staging(
    swift: RunningSwift, tmp_path: Path, kind: str
) -> None:
    """Separate data directories, one PostgreSQL database, staging in the test Swift
    (through its Swift or its S3 API) and the image store there too."""
    suffix = uuid.uuid4().hex[:12]
    object_store = {
        "swift": {
            "kind": "swift",
            "auth_url": swift.auth_url,
            "user": swift.user,
            "key": swift.key,
            "create_container": True,
        },
        "s3": {
            "kind": "s3",
            "endpoint_url": swift.s3_endpoint,
            "region": swift.region,
            "access_key": swift.s3_access_key,
            "secret_key": swift.s3_secret_key,
            "path_style": True,
            "create_bucket": True,
        },
    }[kind]
    where = "container" if kind == "swift" else "bucket"
    staging_options = {**object_store, where: f"staging-{suffix}"}
    stores = {"images": {**object_store, where: f"images-{suffix}"}, "stage": staging_options}
    sections = {"storage": {"default_store": "images", "staging_store": "stage"}}
    data = os.urandom(6 * MIB + 7)  # several parts or segments
    with contextlib.ExitStack() as stack:
        url = stack.enter_context(postgres_database(f"skylens_staging_{kind}_{os.getpid()}"))
        servers = {}
        for name, concurrency in (("stager", 0), ("importer", 1)):
            config = write_config(
                tmp_path / name / "skylens.toml",
                stores,
                **sections,
                tasks={"poll_seconds": 1, "concurrency": concurrency},
            )
            servers[name] = stack.enter_context(
                skylens_server(
                    tmp_path / name, url, "postgresql", extra_args=("--config", str(config))
                )
            )
        headers = member_of(new_project()).headers
        first = stack.enter_context(
            httpx.Client(base_url=servers["stager"].url, headers=headers, timeout=60)
        )
        second = stack.enter_context(
            httpx.Client(base_url=servers["importer"].url, headers=headers, timeout=60)
        )
        image_id = new_image(first)
        staged = first.put(f"/v2/images/{image_id}/stage", content=data, headers=OCTET)
        assert staged.status_code == 204, staged.text
        staging = build_store("stage", staging_options).blob
        assert len(list(staging.keys())) == 1

        started = second.post(
            f"/v2/images/{image_id}/import", json={"method": {"name": "glance-direct"}}
        )

        assert started.status_code == 202, started.text
        image = settled(first, image_id)
        assert (image["status"], image["stores"]) == ("active", "images")
        assert image["checksum"] == hashlib.md5(data, usedforsecurity=False).hexdigest()
        assert first.get(f"/v2/images/{image_id}/file").content == data
        assert task_row(url, image_id)[:2] == ("success", 1)
        assert list(staging.keys()) == []
        assert not files_under(tmp_path / "stager" / "staging")
