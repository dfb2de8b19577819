"""The catalogue's hot reads on PostgreSQL, awaited on the event loop.

A show through SQLAlchemy's engine on a worker thread costs about 500 us of CPU:
the pool's checkout (its pre-ping is a round trip of its own), the execution
context, the thread hop and the GIL the threads then fight over. The same
statement on psycopg's asyncio connection, through a cursor the connection keeps,
costs about a quarter of that (120 us, of which 20 would go to a new cursor each
time). So `show` and
`list` run the statements `db/image_rows.py` builds (compiled by SQLAlchemy,
once for a show) straight on psycopg's `AsyncConnection`s, kept in a small pool
of their own, and nothing else does. Writes, and every read on SQLite (which
has no asynchronous driver and must stay off the event loop), keep the engine.

What the engine's connections do, these do too: the statement timeout and
`plan_cache_mode` are set as each connection opens; a cancelled statement is
`StatementTimedOut`; a database that cannot be reached is `DatabaseUnavailable`,
logged in one line; a connection the server closed (a restart) is replaced and
the read retried once, unseen by the caller. A request cancelled mid-statement
(its client went away) cancels the statement on the server, and its connection
is dropped rather than reused.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any

import psycopg
import sqlalchemy as sa
from psycopg import pq
from sqlalchemy.dialects.postgresql import psycopg as psycopg_dialect
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.util import LRUCache

from skylens.db.engine import unavailable
from skylens.db.image_rows import GET, MEMBERSHIP, ListReading, image_of
from skylens.domain.access import RequestContext
from skylens.domain.errors import StatementTimedOut
from skylens.domain.images import Image, MemberStatus
from skylens.domain.listing import ImagePage, ListQuery

# (Its constructor carries no annotations.)
_DIALECT: sa.Dialect = psycopg_dialect.dialect()  # type: ignore[no-untyped-call]
# How long a read waits for a connection when all `size` are busy (the engine's too).
_CHECKOUT_TIMEOUT_SECONDS = 30.0

Cursor = psycopg.AsyncCursor[tuple[Any, ...]]


# Compiled lists by the shape of their statement (SQLAlchemy's cache key: the same
# for the same filters, sort and marker, whatever their values), as the engine
# keeps them: compiling costs twice what building the statement does.
_COMPILED: LRUCache[Any, SQLCompiler] = LRUCache(500)


def _compiled(statement: sa.Select[Any]) -> tuple[str, dict[str, Any]]:
    """`statement` as SQL for psycopg and its bound values."""
    # `_generate_cache_key` is what SQLAlchemy's own caching (and its documented
    # caching recipes) build on; `construct_params` maps a cached compilation's
    # parameters onto this statement's values through it.
    key = statement._generate_cache_key()
    assert key is not None, "every statement built here is cacheable"
    compiled = _COMPILED.get(key.key)
    if compiled is None:
        compiled = _COMPILED[key.key] = statement.compile(dialect=_DIALECT, cache_key=key)
    params = compiled.construct_params(extracted_parameters=key.bindparams)
    expanded = compiled.construct_expanded_state(params)  # IN lists, as many as given
    return expanded.statement, dict(expanded.parameters)


_GET_SQL = str(GET.compile(dialect=_DIALECT))
_MEMBERSHIP_SQL = str(MEMBERSHIP.compile(dialect=_DIALECT))


class ConnectionPool:
    """At most `size` autocommit connections to `conninfo`, opened as needed, each
    lent out with its one cursor: making a cursor costs a fifth of a show's
    statement, so a connection keeps its own (and the last result it fetched).

    Unlike psycopg_pool's, a checkout fails at once when the database cannot be
    reached (rather than waiting for it to come back): a request then answers 503
    straight away, as with the engine's pool.
    """

    def __init__(self, conninfo: str, size: int, *, statement_timeout_ms: int = 0) -> None:
        self._conninfo = conninfo
        self._size = size
        # Sent with the connection request: no round trip of their own. psycopg
        # prepares statements it sees repeatedly; a list filtered on a common
        # property value must not run the generic plan made for a rare one. No JIT:
        # a list of 1,000 is costed above jit_above_cost (its per-row subqueries
        # count as if the whole index were walked), and compiling its expressions
        # took 49 ms of a 158 ms statement at a million images; these statements
        # are short, JIT pays off on long analytic ones. No parallel workers either:
        # starting two for a shared list of 8 rows took 16 ms, and a worker's many
        # concurrent requests would each take a share of the server's workers.
        self._options = (
            f"-c statement_timeout={max(statement_timeout_ms, 0):d} "
            "-c plan_cache_mode=force_custom_plan -c jit=off "
            "-c max_parallel_workers_per_gather=0"
        )
        self._idle: collections.deque[Cursor] = collections.deque()
        self._opened = 0  # idle and in use
        self._waiting = 0  # checkouts waiting for a connection to come back
        self._returned = asyncio.Condition()

    @asynccontextmanager
    async def cursor(self) -> AsyncIterator[Cursor]:
        cursor = await self.checkout()
        try:
            yield cursor
        finally:
            await self.checkin(cursor)

    async def checkout(self) -> Cursor:
        """A pooled connection's cursor; give it back with `checkin`."""
        while True:
            if self._idle:
                return self._idle.pop()
            if self._opened < self._size:
                self._opened += 1
                try:
                    connection = await psycopg.AsyncConnection.connect(
                        self._conninfo, autocommit=True, options=self._options
                    )
                except BaseException:
                    self._opened -= 1
                    raise
                return connection.cursor()
            self._waiting += 1
            try:
                async with self._returned:
                    await asyncio.wait_for(self._returned.wait(), _CHECKOUT_TIMEOUT_SECONDS)
            finally:
                self._waiting -= 1

    async def checkin(self, cursor: Cursor) -> None:
        connection = cursor.connection
        if connection.closed or connection.info.transaction_status != pq.TransactionStatus.IDLE:
            # Lost, or cut off mid-statement (the request was cancelled): not reusable.
            self._opened -= 1
            await connection.close()
        else:
            self._idle.append(cursor)
        if self._waiting:
            async with self._returned:
                self._returned.notify()

    def discard_idle(self) -> None:
        """Forget the idle connections (after one was found closed by the server,
        the others likely were too)."""
        self._opened -= len(self._idle)
        self._idle.clear()

    async def close(self) -> None:
        while self._idle:
            self._opened -= 1
            await self._idle.pop().connection.close()

    @property
    def size(self) -> int:
        """The most connections it opens."""
        return self._size

    @property
    def in_use(self) -> int:
        """Its connections checked out (those opening included)."""
        return self._opened - len(self._idle)


