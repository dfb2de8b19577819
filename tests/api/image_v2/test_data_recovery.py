"""Nothing of a failed upload survives: clients that vanish, servers killed with
SIGKILL, and data no image points to, in every kind of store.

Leftovers are looked for where each store keeps them: the file store's `.partial`
directory, the Swift store's segments container, the S3 bucket's multipart uploads.
"""

from __future__ import annotations

import contextlib
import functools
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.errors import assert_error
from tests.support.identities import Identity, member_of, new_project
from tests.support.imports import tmpfs
from tests.support.servers import RunningServer, skylens_server, stores_config
from tests.support.stores import Leftovers, StoreContents
from tests.support.swift import RunningSwift

STORES = ("local", "swift", "s3")
MIB = 1 << 20


@pytest.fixture
def server(object_store_server: RunningServer) -> RunningServer:
    """The tests here use the `swift` and `s3` stores: servers that have them."""
    return object_store_server


def has_status(server: RunningServer, identity: Identity, image_id: str, status: str) -> bool:
    return status_of(server, identity, image_id) == status


def has_leftovers(leftovers: Leftovers, store: str, expected: bool = True) -> bool:
    return bool(leftovers(store)) is expected


def create_image(server: RunningServer, identity: Identity) -> str:
    body = {"name": "interrupted", "disk_format": "raw", "container_format": "bare"}
    response = httpx.post(f"{server.url}/v2/images", json=body, headers=identity.headers)
    assert response.status_code == 201, response.text
    image_id: str = response.json()["id"]
    return image_id


def status_of(server: RunningServer, identity: Identity, image_id: str) -> str:
    response = httpx.get(f"{server.url}/v2/images/{image_id}", headers=identity.headers)
    status: str = response.json()["status"]
    return status


def wait_for(condition: Callable[[], bool], timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.1)


@contextlib.contextmanager
def unfinished_upload(
    server: RunningServer, identity: Identity, image_id: str, store: str, sent: int
) -> Iterator[socket.socket]:
    """A PUT announcing 64 MiB that has sent only `sent` bytes so far."""
    head = (
        f"PUT /v2/images/{image_id}/file HTTP/1.1\r\n"
        f"Host: 127.0.0.1:{server.port}\r\n"
        "Content-Type: application/octet-stream\r\n"
        f"Content-Length: {64 * MIB}\r\n"
        f"X-Image-Meta-Store: {store}\r\n"
        + "".join(f"{name}: {value}\r\n" for name, value in identity.headers.items())
        + "\r\n"
    )
    connection = socket.create_connection(("127.0.0.1", server.port))
    try:
        connection.sendall(head.encode())
        connection.sendall(os.urandom(sent))
        yield connection
    finally:
        connection.close()


@pytest.mark.parametrize("store", STORES)
def test_a_client_that_disconnects_mid_upload_leaves_the_image_queued_and_no_bytes(
    server: RunningServer, swift: RunningSwift, member: Identity, store: str
) -> None:
    leftovers = Leftovers(server, swift)
    image_id = create_image(server, member)

    with unfinished_upload(server, member, image_id, store, sent=12 * MIB):
        wait_for(lambda: status_of(server, member, image_id) == "saving")
        wait_for(lambda: bool(leftovers(store)))  # parts went out before the client left

    wait_for(lambda: status_of(server, member, image_id) == "queued")
    wait_for(lambda: leftovers(store) == [])
    retry = httpx.put(
        f"{server.url}/v2/images/{image_id}/file",
        content=b"second try",
        headers={**member.headers, "Content-Type": "application/octet-stream"},
    )
    assert retry.status_code == 204


# -- a server killed mid-upload --------------------------------------------------------

GRACE = 1  # seconds an unfinished write must be idle before a sweep removes it


