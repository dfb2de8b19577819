"""`PostgresImageReads`: show and list awaited on psycopg's asyncio connections.

They must answer exactly as the repository does (the same images, the same pages,
the same errors), keep the engine's guarantees (statement timeout, one-line
`DatabaseUnavailable`, a restart unseen), and never reuse a connection whose
statement was cut off.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa

from skylens.db.engine import create_engine, upgrade
from skylens.db.reads import ConnectionPool, PostgresImageReads, conninfo_of
from skylens.db.repository import SqlImageRepository
from skylens.domain.access import RequestContext
from skylens.domain.errors import DatabaseUnavailable, InvalidFilter, StatementTimedOut
from skylens.domain.images import Image, ImageStatus, MemberStatus, Visibility, utc_now
from skylens.domain.listing import ListQuery, SortDirection, SortKey, complete_sort
from skylens.domain.members import ImageMember
from tests.support.servers import postgres_admin, postgres_database


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    with postgres_database(f"skylens_reads_{worker}_{os.getpid()}") as database_url:
        engine = create_engine(database_url, pool_size=1)
        upgrade(engine)
        engine.dispose()
        yield database_url


@pytest.fixture
def repository(url: str) -> Iterator[SqlImageRepository]:
    engine = create_engine(url, pool_size=2)
    yield SqlImageRepository(engine)
    engine.dispose()


def _run(url: str, work: Any, *, size: int = 2, timeout_ms: int = 0) -> Any:
    """`work(reads, pool)` on a pool of its own, closed afterwards."""

    async def main() -> Any:
        pool = ConnectionPool(conninfo_of(url), size, statement_timeout_ms=timeout_ms)
        try:
            return await work(PostgresImageReads(pool), pool)
        finally:
            await pool.close()

    return asyncio.run(main())


def _image(owner: str, name: str, **attributes: Any) -> Image:
    now = utc_now()
    values: dict[str, Any] = {
        "status": ImageStatus.QUEUED,
        "visibility": Visibility.PRIVATE,
        "created_at": now,
        "updated_at": now,
        **attributes,
    }
    return Image(id=str(uuid.uuid4()), name=name, owner=owner, **values)


def test_a_show_reads_what_the_repository_reads(url: str, repository: SqlImageRepository) -> None:
    image = _image(
        "reads-show", "shown", tags=frozenset({"a", "b"}), properties={"os_distro": "x", "k": None}
    )
    repository.add(image)

    found = _run(url, lambda reads, _pool: reads.get(image.id))

    assert found == repository.get(image.id) == image
    assert _run(url, lambda reads, _pool: reads.get(str(uuid.uuid4()))) is None


def test_a_membership_reads_what_the_repository_reads(
    url: str, repository: SqlImageRepository
) -> None:
    image = _image("reads-owner", "shared", visibility=Visibility.SHARED)
    repository.add(image)
    now = utc_now()
    repository.add_member(
        ImageMember(image.id, "reads-member", MemberStatus.ACCEPTED, now, now), quota=-1
    )

    async def both(reads: PostgresImageReads, _pool: ConnectionPool) -> tuple[Any, Any]:
        return (
            await reads.membership(image.id, "reads-member"),
            await reads.membership(image.id, "reads-stranger"),
        )

    assert _run(url, both) == (MemberStatus.ACCEPTED, None)


def test_pages_are_the_repositorys_pages_marker_filters_and_sort_included(
    url: str, repository: SqlImageRepository
) -> None:
    owner = f"reads-list-{uuid.uuid4().hex[:8]}"
    for n in range(7):
        repository.add(_image(owner, f"n{n % 3}", properties={"parity": str(n % 2)}))
    context = RequestContext.create(owner, "user", ["member", "reader"])
    by_name = complete_sort((SortKey("name", SortDirection.ASC),), SortDirection.ASC)
    queries = [
        ListQuery(limit=3, sort=complete_sort((), SortDirection.DESC)),
        ListQuery(limit=2, sort=by_name, properties={"parity": "1"}),
        ListQuery(limit=0, sort=by_name),
    ]
    for query in queries:
        marker = None
        while True:
            paged = dataclasses.replace(query, marker=marker)
            awaited = _run(url, lambda reads, _pool, q=paged: reads.list(context, q))
            assert awaited == repository.list(context, paged)
            if awaited.next_marker is None:
                break
            marker = awaited.next_marker

    unknown = ListQuery(limit=2, sort=by_name, marker=str(uuid.uuid4()))
    with pytest.raises(InvalidFilter):
        _run(url, lambda reads, _pool: reads.list(context, unknown))


def test_a_statement_past_the_limit_is_statement_timed_out_and_the_pool_lives_on(
    url: str,
) -> None:
    # A lock held elsewhere keeps the show waiting past the limit.
    with psycopg.connect(conninfo_of(url)) as locker:
        locker.execute("LOCK TABLE images IN ACCESS EXCLUSIVE MODE")

        async def timed_out(reads: PostgresImageReads, _pool: ConnectionPool) -> None:
            with pytest.raises(StatementTimedOut):
                await reads.get(str(uuid.uuid4()))

        _run(url, timed_out, size=1, timeout_ms=100)
        locker.rollback()

    assert _run(url, lambda reads, _pool: reads.get(str(uuid.uuid4())), size=1) is None


@pytest.mark.parametrize("read", ["show", "list after a marker"])
def test_connections_the_server_closed_are_replaced_unseen(
    url: str, repository: SqlImageRepository, read: str
) -> None:
    owner = f"reads-restart-{uuid.uuid4().hex[:8]}"
    image, marker = _image(owner, "kept"), _image(owner, "before")
    repository.add(image)
    repository.add(marker)
    name = sa.make_url(url).database
    context = RequestContext.create(owner, "user", ["member", "reader"])
    by_name = complete_sort((SortKey("name", SortDirection.ASC),), SortDirection.ASC)
    after_marker = ListQuery(limit=5, sort=by_name, marker=marker.id)

    async def across_a_restart(reads: PostgresImageReads, pool: ConnectionPool) -> Any:
        await asyncio.gather(reads.get(image.id), reads.get(image.id))  # two pooled
        with postgres_admin() as admin:
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = %s AND pid <> pg_backend_pid() AND application_name = ''",
                (name,),
            )
        if read == "show":
            return await reads.get(image.id)
        return await reads.list(context, after_marker)

    page = repository.list(context, after_marker)
    assert page.images == (image,)
    expected = image if read == "show" else page
    assert _run(url, across_a_restart) == expected


def test_a_database_that_refuses_connections_is_unavailable(url: str) -> None:
    name = sa.make_url(url).database
    with postgres_admin() as admin:
        admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
        try:

            async def refused(reads: PostgresImageReads, _pool: ConnectionPool) -> None:
                with pytest.raises(DatabaseUnavailable):
                    await reads.get(str(uuid.uuid4()))

            _run(url, refused)
        finally:
            admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')


def test_a_cancelled_read_cancels_its_statement_and_the_pool_serves_on(url: str) -> None:
    name = sa.make_url(url).database

    async def cancelled(reads: PostgresImageReads, _pool: ConnectionPool) -> tuple[Any, ...]:
        with psycopg.connect(conninfo_of(url)) as locker:
            locker.execute("LOCK TABLE images IN ACCESS EXCLUSIVE MODE")
            waiting = asyncio.create_task(reads.get(str(uuid.uuid4())))
            await asyncio.sleep(0.5)  # the statement is waiting for the lock
            waiting.cancel()
            with pytest.raises(asyncio.CancelledError):
                await waiting
            # No statement of the cancelled read is left waiting on the server.
            left = locker.execute(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE datname = %s AND wait_event_type = 'Lock'",
                (name,),
            ).fetchone()
            locker.rollback()
        assert left is not None
        return (left[0], await reads.get(str(uuid.uuid4())))

    assert _run(url, cancelled, size=1) == (0, None)
