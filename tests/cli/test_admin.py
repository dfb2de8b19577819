"""The operator's commands, run as the installed console script against real
databases, stores and Keystone: `skylens db downgrade`, `skylens config check` and
`skylens images stuck` (issue 15)."""

from __future__ import annotations

import datetime as dt
import getpass
import json
import os
import signal
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from skylens.db import tables
from skylens.db.engine import create_engine, head_revision
from skylens.db.tasks import SqlTaskRepository
from skylens.domain.images import utc_now
from skylens.domain.tasks import IMPORT_TASK, Lease, Task, TaskStatus
from tests.cli.test_main import _skylens
from tests.support.identities import member_of, new_project
from tests.support.keystone import RunningKeystone
from tests.support.raw_http import wait_for
from tests.support.servers import dedicated_server, free_port, postgres_database, stores_config
from tests.support.swift import RunningSwift

MIB = 1 << 20


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database of each backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'skylens.db'}"
        return
    with postgres_database(f"skylens_admin_{uuid.uuid4().hex[:12]}") as url:
        yield url


def _previous(revision: str) -> str:
    return f"{int(revision) - 1:04d}"


# -- db downgrade ------------------------------------------------------------------


def test_db_downgrade_steps_back_to_a_revision_or_to_empty(database_url: str) -> None:
    assert _skylens("db", "upgrade", "--database-url", database_url).returncode == 0

    one_back = _skylens("db", "downgrade", "--database-url", database_url)
    assert one_back.returncode == 0, one_back.stderr
    assert one_back.stdout.strip() == f"database at revision {_previous(head_revision())}"

    to_first = _skylens("db", "downgrade", "0001", "--database-url", database_url)
    assert to_first.returncode == 0, to_first.stderr
    assert to_first.stdout.strip() == "database at revision 0001"

    emptied = _skylens("db", "downgrade", "base", "--database-url", database_url)
    assert emptied.returncode == 0, emptied.stderr
    assert emptied.stdout.strip() == "database at revision none (empty)"
    assert _skylens("db", "current", "--database-url", database_url).stdout.strip() == "empty"

    again = _skylens("db", "upgrade", "--database-url", database_url)
    assert again.stdout.strip() == f"database at revision {head_revision()}"


def test_db_downgrade_mistakes_are_one_line_and_exit_2(database_url: str) -> None:
    assert _skylens("db", "upgrade", "--database-url", database_url).returncode == 0

    for target in ("9999", "nonsense", "-99"):
        refused = _skylens("db", "downgrade", target, "--database-url", database_url)
        assert refused.returncode == 2, refused
        assert refused.stdout == ""
        lines = refused.stderr.strip().splitlines()
        assert len(lines) == 1, refused.stderr
        assert lines[0].startswith("skylens: database error: cannot downgrade "), lines
        assert f"from revision {head_revision()} to {target}" in lines[0]
    # Nothing was undone by a refused downgrade.
    current = _skylens("db", "current", "--database-url", database_url)
    assert current.stdout.strip() == head_revision()


def test_db_downgrade_of_a_database_that_does_not_exist(tmp_path: Path) -> None:
    url = "postgresql://127.0.0.1:5432/skylens_no_such_database"
    refused = _skylens("db", "downgrade", "base", "--database-url", url)

    assert refused.returncode == 2
    assert refused.stderr.count("\n") == 1, refused.stderr
    assert "skylens_no_such_database" in refused.stderr
    assert "Traceback" not in refused.stderr


# -- config check ------------------------------------------------------------------


def _checks(stdout: str) -> dict[str, str]:
    """`ok    name: what` / `FAIL  name: why` lines, by name: `ok: ...` or `FAIL: ...`."""
    found = {}
    lines = stdout.split("# checks\n", 1)[1].splitlines()
    for line in lines[:-1]:
        verdict, _, rest = line.partition(" ")
        name, _, what = rest.strip().partition(": ")
        found[name] = f"{verdict}: {what}"
    return found