@pytest.fixture
def sweeping_server(
    tmp_path: Path, swift: RunningSwift
) -> Callable[[], contextlib.AbstractContextManager[RunningServer]]:
    """Starts a server (again and again) on one database and one set of stores, whose
    sweep treats a write idle for a second as abandoned."""
    config = stores_config(swift, tmp_path, sweep_grace_seconds=GRACE, sweep_interval_seconds=0)
    url = f"sqlite:///{tmp_path / 'skylens.db'}"

    def start() -> contextlib.AbstractContextManager[RunningServer]:
        return skylens_server(tmp_path, url, "sqlite", extra_args=("--config", str(config)))

    return start


def test_a_server_killed_mid_upload_leaves_no_active_image_and_its_restart_sweeps_the_rest(
    sweeping_server: Callable[[], contextlib.AbstractContextManager[RunningServer]],
    swift: RunningSwift,
) -> None:
    member = member_of(new_project())
    with sweeping_server() as server, contextlib.ExitStack() as uploads:
        leftovers = Leftovers(server, swift)
        image_ids = {store: create_image(server, member) for store in STORES}
        for store, image_id in image_ids.items():
            uploads.enter_context(unfinished_upload(server, member, image_id, store, 12 * MIB))
        for store, image_id in image_ids.items():
            wait_for(functools.partial(has_status, server, member, image_id, "saving"))
            wait_for(functools.partial(has_leftovers, leftovers, store))

        os.kill(server.pid, signal.SIGKILL)
        os.waitpid(server.pid, 0)

    assert all(leftovers(store) for store in STORES)  # the killed process cleaned nothing
    time.sleep(GRACE + 1.5)  # past the grace period, object-store clock slack included
    with sweeping_server() as restarted:
        for store in STORES:
            wait_for(functools.partial(has_leftovers, leftovers, store, False))
        for store, image_id in image_ids.items():
            image = httpx.get(
                f"{restarted.url}/v2/images/{image_id}", headers=member.headers
            ).json()
            # Its upload's lease expired with the process: back to queued, no data.
            assert (image["status"], image["size"]) == ("queued", None)
            assert "stores" not in image
            retry = httpx.put(
                f"{restarted.url}/v2/images/{image_id}/file",
                content=store.encode(),
                headers={
                    **member.headers,
                    "Content-Type": "application/octet-stream",
                    "X-Image-Meta-Store": store,
                },
            )
            assert retry.status_code == 204, retry.text


def test_an_upload_whose_server_hung_past_the_grace_period_never_activates(
    sweeping_server: Callable[[], contextlib.AbstractContextManager[RunningServer]],
    swift: RunningSwift,
    tmp_path: Path,
) -> None:
    """SIGSTOP stands for a server that hangs: its lease lapses, a sweep elsewhere
    (`skylens sweep`) gives the image back, and when the server wakes up and the
    client finishes sending, the stale upload must not activate the image."""
    member = member_of(new_project())
    with sweeping_server() as server:
        image_id = create_image(server, member)
        with unfinished_upload(server, member, image_id, "local", 8 * MIB) as connection:
            wait_for(lambda: status_of(server, member, image_id) == "saving")
            os.kill(server.pid, signal.SIGSTOP)
            try:
                time.sleep(GRACE + 1.5)
                swept = run_sweep(
                    tmp_path / "stores.toml",
                    *("--data-dir", str(server.log.parent), "--database-url", server.database_url),
                )
            finally:
                os.kill(server.pid, signal.SIGCONT)
            assert swept.stdout.splitlines()[0] == (
                "uploads: ok; 1 abandoned upload(s) back to queued"
            )
            with contextlib.suppress(OSError):  # the server may refuse the rest
                connection.sendall(os.urandom(56 * MIB))
            answer = connection.recv(4096).split(b"\r\n", 1)[0]

        assert answer == b"HTTP/1.1 409 Conflict"
        image = httpx.get(f"{server.url}/v2/images/{image_id}", headers=member.headers).json()
        assert (image["status"], image["size"]) == ("queued", None)
        retry = httpx.put(
            f"{server.url}/v2/images/{image_id}/file",
            content=b"after the hang",
            headers={**member.headers, "Content-Type": "application/octet-stream"},
        )
        assert retry.status_code == 204


