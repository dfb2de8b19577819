"""A database that goes away: 503 with Retry-After and one log line per request,
then service again as soon as it is back (issue 18 item 19).

The test's own PostgreSQL database stops accepting connections and loses the ones
it had (what a restart or fail-over looks like to the service), without touching
the PostgreSQL server the other tests share.
"""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.support.errors import assert_error
from tests.support.identities import member_of, new_project
from tests.support.images import PATCH_V21
from tests.support.servers import database_away, dedicated_server

UNAVAILABLE = "The server is currently unavailable. Please try again at a later time."


def test_requests_while_the_database_is_away_are_503_and_served_again_after(
    tmp_path: Path,
) -> None:
    with (
        dedicated_server(tmp_path / "outage", "postgresql") as server,
        httpx.Client(
            base_url=server.url,
            headers={**member_of(new_project()).headers, "Accept": "application/json"},
            timeout=30,
        ) as client,
    ):
        created = client.post("/v2/images", json={"name": "kept"})
        assert created.status_code == 201, created.text
        image_id = created.json()["id"]
        logged_before = server.log.read_text()

        with database_away(server):
            answers = [
                client.get("/v2/images"),
                client.get(f"/v2/images/{image_id}"),
                client.post("/v2/images", json={"name": "new"}),
                client.patch(
                    f"/v2/images/{image_id}",
                    json=[{"op": "replace", "path": "/name", "value": "changed"}],
                    headers={"Content-Type": PATCH_V21},
                ),
                client.put(f"/v2/images/{image_id}/tags/t"),
                client.delete(f"/v2/images/{image_id}"),
            ]
            for answer in answers:
                assert_error(answer, 503, UNAVAILABLE)
                assert answer.headers["retry-after"] == "2"
            logged = server.log.read_text()[len(logged_before) :]

        shown = client.get(f"/v2/images/{image_id}")

    assert "Traceback" not in logged, logged
    failures = [line for line in logged.splitlines() if "database unavailable" in line]
    assert len(failures) == len(answers), logged
    assert all(len(line) < 400 for line in failures), failures
    assert shown.status_code == 200, shown.text
    assert (shown.json()["name"], shown.json()["tags"]) == ("kept", [])


def test_connections_the_database_closed_are_replaced_unseen(tmp_path: Path) -> None:
    with (
        dedicated_server(tmp_path / "restart", "postgresql") as server,
        httpx.Client(
            base_url=server.url, headers=member_of(new_project()).headers, timeout=30
        ) as client,
    ):
        assert client.post("/v2/images", json={"name": "kept"}).status_code == 201
        with database_away(server):
            pass  # every pooled connection is now closed by the server side

        listed = client.get("/v2/images")
        logged = server.log.read_text()

    assert listed.status_code == 200, listed.text
    assert [image["name"] for image in listed.json()["images"]] == ["kept"]
    assert "database unavailable" not in logged


def test_the_compute_routes_answer_503_with_retry_after_while_the_database_is_away(
    tmp_path: Path,
) -> None:
    with (
        dedicated_server(tmp_path / "compute", "postgresql") as server,
        httpx.Client(
            base_url=server.url, headers=member_of(new_project()).headers, timeout=30
        ) as client,
    ):
        image_id = client.post("/v2/images", json={"name": "kept"}).json()["id"]
        with database_away(server):
            answers = [
                client.get("/v2.1/images"),
                client.get(f"/v2.1/images/{image_id}"),
                client.get(f"/v2.1/images/{image_id}/metadata"),
            ]

    for answer in answers:
        assert answer.status_code == 503, answer.text
        assert answer.json() == {"serviceUnavailable": {"code": 503, "message": UNAVAILABLE}}
        assert answer.headers["retry-after"] == "2"


def test_health_answers_in_one_log_line_while_the_database_is_away(tmp_path: Path) -> None:
    """Liveness stays Glance's 200 "OK" (the process is up); readiness says not ready.
    A monitor asking every few seconds gets one short log line per question, no
    traceback."""
    with dedicated_server(tmp_path / "health", "postgresql") as server:
        logged_before = server.log.read_text()
        with database_away(server):
            alive = [httpx.get(f"{server.url}/healthcheck", timeout=30) for _ in range(3)]
            ready = [httpx.get(f"{server.url}/healthcheck/ready", timeout=30) for _ in range(3)]
            logged = server.log.read_text()[len(logged_before) :]
        after = httpx.get(f"{server.url}/healthcheck/ready", timeout=30)

    assert [(answer.status_code, answer.text) for answer in alive] == [(200, "OK")] * 3
    assert [answer.status_code for answer in ready] == [503] * 3
    assert "Traceback" not in logged, logged
    warnings = [line for line in logged.splitlines() if "readiness" in line]
    assert len(warnings) == len(ready), logged
    assert all(len(line) < 400 for line in warnings), warnings
    assert after.status_code == 200