def test_config_check_passes_hides_secrets_and_tries_every_store(
    tmp_path: Path, swift: RunningSwift
) -> None:
    config = stores_config(swift, tmp_path)
    with postgres_database(f"skylens_check_{uuid.uuid4().hex[:12]}") as plain_url:
        # Trust authentication ignores the password: it is there to be hidden.
        url = sa.make_url(plain_url).set(username=getpass.getuser(), password="hunter2-pw")
        database_url = url.render_as_string(hide_password=False)
        assert _skylens("db", "upgrade", "--database-url", database_url).returncode == 0
        checked = _skylens(
            "config",
            "check",
            "--config",
            str(config),
            "--data-dir",
            str(tmp_path),
            "--database-url",
            database_url,
            env={"SKYLENS_KEYSTONE_PASSWORD": "keystone-secret-pw"},
        )

    assert checked.returncode == 0, checked.stdout + checked.stderr
    checks = _checks(checked.stdout)
    assert checks["database"].startswith("ok: postgresql+psycopg://") or checks[
        "database"
    ].startswith("ok: postgresql://"), checks
    assert f"schema at revision {head_revision()}" in checks["database"]
    for store in ("local", "swift", "s3", "os_glance_staging_store (staging)"):
        assert checks[f"store {store}"].startswith("ok: reachable and writable"), checks
    assert "keystone" not in checks  # not in Keystone mode
    assert checked.stdout.strip().endswith("6 of 6 checks passed")
    settings = checked.stdout.split("# checks\n", 1)[0]
    assert f'stores.swift.auth_url = "{swift.auth_url}"' in settings
    assert 'stores.swift.key = "***"' in settings
    assert 'stores.s3.secret_key = "***"' in settings
    assert 'keystone.password = "***"' in settings
    assert f":***@127.0.0.1:5432/{url.database}" in settings
    for secret in ("hunter2-pw", swift.key, swift.s3_secret_key, "keystone-secret-pw"):
        assert secret not in checked.stdout + checked.stderr
    # The probe blobs are gone.
    for store_root in (tmp_path / "images", tmp_path / "staging"):
        assert not [p for p in store_root.rglob("*") if p.is_file()], store_root


def test_config_check_names_every_failure_on_one_line_each(tmp_path: Path) -> None:
    port = free_port()  # nothing listens there
    config = tmp_path / "skylens.toml"
    config.write_text(
        f"""
[stores.local]
kind = "file"

[stores.s3down]
kind = "s3"
endpoint_url = "http://127.0.0.1:{port}"
bucket = "images"
access_key = "the-access-key"
secret_key = "the-secret-key"
max_attempts = 1
"""
    )
    database = tmp_path / "old.db"
    url = f"sqlite:///{database}"
    assert _skylens("db", "upgrade", "--database-url", url).returncode == 0
    assert _skylens("db", "downgrade", "0005", "--database-url", url).returncode == 0

    def check(*extra: str, auto_upgrade: str = "false") -> tuple[int, dict[str, str], str]:
        result = _skylens(
            "config",
            "check",
            "--config",
            str(config),
            "--data-dir",
            str(tmp_path),
            *extra,
            env={"SKYLENS_DATABASE_AUTO_UPGRADE": auto_upgrade},
        )
        return result.returncode, _checks(result.stdout), result.stdout + result.stderr

    code, checks, output = check("--database-url", url)

    assert code == 1
    assert checks["database"] == (
        f"FAIL: {url} is at schema revision 0005, this release needs "
        f"{head_revision()} (run `skylens db upgrade`)"
    )
    assert checks["store local"].startswith("ok: ")
    assert checks["store s3down"].startswith("FAIL: StorageUnavailable: "), checks
    assert f"127.0.0.1:{port}" in checks["store s3down"]  # the operator learns where
    assert "\n3 of 5 checks passed\n" in output
    assert "Traceback" not in output
    assert "the-secret-key" not in output

    # With database.auto_upgrade, serve migrates an old schema or a missing file.
    code, checks, _ = check("--database-url", url, auto_upgrade="true")
    assert checks["database"] == (
        f"ok: {url} reachable, schema at revision 0005: `serve` migrates it to "
        f"{head_revision()} (database.auto_upgrade)"
    )
    absent = tmp_path / "absent" / "skylens.db"
    code, checks, _ = check("--database-url", f"sqlite:///{absent}", auto_upgrade="true")
    assert (
        checks["database"]
        == f"ok: no database file yet at {absent}: `serve` creates and migrates it"
    )
    code, checks, _ = check("--database-url", f"sqlite:///{absent}")
    assert checks["database"] == f"FAIL: no database file at {absent} (run `skylens db upgrade`)"
    assert not absent.exists()  # a check creates nothing