# -- committed data no image points to: `skylens sweep` --------------------------------


def run_sweep(config: Path, *options: str) -> subprocess.CompletedProcess[str]:
    """`skylens sweep --config <config> <options>`, as an operator (or cron) runs it."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("SKYLENS_")}
    return subprocess.run(
        [sys.executable, "-m", "skylens.cli.main", "sweep", "--config", str(config), *options],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


def test_skylens_sweep_removes_committed_data_no_image_claims_and_keeps_the_rest(
    sweeping_server: Callable[[], contextlib.AbstractContextManager[RunningServer]],
    swift: RunningSwift,
    tmp_path: Path,
) -> None:
    member = member_of(new_project())
    headers = {**member.headers, "Content-Type": "application/octet-stream"}
    with sweeping_server() as server:
        contents = StoreContents(server, swift)
        # Data of an image deleted while its store was failing.
        deleted = create_image(server, member)
        httpx.delete(f"{server.url}/v2/images/{deleted}", headers=member.headers)
        contents.put("swift", deleted, b"deleted image")
        # A copy in a store the active image does not list.
        active = create_image(server, member)
        put = httpx.put(f"{server.url}/v2/images/{active}/file", content=b"kept", headers=headers)
        assert put.status_code == 204
        contents.put("s3", active, b"stray copy")
        # Data of a queued image: what an upload committed before it died (issue 18
        # item 17). The sweep takes the image while it deletes it; see test_*killed*.
        queued = create_image(server, member)
        contents.put("local", queued, b"committed, never activated")
        # Not a key Skylens writes.
        contents.put_key("local", "other/file", b"not ours")
        # Keys younger than the grace period are never taken (the store conformance
        # suite proves `keys(older_than=...)`); these must age first.
        time.sleep(GRACE + 1.5)

        swept = run_sweep(
            tmp_path / "stores.toml",
            *("--data-dir", str(server.log.parent), "--database-url", server.database_url),
        )

        assert swept.returncode == 0, swept.stderr
        assert swept.stdout.splitlines() == [
            "uploads: ok; 0 abandoned upload(s) back to queued",
            "store local: ok; removed 0 unfinished upload(s), 1 orphaned blob(s)",
            "store swift: ok; removed 0 unfinished upload(s), 1 orphaned blob(s)",
            "store s3: ok; removed 0 unfinished upload(s), 1 orphaned blob(s)",
            "store os_glance_staging_store: ok; removed 0 unfinished upload(s), 0 orphaned blob(s)",
        ]
        assert contents.get("swift", deleted) is None
        assert contents.get("s3", active) is None
        assert contents.get("local", active) == b"kept"
        assert contents.get("local", queued) is None
        assert status_of(server, member, queued) == "queued"  # and free to upload again
        assert contents.get_key("local", "other/file") == b"not ours"
        download = httpx.get(f"{server.url}/v2/images/{active}/file", headers=member.headers)
        assert download.content == b"kept"


def test_skylens_sweep_reports_a_failing_store_and_still_sweeps_the_others(
    tmp_path: Path,
) -> None:
    """An S3 store whose endpoint refuses connections; the file store is still swept."""
    config = tmp_path / "broken.toml"
    config.write_text(
        '[stores.local]\nkind = "file"\n\n'
        '[stores.gone]\nkind = "s3"\nbucket = "images"\n'
        'endpoint_url = "http://127.0.0.1:9"\nmax_attempts = 1\nconnect_timeout = 1\n'
    )

    subprocess.run(
        [sys.executable, "-m", "skylens.cli.main", "db", "upgrade", "--data-dir", str(tmp_path)],
        check=True,
        capture_output=True,
        timeout=120,
    )

    swept = run_sweep(config, "--data-dir", str(tmp_path))

    assert swept.returncode == 1
    assert swept.stdout.splitlines() == [
        "uploads: ok; 0 abandoned upload(s) back to queued",
        "store local: ok; removed 0 unfinished upload(s), 0 orphaned blob(s)",
        "store gone: FAILED (see the log); removed 0 unfinished upload(s), 0 orphaned blob(s)",
        "store os_glance_staging_store: ok; removed 0 unfinished upload(s), 0 orphaned blob(s)",
    ]


def test_with_a_negative_interval_only_skylens_sweep_sweeps(
    swift: RunningSwift, tmp_path: Path
) -> None:
    """Deployments with many processes leave the sweep to one cron job: a server
    with `sweep_interval_seconds = -1` does not sweep, even at start-up."""
    config = stores_config(swift, tmp_path, sweep_grace_seconds=GRACE, sweep_interval_seconds=-1)
    url = f"sqlite:///{tmp_path / 'skylens.db'}"
    member = member_of(new_project())
    with skylens_server(tmp_path, url, "sqlite", extra_args=("--config", str(config))) as server:
        image_id = create_image(server, member)
        with unfinished_upload(server, member, image_id, "local", 12 * MIB):
            wait_for(lambda: status_of(server, member, image_id) == "saving")
            os.kill(server.pid, signal.SIGKILL)
            os.waitpid(server.pid, 0)
    time.sleep(GRACE + 1.5)

    with skylens_server(tmp_path, url, "sqlite", extra_args=("--config", str(config))) as server:
        time.sleep(1)  # what a start-up sweep would have needed
        assert status_of(server, member, image_id) == "saving"

        swept = run_sweep(config, "--data-dir", str(tmp_path), "--database-url", url)

        assert swept.returncode == 0, swept.stderr
        assert "1 abandoned upload(s) back to queued" in swept.stdout
        assert status_of(server, member, image_id) == "queued"


# -- a slow upload across a sweep (issue 18 item 16) -----------------------------------


@pytest.mark.parametrize("store", STORES)
def test_a_slow_upload_whose_lease_is_renewed_survives_a_sweep(
    sweeping_server: Callable[[], contextlib.AbstractContextManager[RunningServer]],
    swift: RunningSwift,
    tmp_path: Path,
    store: str,
) -> None:
    """A client paused for longer than the grace period: its write sits idle, but the
    server renews the upload's lease all along, so the sweep must leave it be."""
    member = member_of(new_project())
    data = os.urandom(64 * MIB)
    with sweeping_server() as server:
        leftovers = Leftovers(server, swift)
        image_id = create_image(server, member)
        with unfinished_upload(server, member, image_id, store, 12 * MIB) as connection:
            wait_for(lambda: bool(leftovers(store)))
            time.sleep(GRACE + 1.5)  # idle past the grace period, object-store slack included

            swept = run_sweep(
                tmp_path / "stores.toml",
                *("--data-dir", str(server.log.parent), "--database-url", server.database_url),
            )

            assert swept.returncode == 0, swept.stderr
            assert swept.stdout.splitlines()[0] == (
                "uploads: ok; 0 abandoned upload(s) back to queued"
            )
            assert f"store {store}: ok; removed 0 unfinished upload(s), 0 orphaned blob(s)" in (
                swept.stdout.splitlines()
            )
            connection.sendall(data[12 * MIB :])  # the first 12 MiB were random too
            answer = connection.recv(4096).split(b"\r\n", 1)[0]

        assert answer == b"HTTP/1.1 204 No Content"
        image = httpx.get(f"{server.url}/v2/images/{image_id}", headers=member.headers).json()
        assert (image["status"], image["size"]) == ("active", 64 * MIB)


