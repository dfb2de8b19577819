"""The list query keeps the plans that make it fast on SQLite and PostgreSQL.

Without statistics, SQLite would answer a project's list by looking up every
term of the visibility OR in its own index and sorting all the rows found (380 ms
at 100,000 images). The plan must walk the sort order's index instead and stop
after `limit` rows. The statement checked is the one the repository executes.

PostgreSQL, left to itself, hashes every membership of the project before the
first row (a "hashed SubPlan": 10-20 ms at a million images for 25 rows); the
page must probe the members' index per row instead.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from skylens.db.engine import create_engine, upgrade
from skylens.db.image_rows import page_statement
from skylens.db.reads import ConnectionPool, conninfo_of
from skylens.db.repository import SqlImageRepository
from skylens.domain.access import RequestContext
from skylens.domain.images import MemberStatus, Visibility
from skylens.domain.listing import ListQuery, SortDirection, SortKey, complete_sort
from tests.support.servers import postgres_database

MEMBER = RequestContext.create("a-project", "a-user", ["member", "reader"])
FEW_PROJECT = RequestContext.create("few-project", "a-user", ["member", "reader"])


def _plan_of_list(database: Path, query: ListQuery) -> list[str]:
    engine = create_engine(f"sqlite:///{database}", pool_size=1)
    upgrade(engine)
    executed: list[tuple[str, Any]] = []

    @sa.event.listens_for(engine, "before_cursor_execute")
    def capture(*args: Any) -> None:
        executed.append((args[2], args[3]))

    SqlImageRepository(engine).list(MEMBER, query)
    statement, parameters = executed[-1]
    with engine.connect() as connection:
        plan = connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters)
        steps = [row[3] for row in plan]
    engine.dispose()
    return steps


@pytest.mark.parametrize(
    ("sort", "index"),
    [
        ((), "ix_images_created_at_id"),
        ((SortKey("name", SortDirection.ASC),), "ix_images_name_created_at_id"),
    ],
)
def test_a_project_list_walks_the_sort_index(
    tmp_path: Path, sort: tuple[SortKey, ...], index: str
) -> None:
    direction = sort[0].direction if sort else SortDirection.DESC
    query = ListQuery(limit=25, sort=complete_sort(sort, direction))
    steps = _plan_of_list(tmp_path / "plans.db", query)
    assert not any("MULTI-INDEX OR" in step for step in steps), steps
    assert any(step.startswith("SCAN images USING INDEX " + index) for step in steps), steps


def test_a_property_filter_probes_each_candidate(tmp_path: Path) -> None:
    query = ListQuery(limit=25, sort=complete_sort(()), properties={"os_distro": "ubuntu"})
    steps = _plan_of_list(tmp_path / "plans.db", query)
    assert not any("MULTI-INDEX OR" in step for step in steps), steps
    assert any(step.startswith("SCAN images USING INDEX ix_images_created_at_id") for step in steps)


# 20,000 images, a quarter each public, private, shared and community, created a
# second apart; the member project is an accepted member of 1,000 shared ones, and
# FEW_PROJECT of three.
_SEED = """
INSERT INTO images (id, name, status, visibility, protected, os_hidden, owner,
                    min_ram, min_disk, created_at, updated_at, version)
SELECT 'image-' || n, 'image ' || n, 'active',
       (ARRAY['public', 'private', 'shared', 'community'])[n % 4 + 1],
       false, false, 'owner-' || (n % 50), 0, 0,
       timestamp '2026-01-01' + n * interval '1 second',
       timestamp '2026-01-01' + n * interval '1 second', 1
FROM generate_series(1, 20000) AS n;
INSERT INTO image_members (image_id, member, status, created_at, updated_at)
SELECT 'image-' || n, 'a-project', 'accepted', now(), now()
FROM generate_series(3, 20000, 4) AS n WHERE n % 5 = 0;
INSERT INTO image_members (image_id, member, status, created_at, updated_at)
SELECT 'image-' || n, 'project-' || (n % 7), 'pending', now(), now()
FROM generate_series(3, 20000, 4) AS n;
INSERT INTO image_members (image_id, member, status, created_at, updated_at)
SELECT 'image-' || n, 'few-project', 'accepted', now(), now()
FROM generate_series(4003, 12003, 4000) AS n;
ANALYZE images;
ANALYZE image_members;
"""


@pytest.fixture(scope="module")
def seeded_url() -> Iterator[str]:
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    with postgres_database(f"skylens_plans_{worker}_{os.getpid()}") as url:
        engine = create_engine(url, pool_size=1)
        upgrade(engine)
        engine.dispose()
        with psycopg.connect(conninfo_of(url), autocommit=True) as connection:
            connection.execute(_SEED)
        yield url


def _postgresql_plan(url: str, query: ListQuery, context: RequestContext = MEMBER) -> str:
    statement = page_statement(context, query, "postgresql", None).compile(
        dialect=postgresql.dialect(),  # type: ignore[no-untyped-call]
        compile_kwargs={"literal_binds": True},
    )
    with psycopg.connect(conninfo_of(url)) as connection:
        plan = connection.execute(f"EXPLAIN {statement}").fetchall()
    return "\n".join(row[0] for row in plan)


@pytest.mark.postgres
@pytest.mark.parametrize("member_status", [MemberStatus.ACCEPTED, None])
def test_a_postgresql_page_probes_memberships_per_row(
    seeded_url: str, member_status: MemberStatus | None
) -> None:
    query = ListQuery(limit=25, sort=complete_sort(()), member_status=member_status)
    plan = _postgresql_plan(seeded_url, query)
    assert "hashed SubPlan" not in plan, plan
    assert "Index Scan Backward using ix_images_created_at_id on images" in plan, plan


@pytest.mark.postgres
@pytest.mark.parametrize("member_status", [MemberStatus.ACCEPTED, None])
def test_a_shared_list_starts_from_few_memberships(
    seeded_url: str, member_status: MemberStatus | None
) -> None:
    """`visibility=shared` for a member of three images: the plan starts from the
    project's memberships, not from a walk over every shared image that finds
    three (1.8 s at a million images)."""
    query = ListQuery(
        limit=25, sort=complete_sort(()), visibility=Visibility.SHARED, member_status=member_status
    )
    plan = _postgresql_plan(seeded_url, query, FEW_PROJECT)
    assert "ix_images_visibility_created_at" not in plan, plan
    assert "ix_images_created_at_id" not in plan, plan
    conditions = [line for line in plan.splitlines() if "Index Cond" in line]
    assert any("member" in line and "'few-project'" in line for line in conditions), plan


@pytest.mark.postgres
def test_the_read_pool_neither_jits_nor_plans_parallel_workers(seeded_url: str) -> None:
    """A page of 1,000 is costed above jit_above_cost; compiling it took a third
    of the statement's time. Two parallel workers for a list of 8 took 16 ms."""

    async def settings() -> Any:
        pool = ConnectionPool(conninfo_of(seeded_url), 1)
        try:
            async with pool.cursor() as cursor:
                await cursor.execute(
                    "SELECT current_setting('jit'), "
                    "current_setting('max_parallel_workers_per_gather')"
                )
                return await cursor.fetchone()
        finally:
            await pool.close()

    assert asyncio.run(settings()) == ("off", "0")