class PostgresImageReads:
    """`ImageReads` on PostgreSQL: show, membership and list without a thread."""

    def __init__(self, pool: ConnectionPool) -> None:
        self._pool = pool

    async def get(self, image_id: str) -> Image | None:
        row = await self._run(_one, _GET_SQL, {"image_id": image_id})
        return None if row is None else image_of(row, row[-2], row[-1])

    async def membership(self, image_id: str, project_id: str) -> MemberStatus | None:
        row = await self._run(_one, _MEMBERSHIP_SQL, {"image_id": image_id, "member": project_id})
        return MemberStatus(row[0]) if row is not None and row[0] else None

    async def list(self, context: RequestContext, query: ListQuery) -> ImagePage:
        reading = ListReading(context, query, "postgresql")

        async def run(cursor: Cursor) -> None:
            while reading.statement is not None:
                reading.take(await _all(cursor, *_compiled(reading.statement)))

        if reading.statement is not None:
            await self._attempt(run)
        return reading.page

    async def _run(
        self,
        fetch: Callable[[Cursor, str, dict[str, Any]], Any],
        sql: str,
        params: dict[str, Any],
    ) -> Any:
        return await self._attempt(lambda cursor: fetch(cursor, sql, params))

    async def _attempt(self, work: Callable[[Cursor], Any]) -> Any:
        """`work` on a pooled connection's cursor; once more on a new connection if
        the server had closed it (a restart since it was last used)."""
        for retry in (True, False):
            try:
                cursor = await self._pool.checkout()
                try:
                    return await work(cursor)
                except psycopg.errors.QueryCanceled as error:
                    raise StatementTimedOut() from error
                except psycopg.OperationalError:
                    if retry and cursor.connection.closed:
                        self._pool.discard_idle()
                        continue
                    raise
                finally:
                    await self._pool.checkin(cursor)
            except (psycopg.OperationalError, TimeoutError) as error:
                raise unavailable(error) from error
        raise AssertionError("unreachable: the second attempt returns or raises")


async def _one(cursor: Cursor, sql: str, params: dict[str, Any]) -> tuple[Any, ...] | None:
    await cursor.execute(sql, params)
    return await cursor.fetchone()


async def _all(cursor: Cursor, sql: str, params: dict[str, Any]) -> list[tuple[Any, ...]]:
    await cursor.execute(sql, params)
    return await cursor.fetchall()


def conninfo_of(url: str | sa.URL) -> str:
    """The libpq connection string for a SQLAlchemy PostgreSQL URL."""
    parsed = sa.make_url(url)
    parts = {
        "host": parsed.host,
        "port": parsed.port,
        "dbname": parsed.database,
        "user": parsed.username,
        "password": parsed.password,
        **{key: value for key, value in parsed.query.items() if isinstance(value, str)},
    }
    return psycopg.conninfo.make_conninfo(
        **{key: str(value) for key, value in parts.items() if value is not None}
    )


__all__: Sequence[str] = ("ConnectionPool", "PostgresImageReads", "conninfo_of")
