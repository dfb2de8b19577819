"""`GET /metrics` of a real `skylens serve`: requests by route template and status,
their duration, bytes in and out, uploads under way, import tasks by outcome and
database connections in use, in Prometheus' text format, added up over every
worker process (issue 15)."""

from __future__ import annotations

import concurrent.futures
import time
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support.identities import member_of, new_project
from tests.support.images import PATCH_V21
from tests.support.raw_http import wait_for
from tests.support.servers import RunningServer, database_held, dedicated_server

DATA = b"0123456789" * 100
OCTET = {"Content-Type": "application/octet-stream"}
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def _scrape(server: RunningServer) -> tuple[str, Samples]:
    response = httpx.get(f"{server.url}/metrics", timeout=30)  # no credentials
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    samples = {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }
    return response.text, samples


def _value(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


def _requests(samples: Samples, method: str, route: str, status: int) -> float | None:
    labels = {"method": method, "route": route, "status": str(status)}
    return _value(samples, "skylens_http_requests_total", **labels)


def _task_successes(server: RunningServer) -> float | None:
    # The runner counts a task once it has recorded its end, just after clients see it.
    for _ in range(200):
        _, samples = _scrape(server)
        labels = {"type": "api_image_import", "outcome": "success"}
        ended = _value(samples, "skylens_tasks_ended_total", **labels)
        if ended is not None:
            return ended
        time.sleep(0.05)
    return None


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_metrics_count_by_route_template_and_name_no_tenant(tmp_path: Path, backend: str) -> None:
    project = new_project()
    with (
        dedicated_server(tmp_path, backend) as server,
        httpx.Client(base_url=server.url, headers=member_of(project).headers, timeout=30) as api,
    ):
        image_id = api.post("/v2/images", json={"disk_format": "raw", "container_format": "bare"})
        image_id = image_id.json()["id"]
        assert (
            api.put(f"/v2/images/{image_id}/file", content=DATA, headers=OCTET).status_code == 204
        )
        assert api.get(f"/v2/images/{image_id}/file").content == DATA
        assert api.get(f"/v2/images/{new_project()}").status_code == 404
        assert api.get("/v2/nowhere").status_code == 404
        staged = api.post("/v2/images", json={"disk_format": "raw", "container_format": "bare"})
        staged_id = staged.json()["id"]
        assert (
            api.put(f"/v2/images/{staged_id}/stage", content=DATA, headers=OCTET).status_code == 204
        )
        imported = api.post(
            f"/v2/images/{staged_id}/import", json={"method": {"name": "glance-direct"}}
        )
        assert imported.status_code == 202

        assert _task_successes(server) == 1
        text, samples = _scrape(server)

    assert _requests(samples, "POST", "/v2/images", 201) == 2
    assert _requests(samples, "PUT", "/v2/images/{image_id}/file", 204) == 1
    assert _requests(samples, "GET", "/v2/images/{image_id}/file", 200) == 1
    assert _requests(samples, "GET", "/v2/images/{image_id}", 404) == 1
    assert _requests(samples, "GET", "unmatched", 404) == 1
    upload = {"method": "PUT", "route": "/v2/images/{image_id}/file", "status": "204"}
    assert _value(samples, "skylens_http_request_duration_seconds_count", **upload) == 1
    assert _value(samples, "skylens_http_request_duration_seconds_bucket", le="+Inf", **upload) == 1
    file_route = {"route": "/v2/images/{image_id}/file"}
    assert _value(samples, "skylens_http_received_bytes_total", **file_route) == len(DATA)
    assert _value(samples, "skylens_http_sent_bytes_total", **file_route) == len(DATA)
    assert _value(samples, "skylens_uploads_in_flight") == 0
    # Every connection the requests used is back in the pool.
    assert _value(samples, "skylens_database_connections_checked_out") == 0
    # Public: nothing in it names a tenant or an image.
    for secret in (project, image_id, staged_id, member_of(project).user):
        assert secret not in text


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_connections_in_use_and_their_most_count_the_same_pools(
    tmp_path: Path, backend: str
) -> None:
    # The engine's pool (10, and 10 in overflow) and, on PostgreSQL, the pool of 10
    # that shows and lists await, whose connections count as in use too.
    most = {"sqlite": 20, "postgresql": 30}[backend]
    held = {"sqlite": 1, "postgresql": 2}[backend]  # the PATCH's, and the show's
    env = {"SKYLENS_STORAGE_SWEEP_INTERVAL_SECONDS": "-1"}  # no sweep at start-up
    member = member_of(new_project())
    with (
        dedicated_server(tmp_path, backend, extra_env=env) as server,
        httpx.Client(base_url=server.url, headers=member.headers, timeout=30) as api,
        concurrent.futures.ThreadPoolExecutor(2) as requests,
    ):
        image = api.post("/v2/images", json={"disk_format": "raw", "container_format": "bare"})
        path = f"/v2/images/{image.json()['id']}"
        patch = [{"op": "add", "path": "/held", "value": "yes"}]
        _, idle = _scrape(server)
        # SQLite's write lock holds the PATCH; PostgreSQL's table lock the show too.
        with database_held(server, "LOCK TABLE images IN ACCESS EXCLUSIVE MODE"):
            patched = requests.submit(
                api.patch, path, json=patch, headers={"Content-Type": PATCH_V21}
            )
            shown = requests.submit(api.get, path)

            def in_use() -> float | None:
                return _value(_scrape(server)[1], "skylens_database_connections_checked_out")

            wait_for(lambda: in_use() == held, f"{held} connection(s) in use")
            _, busy = _scrape(server)
        assert patched.result().status_code == 200
        assert shown.result().status_code == 200
        _, after = _scrape(server)

    for samples in (idle, busy, after):
        assert _value(samples, "skylens_database_connections_max") == most
    assert _value(idle, "skylens_database_connections_checked_out") == 0
    assert _value(busy, "skylens_database_connections_checked_out") == held
    assert _value(after, "skylens_database_connections_checked_out") == 0


def test_every_worker_s_requests_are_counted(tmp_path: Path) -> None:
    with dedicated_server(tmp_path, "sqlite", extra_args=("--workers", "2")) as server:
        runs = list((tmp_path / "metrics").iterdir())
        assert len(runs) == 1  # this run's directory, under the data directory
        sent = 0
        # A new connection each time, until both workers have answered some.
        while sent < 1000 and len(_counting_processes(runs[0])) < 2:
            assert httpx.get(f"{server.url}/versions").status_code == 200
            sent += 1
        assert len(_counting_processes(runs[0])) == 2

        _, samples = _scrape(server)

    assert _requests(samples, "GET", "/versions", 200) == sent


def _counting_processes(run: Path) -> set[str]:
    return {path.stem.rpartition("_")[2] for path in run.glob("counter_*.db")}


def test_an_empty_metrics_path_serves_no_metrics(tmp_path: Path) -> None:
    env = {"SKYLENS_SERVER_METRICS_PATH": ""}
    with dedicated_server(tmp_path, "sqlite", extra_env=env) as server:
        assert httpx.get(f"{server.url}/metrics").status_code == 300  # a version list
        assert not (tmp_path / "metrics").exists()