def test_config_check_in_keystone_mode_authenticates_the_service_user(
    tmp_path: Path, keystone: RunningKeystone
) -> None:
    url = f"sqlite:///{tmp_path / 'skylens.db'}"
    assert _skylens("db", "upgrade", "--database-url", url).returncode == 0
    keystone_env = {
        "SKYLENS_AUTH_MODE": "keystone",
        "SKYLENS_KEYSTONE_AUTH_URL": keystone.auth_url,
        "SKYLENS_KEYSTONE_USERNAME": keystone.service_user,
        "SKYLENS_KEYSTONE_PROJECT_NAME": keystone.service_project,
    }
    password = keystone.passwords[keystone.service_user]

    def check(secret: str) -> tuple[int, dict[str, str], str]:
        result = _skylens(
            "config",
            "check",
            "--data-dir",
            str(tmp_path),
            "--database-url",
            url,
            env={**keystone_env, "SKYLENS_KEYSTONE_PASSWORD": secret},
        )
        return result.returncode, _checks(result.stdout), result.stdout + result.stderr

    code, checks, output = check(password)
    assert code == 0, output
    assert checks["keystone"].startswith(f"ok: {keystone.auth_url} answers"), checks
    assert password not in output

    code, checks, output = check("not-the-password")
    assert code == 1
    assert checks["keystone"].startswith(f"FAIL: cannot authenticate as {keystone.service_user!r}")
    assert "not-the-password" not in output


# -- images stuck ------------------------------------------------------------------


def _stuck(url: str, *args: str) -> tuple[int, list[dict[str, object]]]:
    result = _skylens("images", "stuck", "--json", "--database-url", url, *args)
    assert result.returncode in (0, 1), result.stderr
    stuck: list[dict[str, object]] = json.loads(result.stdout)["stuck"]
    return result.returncode, stuck


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_images_stuck_finds_the_upload_of_a_killed_server(tmp_path: Path, backend: str) -> None:
    member = member_of(new_project())
    with dedicated_server(tmp_path / "server", backend) as server:
        created = httpx.post(
            f"{server.url}/v2/images",
            json={"disk_format": "raw", "container_format": "bare"},
            headers=member.headers,
        )
        image_id = created.json()["id"]
        database = server.database_url
        head = (
            f"PUT /v2/images/{image_id}/file HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Content-Type: application/octet-stream\r\nContent-Length: {64 * MIB}\r\n"
            + "".join(f"{name}: {value}\r\n" for name, value in member.headers.items())
            + "\r\n"
        )
        with socket.create_connection(("127.0.0.1", server.port)) as upload:
            upload.sendall(head.encode() + os.urandom(MIB))
            engine = create_engine(database)

            def leased() -> bool:
                with engine.connect() as connection:
                    return bool(
                        connection.execute(sa.text("SELECT count(*) FROM image_uploads")).scalar()
                    )

            wait_for(leased, "holding an upload lease")
            # A live upload renews its lease every minute: not stuck.
            assert _stuck(database, "--older-than", "30") == (0, [])
            os.kill(server.pid, signal.SIGKILL)
            os.waitpid(server.pid, 0)
            engine.dispose()

        # Its lease is never renewed again: silent for over a second, it is stuck.
        wait_for(lambda: _stuck(database, "--older-than", "1")[0] == 1, "reported stuck")
        code, stuck = _stuck(database, "--older-than", "1")
        quiet_code, quiet = _stuck(database)  # the default threshold: ten minutes

    assert code == 1
    [upload_entry] = stuck
    assert upload_entry["kind"] == "upload"
    assert upload_entry["id"] == upload_entry["image_id"] == image_id
    assert upload_entry["owner"] == member.project
    assert upload_entry["status"] == "saving"
    assert str(upload_entry["holder"]).startswith(f"{socket.gethostname()}:{server.pid}:")
    assert "lease not renewed" in str(upload_entry["reason"])
    assert (quiet_code, quiet) == (0, [])