# -- killed between the commit and the activation (issue 18 item 17) --------------------

# Loaded by every Python process started with this directory on PYTHONPATH: each
# store's writer kills its process right after its commit returned, before the
# image record can say active (the step the injected SIGKILL hit).
KILL_AFTER_COMMIT = """\
import os
import signal

from skylens.storage import filesystem, s3, swift


def killed_after(commit):
    def commit_then_die(self):
        commit(self)
        os.kill(os.getpid(), signal.SIGKILL)

    return commit_then_die


for writer in (filesystem.FileWriter, s3.S3Writer, swift.SwiftWriter):
    writer.commit = killed_after(writer.commit)
"""


@pytest.mark.parametrize("store", STORES)
def test_a_server_killed_between_commit_and_activation_leaves_no_stray_bytes(
    swift: RunningSwift, tmp_path: Path, store: str
) -> None:
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    (hooks / "sitecustomize.py").write_text(KILL_AFTER_COMMIT)
    config = stores_config(swift, tmp_path, sweep_grace_seconds=GRACE, sweep_interval_seconds=-1)
    url = f"sqlite:///{tmp_path / 'skylens.db'}"
    member = member_of(new_project())
    data = os.urandom(6 * MIB)  # more than one part or segment
    dying = {"PYTHONPATH": os.pathsep.join([str(hooks), *sys.path])}
    with skylens_server(
        tmp_path, url, "sqlite", extra_env=dying, extra_args=("--config", str(config))
    ) as server:
        contents = StoreContents(server, swift)
        image_id = create_image(server, member)
        with pytest.raises(httpx.TransportError):
            httpx.put(
                f"{server.url}/v2/images/{image_id}/file",
                content=data,
                headers={
                    **member.headers,
                    "Content-Type": "application/octet-stream",
                    "X-Image-Meta-Store": store,
                },
                timeout=60,
            )
        os.waitpid(server.pid, 0)
    assert contents.get(store, image_id) == data  # committed, and no record says so
    time.sleep(GRACE + 1.5)  # the lease lapses; the blob ages past the grace period

    swept = run_sweep(config, "--data-dir", str(tmp_path), "--database-url", url)

    assert swept.returncode == 0, swept.stderr
    assert swept.stdout.splitlines()[0] == "uploads: ok; 1 abandoned upload(s) back to queued"
    assert f"store {store}: ok; removed 0 unfinished upload(s), 1 orphaned blob(s)" in (
        swept.stdout.splitlines()
    )
    assert contents.get(store, image_id) is None
    with skylens_server(tmp_path, url, "sqlite", extra_args=("--config", str(config))) as server:
        assert status_of(server, member, image_id) == "queued"
        retry = httpx.put(
            f"{server.url}/v2/images/{image_id}/file",
            content=b"second try",
            headers={
                **member.headers,
                "Content-Type": "application/octet-stream",
                "X-Image-Meta-Store": store,
            },
        )
        assert retry.status_code == 204, retry.text


