"""`server.metrics_port`: the metrics on a port of their own, answered by the `serve`
process for all its workers; image data counted per store, uploads by outcome,
tasks under way, the pools' size; and the "under way" gauges of a worker killed
mid-upload dropped, not counted for ever (issue 15)."""

from __future__ import annotations

import os
import signal
import socket
import time
from pathlib import Path

import httpx
import sqlalchemy as sa
from prometheus_client.parser import text_string_to_metric_families

from skylens.db.engine import create_engine
from tests.support.identities import member_of, new_project
from tests.support.raw_http import wait_for
from tests.support.servers import RunningServer, dedicated_server, free_port

DATA = b"0123456789" * 100
OCTET = {"Content-Type": "application/octet-stream"}
MIB = 1 << 20
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def _scrape(url: str) -> Samples:
    response = httpx.get(url, timeout=30)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def _value(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


def _upload_holder(server: RunningServer) -> str | None:
    engine = create_engine(server.database_url)
    try:
        with engine.connect() as connection:
            holder = connection.execute(sa.text("SELECT holder FROM image_uploads")).scalar()
    finally:
        engine.dispose()
    return str(holder) if holder is not None else None


def test_metrics_on_their_own_port_add_up_every_worker(tmp_path: Path) -> None:
    port = free_port()
    metrics = f"http://127.0.0.1:{port}/scrape-me"
    env = {"SKYLENS_SERVER_METRICS_PORT": str(port), "SKYLENS_SERVER_METRICS_PATH": "/scrape-me"}
    member = member_of(new_project())
    with (
        dedicated_server(
            tmp_path, "sqlite", extra_env=env, extra_args=("--workers", "2")
        ) as server,
        httpx.Client(base_url=server.url, headers=member.headers, timeout=30) as api,
    ):
        # Not on the API's port any more; only the configured path on its own.
        assert api.get("/scrape-me").status_code != 200
        assert httpx.get(f"http://127.0.0.1:{port}/metrics").status_code == 404

        uploaded = []
        for store in (None, "local", "nope"):
            image = api.post("/v2/images", json={"disk_format": "raw", "container_format": "bare"})
            headers = {**OCTET, **({"X-Image-Meta-Store": store} if store else {})}
            answer = api.put(f"/v2/images/{image.json()['id']}/file", content=DATA, headers=headers)
            uploaded.append((image.json()["id"], answer.status_code))
        assert [status for _, status in uploaded] == [204, 204, 400]
        for image_id, _ in uploaded[:2]:
            assert api.get(f"/v2/images/{image_id}/file").content == DATA
        staged = api.post("/v2/images", json={"disk_format": "raw", "container_format": "bare"})
        answer = api.put(f"/v2/images/{staged.json()['id']}/stage", content=DATA, headers=OCTET)
        assert answer.status_code == 204
        # Ten scrapes, whichever worker served which request: always the same sums.
        scrapes = [_scrape(metrics) for _ in range(10)]

        # An upload under way, then its worker killed without a word.
        image = api.post("/v2/images", json={"disk_format": "raw", "container_format": "bare"})
        head = (
            f"PUT /v2/images/{image.json()['id']}/file HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Content-Type: application/octet-stream\r\nContent-Length: {64 * MIB}\r\n"
            + "".join(f"{name}: {value}\r\n" for name, value in member.headers.items())
            + "\r\n"
        )
        with socket.create_connection(("127.0.0.1", server.port)) as upload:
            upload.sendall(head.encode() + os.urandom(MIB))
            wait_for(
                lambda: _value(_scrape(metrics), "skylens_uploads_in_flight") == 1,
                "one upload in flight",
            )
            wait_for(lambda: _upload_holder(server) is not None, "the upload's lease taken")
            holder = str(_upload_holder(server))
            worker = int(holder.split(":")[1])
            assert worker != server.pid  # a worker, not the process serving the metrics
            os.kill(worker, signal.SIGKILL)
            wait_for(
                lambda: _value(_scrape(metrics), "skylens_uploads_in_flight") == 0,
                "the dead worker's upload no longer in flight",
            )
        after = _scrape(metrics)
        time.sleep(0.1)

    for samples in scrapes:
        assert samples == scrapes[0]
    first = scrapes[0]
    assert _value(first, "skylens_image_uploaded_bytes_total", store="local") == 2 * len(DATA)
    assert _value(first, "skylens_image_downloaded_bytes_total", store="local") == 2 * len(DATA)
    ended = "skylens_uploads_ended_total"
    assert _value(first, ended, store="local", outcome="success") == 2
    staging = "os_glance_staging_store"  # the staging store's id
    assert _value(first, "skylens_image_uploaded_bytes_total", store=staging) == len(DATA)
    assert not [key for key in first if ("store", "nope") in key[1]]  # a client's word
    assert _value(first, "skylens_uploads_in_flight") == 0
    assert _value(first, "skylens_tasks_in_flight") == 0
    assert _value(first, "skylens_database_connections_checked_out") == 0
    # Two workers, each with a pool of 10 and as many in overflow.
    assert _value(first, "skylens_database_connections_max") == 40
    # The dead worker's counters stay: its requests happened.
    assert _value(after, "skylens_image_uploaded_bytes_total", store="local") == 2 * len(DATA)


def test_a_metrics_port_taken_stops_serve_with_one_line(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = {"SKYLENS_SERVER_METRICS_PORT": str(port)}
        try:
            with dedicated_server(tmp_path, "sqlite", extra_env=env):
                raise AssertionError("serve started on a metrics port already taken")
        except RuntimeError as error:
            started = str(error)
    assert (
        f"skylens: configuration error: server.metrics_port: cannot listen on 127.0.0.1:{port}"
        in started
    )
    assert "Traceback" not in started
