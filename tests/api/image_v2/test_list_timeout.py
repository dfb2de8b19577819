"""`database.statement_timeout_ms`: a list whose statement runs too long is cancelled.

The caller gets 503 (the server is too busy for the request now; it may succeed
later, or with fewer filters), the database stops working on it, and the next
request is served as usual. PostgreSQL cancels the statement itself; SQLite is
interrupted by a progress handler.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest
import sqlalchemy as sa

from tests.support.errors import assert_error
from tests.support.identities import member_of, new_project
from tests.support.servers import RunningServer, dedicated_server

MESSAGE = (
    "The request took too long and was cancelled. Try again later, "
    "or with fewer filters or a smaller limit."
)
IMAGES = 400_000  # a list that must look at each takes ~0.2 s here, 4x the limit


@pytest.fixture(params=["sqlite", "postgresql"])
def limited(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[RunningServer]:
    """A server whose statements may run for 50 ms."""
    options = {"SKYLENS_DATABASE_STATEMENT_TIMEOUT_MS": "50"}
    with dedicated_server(tmp_path, request.param, extra_env=options) as server:
        yield server


def _seed_sqlite(server: RunningServer, owner: str) -> None:
    """IMAGES images of `owner`, written in one statement (a second or two)."""
    engine = sa.create_engine(server.database_url)
    with engine.begin() as connection:
        connection.exec_driver_sql(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?) "
            "INSERT INTO images (id, name, status, visibility, protected, os_hidden, owner, "
            "min_ram, min_disk, created_at, updated_at, version) "
            "SELECT printf('%08d-0000-4000-8000-000000000000', i), 'seeded', 'active', "
            "'private', 0, 0, ?, 0, 0, datetime('2020-01-01', '+' || i || ' seconds'), "
            "'2020-01-01', 1 FROM n",
            (IMAGES, owner),
        )
    engine.dispose()


def test_a_list_past_the_statement_timeout_is_503_and_the_next_is_served(
    limited: RunningServer,
) -> None:
    project = new_project()
    headers = {**member_of(project).headers, "Accept": "application/json"}
    # A filter no image matches, so every one of the project's images is looked at.
    slow = {"no_such_property": "x"}
    with httpx.Client(base_url=limited.url, headers=headers, timeout=30) as client:
        if limited.backend == "sqlite":
            _seed_sqlite(limited, project)
            response = client.get("/v2/images", params=slow)
        else:
            # A lock held elsewhere keeps the statement waiting past the limit.
            url = sa.make_url(limited.database_url)
            with psycopg.connect(
                host=url.host, port=url.port, dbname=url.database, user=url.username
            ) as locker:
                locker.execute("LOCK TABLE images IN ACCESS EXCLUSIVE MODE")
                response = client.get("/v2/images", params=slow)
                locker.rollback()

        assert_error(response, 503, MESSAGE)
        assert client.get("/v2/images", params={"limit": "1"}).status_code == 200
        assert client.get("/healthcheck").status_code == 200
