"""What an operator sees while things break (issue 15's acceptance): a real
`skylens serve` on PostgreSQL with Swift and S3 stores; the database killed, then
unmigrated, then Swift stopped. After each, `/healthcheck`, readiness, `/metrics`
and the log must tell the truth: what failed and nothing that did not; no
traceback per request or per poll; no gauge below zero; no error body counted as
image data."""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from skylens.db.engine import head_revision
from tests.support.identities import member_of, new_project
from tests.support.raw_http import wait_for
from tests.support.servers import (
    RunningServer,
    database_away,
    postgres_database,
    skylens_server,
    stores_config,
)
from tests.support.swift import RunningSwift, swift_server

OCTET = {"Content-Type": "application/octet-stream"}
DATA = b"image data " * 500
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


class Operator:
    """Watches one server the way an operator does."""

    def __init__(self, server: RunningServer) -> None:
        self.server = server
        self._mark = 0

    def live(self) -> int:
        return httpx.get(f"{self.server.url}/healthcheck", timeout=30).status_code

    def ready(self) -> tuple[int, dict[str, str]]:
        answer = httpx.get(f"{self.server.url}/healthcheck/ready", timeout=30)
        return answer.status_code, answer.json()["checks"]

    def metrics(self) -> Samples:
        answer = httpx.get(f"{self.server.url}/metrics", timeout=30)
        assert answer.status_code == 200
        return {
            (sample.name, frozenset(sample.labels.items())): sample.value
            for family in text_string_to_metric_families(answer.text)
            for sample in family.samples
        }

    def peek(self) -> str:
        return self.server.log.read_text()[self._mark :]

    def new_log(self) -> str:
        """What the server logged since the last call."""
        text = self.server.log.read_text()
        new, self._mark = text[self._mark :], len(text)
        return new


def _value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def _requests(samples: Samples, method: str, route: str, status: int) -> float:
    labels = {"method": method, "route": route, "status": str(status)}
    return _value(samples, "skylens_http_requests_total", **labels)


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[tuple[RunningServer, RunningSwift]]:
    env = {"SKYLENS_TASKS_POLL_SECONDS": "1", "SKYLENS_SERVER_ACCESS_LOG": "true"}
    with (
        swift_server(tmp_path / "swift") as swift,
        postgres_database(f"skylens_operator_{uuid.uuid4().hex[:12]}") as url,
    ):
        config = stores_config(swift, tmp_path / "data")
        with skylens_server(
            tmp_path / "data",
            url,
            "postgresql",
            extra_env=env,
            extra_args=("--config", str(config)),
        ) as server:
            yield server, swift


def _skylens_db(*args: str, url: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "skylens.cli.main", "db", *args, "--database-url", url],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr


def test_health_metrics_and_logs_tell_the_truth_while_things_break(
    stack: tuple[RunningServer, RunningSwift],
) -> None:
    server, swift = stack
    operator = Operator(server)
    api = httpx.Client(base_url=server.url, headers=member_of(new_project()).headers, timeout=60)
    image_id = api.post("/v2/images", json={"disk_format": "raw", "container_format": "bare"})
    image_id = image_id.json()["id"]
    stored = api.put(
        f"/v2/images/{image_id}/file",
        content=DATA,
        headers={**OCTET, "X-Image-Meta-Store": "swift"},
    )
    assert stored.status_code == 204
    assert api.get(f"/v2/images/{image_id}/file").content == DATA
    assert operator.ready() == (
        200,
        {"database": "ok", "store local": "ok", "store swift": "ok", "store s3": "ok"},
    )
    operator.new_log()

    # 1. The database goes away.
    with database_away(server):
        listed = api.get("/v2/images")
        live, (ready, checks) = operator.live(), operator.ready()
        during = operator.metrics()
    assert (live, listed.status_code, ready) == (200, 503, 503)
    assert checks["database"] == "unreachable"
    assert {name: verdict for name, verdict in checks.items() if name != "database"} == {
        "store local": "ok",
        "store swift": "ok",
        "store s3": "ok",
    }
    assert _requests(during, "GET", "/v2/images", 503) == 1
    logged = operator.new_log()
    assert "WARNING skylens.db" in logged
    assert "database unavailable: " in logged
    assert "GET /v2/images 503" in logged  # the access line
    assert "readiness: database: unreachable" in logged
    assert "Traceback" not in logged
    wait_for(lambda: operator.ready()[0] == 200, "ready again once the database is back")
    # Connections that failed their ping were checked in without a checkout.
    # The task runner's poll or a readiness probe may hold one for a moment: none stays.
    wait_for(
        lambda: _value(operator.metrics(), "skylens_database_connections_checked_out") == 0,
        "every database connection back in its pool",
    )
    operator.new_log()

    # 2. Someone unmigrates it under the running service.
    _skylens_db("downgrade", "0005", url=server.database_url)
    wait_for(lambda: "claiming a task failed: " in operator.peek(), "a second failed poll")
    status, checks = operator.ready()
    assert (operator.live(), status) == (200, 503)
    assert checks["database"] == f"schema at revision 0005, expected {head_revision()}"
    logged = operator.new_log()
    assert f"readiness: database: schema at revision 0005, expected {head_revision()}" in logged
    # The task runner polls every second: at most one traceback (none if its last
    # poll was during the outage), then one line per poll.
    assert logged.count(" ERROR ") <= 1, logged  # the one record with a traceback
    assert "claiming a task failed: ProgrammingError: " in logged
    _skylens_db("upgrade", url=server.database_url)
    wait_for(lambda: operator.ready()[0] == 200, "ready again once migrated")
    operator.new_log()

    # 3. Swift (which serves the swift and s3 stores here) stops.
    before = operator.metrics()
    swift_process = swift.pid
    subprocess.run(["kill", "-TERM", str(swift_process)], check=True)
    wait_for(lambda: operator.ready()[1]["store swift"] != "ok", "the store seen down")
    download = api.get(f"/v2/images/{image_id}/file")
    second = api.post("/v2/images", json={"disk_format": "raw", "container_format": "bare"})
    upload = api.put(
        f"/v2/images/{second.json()['id']}/file",
        content=DATA,
        headers={**OCTET, "X-Image-Meta-Store": "swift"},
    )
    status, checks = operator.ready()
    stopped = operator.metrics()
    logged = operator.new_log()

    assert (download.status_code, upload.status_code) == (503, 503)
    assert (operator.live(), status) == (200, 503)
    assert (checks["database"], checks["store local"]) == ("ok", "ok")
    assert checks["store swift"] in ("unreachable", "no answer")
    assert checks["store s3"] in ("unreachable", "no answer")
    # Neither the 503 body nor the data never stored count as image data.
    for name in ("skylens_image_downloaded_bytes_total", "skylens_image_uploaded_bytes_total"):
        assert _value(stopped, name, store="swift") == _value(before, name, store="swift")
        assert _value(stopped, name, store="swift") == len(DATA)
    ended = "skylens_uploads_ended_total"
    assert _value(stopped, ended, store="swift", outcome="failed") == 1
    assert _value(stopped, ended, store="swift", outcome="success") == 1
    assert _requests(stopped, "GET", "/v2/images/{image_id}/file", 503) == 1
    # The task runner's poll or a readiness probe may hold one for a moment: none stays.
    wait_for(
        lambda: _value(operator.metrics(), "skylens_database_connections_checked_out") == 0,
        "every database connection back in its pool",
    )
    assert "WARNING skylens.storage" in logged
    assert "store swift" in logged
    assert "readiness: store swift" in logged
    assert "Traceback" not in logged
    for secret in (swift.key, swift.s3_secret_key):
        assert secret not in server.log.read_text()
    for answer in (download, upload):
        assert str(swift.url) not in answer.text