def test_images_stuck_finds_tasks_past_their_lease_and_unclaimed(
    tmp_path: Path, database_url: str
) -> None:
    assert _skylens("db", "upgrade", "--database-url", database_url).returncode == 0
    engine = create_engine(database_url)
    repository = SqlTaskRepository(engine)
    now = utc_now()
    hour_ago = now - dt.timedelta(hours=1)

    def task(status: TaskStatus) -> Task:
        return Task(
            id=str(uuid.uuid4()),
            type=IMPORT_TASK,
            status=status,
            owner="the-project",
            input={},
            created_at=hour_ago,
            updated_at=hour_ago,
            image_id=str(uuid.uuid4()),
        )

    dead = task(TaskStatus.PROCESSING)
    repository.add(dead, Lease(dead.id, "deadhost:4242:cafe", hour_ago, 1))
    unclaimed = task(TaskStatus.PENDING)
    repository.add(unclaimed)
    alive = task(TaskStatus.PROCESSING)  # its lease runs for another hour
    repository.add(alive, Lease(alive.id, "livehost:1:beef", now + dt.timedelta(hours=1), 1))
    finished = task(TaskStatus.SUCCESS)
    repository.add(finished)
    # Images left importing: by a task that ended, and by one that no longer exists.
    orphaned = {finished.id: str(uuid.uuid4()), "vanished-task": str(uuid.uuid4())}
    with engine.begin() as connection:
        for task_id, image_id in orphaned.items():
            connection.execute(
                sa.insert(tables.images).values(
                    id=image_id,
                    status="importing",
                    visibility="shared",
                    protected=False,
                    os_hidden=False,
                    owner="the-project",
                    min_ram=0,
                    min_disk=0,
                    created_at=hour_ago,
                    updated_at=hour_ago,
                    version=1,
                )
            )
            connection.execute(
                sa.insert(tables.image_properties).values(
                    image_id=image_id, name="os_glance_import_task", value=task_id
                )
            )
    engine.dispose()

    code, stuck = _stuck(database_url, "--older-than", "60")
    by_id = {entry["id"]: entry for entry in stuck}
    text = _skylens("images", "stuck", "--older-than", "60", "--database-url", database_url)

    assert code == 1
    assert set(by_id) == {dead.id, unclaimed.id, alive.id, *orphaned.values()}
    for task_id, image_id in orphaned.items():
        entry = by_id.pop(image_id)
        assert (entry["kind"], entry["status"], entry["owner"]) == (
            "import",
            "importing",
            "the-project",
        )
        ended = "ended (success)" if task_id == finished.id else "no longer exists"
        assert entry["reason"] == f"its import task {task_id} {ended}"
    stuck = list(by_id.values())
    assert by_id[dead.id]["holder"] == "deadhost:4242:cafe"
    assert str(by_id[dead.id]["reason"]).startswith("lease expired 36")  # an hour ago
    assert by_id[unclaimed.id]["holder"] is None
    assert "no runner has claimed it" in str(by_id[unclaimed.id]["reason"])
    assert by_id[alive.id]["reason"] == "no progress reported while its lease is renewed"
    for entry in stuck:
        assert (entry["kind"], entry["owner"]) == ("task", "the-project")
        assert int(str(entry["age_seconds"])) >= 3600
    assert text.returncode == 1
    lines = text.stdout.splitlines()
    assert lines[0].split() == ["KIND", "ID", "OWNER", "STATUS", "AGE", "HOLDER", "REASON"]
    assert any(dead.id in line and "deadhost:4242:cafe" in line for line in lines[1:])
