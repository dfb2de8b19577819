"""Liveness (`/healthcheck`, as Glance answers it) and readiness
(`/healthcheck/ready`: the database, its schema, every store, Keystone) through a
real `skylens serve` (issue 15)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from skylens.db.engine import head_revision
from tests.support.identities import member_of, new_project
from tests.support.servers import (
    RunningServer,
    configured_stores,
    database_away,
    dedicated_server,
    free_port,
)

READY = "/healthcheck/ready"


def _readiness(server: RunningServer) -> httpx.Response:
    return httpx.get(f"{server.url}{READY}", timeout=30)


def test_liveness_answers_as_glance_and_readiness_lists_every_check(
    server: RunningServer,
) -> None:
    live = httpx.get(f"{server.url}/healthcheck")
    assert (live.status_code, live.text) == (200, "OK")
    assert live.headers["content-type"] == "text/plain; charset=utf-8"

    ready = _readiness(server)
    assert ready.status_code == 200, ready.text
    stores = {f"store {name}": "ok" for name in configured_stores(server)}
    assert ready.json() == {"status": "ready", "checks": {"database": "ok", **stores}}


def _skylens_db(*args: str, url: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "skylens.cli.main", "db", *args, "--database-url", url],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_an_unmigrated_database_makes_the_service_not_ready(tmp_path: Path, backend: str) -> None:
    with dedicated_server(tmp_path, backend) as server:
        # Someone takes the schema away under the running service.
        engine = sa.create_engine(
            server.database_url.replace("postgresql://", "postgresql+psycopg://")
        )
        with engine.begin() as connection:
            connection.execute(sa.text("UPDATE alembic_version SET version_num = '0001'"))
        engine.dispose()

        ready = _readiness(server)
        assert httpx.get(f"{server.url}/healthcheck").status_code == 200  # still alive

        assert ready.status_code == 503
        assert ready.json() == {
            "status": "not ready",
            "checks": {
                "database": f"schema at revision 0001, expected {head_revision()}",
                "store local": "ok",
            },
        }


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_a_newer_releases_schema_leaves_the_service_ready(tmp_path: Path, backend: str) -> None:
    # A rolling upgrade: `skylens db upgrade` of the next release ran, this host's
    # processes are still the old release and keep serving.
    with dedicated_server(tmp_path, backend) as server:
        engine = sa.create_engine(
            server.database_url.replace("postgresql://", "postgresql+psycopg://")
        )
        with engine.begin() as connection:
            connection.execute(sa.text("UPDATE alembic_version SET version_num = '9999_next'"))
        engine.dispose()

        ready = _readiness(server)

        assert ready.status_code == 200, ready.text
        assert ready.json()["checks"]["database"] == "ok"


def test_a_database_that_went_away_makes_the_service_not_ready(tmp_path: Path) -> None:
    with dedicated_server(tmp_path, "postgresql") as server:
        with database_away(server):
            ready = _readiness(server)
            assert httpx.get(f"{server.url}/healthcheck").status_code == 200

        assert ready.status_code == 503
        assert ready.json()["checks"]["database"] == "unreachable"
        assert _readiness(server).status_code == 200  # back as soon as the database is
        logged = server.log.read_text()
        assert "readiness: database: unreachable (the database does not answer" in logged


def _unreachable_stores_config(path: Path, port: int) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    config = path / "stores.toml"
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
create_bucket = false
max_attempts = 1

[stores.swiftdown]
kind = "swift"
auth_url = "http://127.0.0.1:{port}/auth/v1.0"
user = "the-user"
key = "the-swift-key"
container = "images"
create_container = false
retries = 0
"""
    )
    return config


def test_an_unreachable_store_makes_the_service_not_ready_and_is_never_described(
    tmp_path: Path,
) -> None:
    port = free_port()  # nothing listens there
    config = _unreachable_stores_config(tmp_path, port)
    with dedicated_server(tmp_path, "sqlite", extra_args=("--config", str(config))) as server:
        ready = _readiness(server)
        client = httpx.Client(
            base_url=server.url,
            headers={**member_of(new_project()).headers, "Accept": "application/json"},
            timeout=30,
        )
        image = client.post("/v2/images", json={"disk_format": "raw", "container_format": "bare"})
        uploads = [
            client.put(
                f"/v2/images/{image.json()['id']}/file",
                content=b"data",
                headers={"Content-Type": "application/octet-stream", "X-Image-Meta-Store": store},
            )
            for store in ("s3down", "swiftdown")
        ]
        logged = server.log.read_text()

    assert ready.status_code == 503
    assert ready.json() == {
        "status": "not ready",
        "checks": {
            "database": "ok",
            "store local": "ok",
            "store s3down": "unreachable",
            "store swiftdown": "unreachable",
        },
    }
    for upload in uploads:
        assert upload.status_code == 503, upload.text
    secrets = (str(port), "127.0.0.1", "the-access-key", "the-secret-key", "the-swift-key")
    for answer in (ready, *uploads):
        for secret in secrets:
            assert secret not in answer.text
    assert f"127.0.0.1:{port}" in logged  # the operator learns where
    for secret in ("the-secret-key", "the-swift-key"):
        assert secret not in logged


def test_readiness_needs_no_identity_and_reveals_no_configuration(server: RunningServer) -> None:
    answer = httpx.get(f"{server.url}{READY}", headers={"X-Auth-Token": "nonsense"})

    assert answer.status_code == 200
    assert set(json.loads(answer.text)) == {"status", "checks"}
