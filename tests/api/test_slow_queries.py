"""A slow query holds its own request only: /healthcheck answers while it runs
(issue 18 item 1, "never run a query on the event loop").

Each test makes one list query wait for as long as the test wants, proves the
query is in flight, asks /healthcheck, and only then lets the query finish.
"""

from __future__ import annotations

import threading
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import psycopg
import sqlalchemy as sa

from skylens.api.app import create_app
from skylens.config import load
from skylens.db.engine import create_engine
from tests.support.identities import member_of, new_project
from tests.support.servers import RunningServer
from tests.support.uvicorn_thread import uvicorn_thread

HEADERS = {**member_of(new_project()).headers, "Accept": "application/json"}
# Bounds on waits for a state that must come; reaching one fails the test, never passes it.
GUARD_SECONDS = 30


class StalledQuery:
    """An SQLite progress handler that holds the first query after `arm()` until
    `release()`, and says when it holds it. Queries as short as `SELECT 1` finish
    before the handler is first called."""

    def __init__(self) -> None:
        self.armed = threading.Event()
        self.holding = threading.Event()
        self.released = threading.Event()
        self._lock = threading.Lock()

    def install(self, dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.set_progress_handler(self._progress, 50)

    def _progress(self) -> int:
        if self.armed.is_set():
            with self._lock:
                first = not self.holding.is_set()
                self.holding.set()
            if first:
                self.released.wait(GUARD_SECONDS)
        return 0  # go on


def assert_healthcheck_answers_while(url: str, in_flight: Future[httpx.Response]) -> None:
    with ThreadPoolExecutor(max_workers=1) as pool:
        health = pool.submit(httpx.get, f"{url}/healthcheck", timeout=GUARD_SECONDS)
        answered = health.result(timeout=GUARD_SECONDS + 5)
    assert answered.status_code == 200, answered.text
    assert not in_flight.done()


def test_a_held_sqlite_read_leaves_the_healthcheck_answering(tmp_path: Path) -> None:
    settings = load(environ={}, overrides={"data_dir": str(tmp_path)})
    engine = create_engine(settings.database_url, pool_size=settings.database.pool_size)
    stall = StalledQuery()
    sa.event.listen(engine, "connect", stall.install)
    app = create_app(settings, engine)

    with (
        uvicorn_thread(app, "httptools") as server,
        httpx.Client(base_url=server.url, headers=HEADERS, timeout=GUARD_SECONDS) as client,
        ThreadPoolExecutor(max_workers=1) as pool,
    ):
        for name in ("a", "b", "c"):
            assert client.post("/v2/images", json={"name": name}).status_code == 201
        stall.armed.set()
        listing = pool.submit(client.get, "/v2/images")
        assert stall.holding.wait(GUARD_SECONDS), "the list query never started"

        try:
            assert_healthcheck_answers_while(server.url, listing)
        finally:
            stall.released.set()
        listed = listing.result(timeout=GUARD_SECONDS)

    assert listed.status_code == 200, listed.text
    assert sorted(image["name"] for image in listed.json()["images"]) == ["a", "b", "c"]
    engine.dispose()


def test_a_list_waiting_on_a_postgresql_lock_leaves_the_healthcheck_answering(
    postgresql_server: RunningServer,
) -> None:
    url = sa.make_url(postgresql_server.database_url)
    with (
        psycopg.connect(
            host=url.host, port=url.port, dbname=url.database, user=url.username
        ) as lock,
        httpx.Client(
            base_url=postgresql_server.url, headers=HEADERS, timeout=GUARD_SECONDS
        ) as client,
        ThreadPoolExecutor(max_workers=1) as pool,
    ):
        lock.execute("LOCK TABLE images IN ACCESS EXCLUSIVE MODE")  # until the commit below
        listing = pool.submit(client.get, "/v2/images")
        try:
            _wait_for_a_lock_wait(lock)
            assert_healthcheck_answers_while(postgresql_server.url, listing)
        finally:
            lock.commit()
        listed = listing.result(timeout=GUARD_SECONDS)

    assert listed.status_code == 200, listed.text


def _wait_for_a_lock_wait(lock: psycopg.Connection[Any]) -> None:
    """Until another session of the database waits for a lock (the list query)."""
    with psycopg.connect(lock.info.dsn, autocommit=True) as watcher:
        for _ in range(GUARD_SECONDS * 20):
            waiting = watcher.execute(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE datname = current_database() AND wait_event_type = 'Lock'"
            ).fetchone()
            if waiting and waiting[0]:
                return
            threading.Event().wait(0.05)
    raise AssertionError("the list query never waited for the lock")
