"""`database.statement_timeout_ms`: the database stops a statement that runs too long.

On PostgreSQL the server cancels it (statement_timeout); on SQLite a progress
handler interrupts it, also while its rows are being fetched. Either way the
caller gets `StatementTimedOut` (503), the connection stays usable, and
migrations run without the limit.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from skylens.db.engine import create_engine, current_revision, lift_statement_timeout, upgrade
from skylens.domain.errors import StatementTimedOut
from tests.support.servers import postgres_database

# Runs for minutes on either backend unless something stops it.
ENDLESS = {
    "sqlite": (
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) "
        "SELECT count(*) FROM n WHERE i < 0"
    ),
    "postgresql": "SELECT pg_sleep(600)",
}
# Many rows, each cheap: the work happens while they are fetched.
MANY_ROWS = (
    "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 100000000) "
    "SELECT i FROM n"
)


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'timeout.db'}"
        return
    with postgres_database(f"skylens_timeout_{os.getpid()}") as database_url:
        yield database_url


def test_a_statement_past_the_limit_is_cancelled_and_the_connection_lives_on(url: str) -> None:
    engine = create_engine(url, pool_size=1, statement_timeout_ms=200)
    with engine.connect() as connection:
        with pytest.raises(StatementTimedOut):
            connection.exec_driver_sql(ENDLESS[engine.dialect.name]).all()
        connection.rollback()
        assert connection.exec_driver_sql("SELECT 1").scalar() == 1
    engine.dispose()


def test_fetching_rows_counts_against_the_limit(url: str) -> None:
    engine = create_engine(url, pool_size=1, statement_timeout_ms=200)
    with engine.connect() as connection, pytest.raises(StatementTimedOut):
        for _row in connection.exec_driver_sql(MANY_ROWS):
            pass
    engine.dispose()


def test_without_a_limit_nothing_is_interrupted(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'free.db'}", pool_size=1)
    with engine.connect() as connection:
        count = connection.exec_driver_sql(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 300000) "
            "SELECT count(*) FROM n"
        ).scalar()
    assert count == 300000
    engine.dispose()


# Longer than the 200 ms limit, and then done.
SLOW = {
    "sqlite": (
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1500000) "
        "SELECT count(*) FROM n"
    ),
    "postgresql": "SELECT count(*) FROM (SELECT pg_sleep(0.6)) AS slept",
}


def test_a_connection_running_migrations_has_no_limit(url: str) -> None:
    engine = create_engine(url, pool_size=1, statement_timeout_ms=200)
    with engine.begin() as connection:
        lift_statement_timeout(connection)
        assert connection.exec_driver_sql(SLOW[engine.dialect.name]).scalar() in (1, 1500000)
    with engine.connect() as connection, pytest.raises(StatementTimedOut):
        connection.exec_driver_sql(SLOW[engine.dialect.name]).all()
    upgrade(engine)  # the migrations' connection lifts the limit the same way
    assert current_revision(engine) is not None
    engine.dispose()