# -- a full store (issue 18 item 19a) --------------------------------------------------


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    """A 2 MiB filesystem of its own."""
    with tmpfs(tmp_path / "tiny", "2m") as root:
        yield root


def test_a_full_disk_is_413_storage_media_full_and_keeps_nothing(
    tmp_path: Path, tiny_disk: Path
) -> None:
    config = tmp_path / "tiny.toml"
    config.write_text(f'[stores.local]\nkind = "file"\nroot = "{tiny_disk}"\n')
    url = f"sqlite:///{tmp_path / 'skylens.db'}"
    member = member_of(new_project())
    headers = {
        **member.headers,
        "Content-Type": "application/octet-stream",
        "Accept": "application/json",
    }
    with skylens_server(tmp_path, url, "sqlite", extra_args=("--config", str(config))) as server:
        image_id = create_image(server, member)

        full = httpx.put(
            f"{server.url}/v2/images/{image_id}/file", content=os.urandom(3 * MIB), headers=headers
        )

        assert_error(
            full,
            413,
            "Image storage media is full: "
            "There is not enough disk space on the image storage media.",
        )
        image = httpx.get(f"{server.url}/v2/images/{image_id}", headers=member.headers).json()
        assert (image["status"], image["size"]) == ("queued", None)
        assert os.listdir(tiny_disk / ".partial") == []
        small = httpx.put(
            f"{server.url}/v2/images/{image_id}/file", content=b"fits", headers=headers
        )
        assert small.status_code == 204, small.text
