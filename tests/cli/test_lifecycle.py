"""How `skylens serve` stops: SQLite's log checkpointed into the database file, and
uploads still running after `server.shutdown_timeout_seconds` cut off and undone
(issue 15)."""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import time
from pathlib import Path

import httpx

from tests.support.servers import RunningServer, skylens_server

HEADERS = {"X-Project-Id": "alpha", "X-Roles": "member,reader", "Accept": "application/json"}


def _status_in_file(database: Path, image_id: str, *, file_only: bool) -> str | None:
    """The image's status; `file_only` reads the database file without its write-ahead
    log (what a copy of the file alone would hold)."""
    uri = f"file:{database}?immutable=1" if file_only else f"file:{database}"
    with sqlite3.connect(uri, uri=True) as connection:
        row = connection.execute("SELECT status FROM images WHERE id = ?", (image_id,)).fetchone()
    return None if row is None else str(row[0])


def _wait_for_exit(server: RunningServer) -> None:
    """Until the server process has exited (its parent, this test, reaps it later)."""
    stat = Path(f"/proc/{server.pid}/stat")
    for _ in range(600):
        if not stat.exists() or stat.read_text().split(") ", 1)[1].startswith("Z"):
            return
        time.sleep(0.1)
    raise AssertionError(f"skylens did not stop:\n{server.log.read_text()}")


def test_a_clean_stop_leaves_everything_in_the_sqlite_file(tmp_path: Path) -> None:
    database = tmp_path / "skylens.db"
    with skylens_server(tmp_path, f"sqlite:///{database}", "sqlite") as server:
        image = httpx.post(f"{server.url}/v2/images", json={"name": "kept"}, headers=HEADERS)
        assert image.status_code == 201

    wal = tmp_path / "skylens.db-wal"
    assert not wal.exists() or wal.stat().st_size == 0
    assert _status_in_file(database, image.json()["id"], file_only=True) == "queued"


def test_an_upload_running_past_the_shutdown_timeout_is_cut_off_and_undone(
    tmp_path: Path,
) -> None:
    database = tmp_path / "skylens.db"
    with skylens_server(
        tmp_path,
        f"sqlite:///{database}",
        "sqlite",
        extra_env={
            "SKYLENS_SERVER_SHUTDOWN_TIMEOUT_SECONDS": "1",
            "SKYLENS_SERVER_BODY_READ_TIMEOUT_SECONDS": "600",
        },
    ) as server:
        body = {"disk_format": "raw", "container_format": "bare"}
        image_id = httpx.post(f"{server.url}/v2/images", json=body, headers=HEADERS).json()["id"]
        with socket.create_connection(("127.0.0.1", server.port)) as upload:
            head = (
                f"PUT /v2/images/{image_id}/file HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                "Content-Type: application/octet-stream\r\nContent-Length: 100000000\r\n"
                + "".join(f"{name}: {value}\r\n" for name, value in HEADERS.items())
                + "\r\n"
            )
            upload.sendall(head.encode() + b"\0" * (1 << 20))
            for _ in range(300):
                shown = httpx.get(f"{server.url}/v2/images/{image_id}", headers=HEADERS)
                if shown.json()["status"] == "saving":
                    break
                time.sleep(0.1)
            assert shown.json()["status"] == "saving"

            os.kill(server.pid, signal.SIGTERM)  # the upload never sends the rest
            _wait_for_exit(server)

    assert _status_in_file(database, image_id, file_only=False) == "queued"
    assert "timeout graceful shutdown exceeded" in server.log.read_text()
