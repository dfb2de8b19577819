"""Engines for the embedded SQLite default and for PostgreSQL, and migrations."""

from __future__ import annotations

import contextlib
import functools
import logging
import math
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import sqlalchemy as sa
from alembic import command
from alembic.config import Config

from skylens.config import ConfigError
from skylens.domain.errors import DatabaseUnavailable, StatementTimedOut

_MIGRATIONS = Path(__file__).parent / "migrations"
# sqlite3's names for a database another connection holds past the busy timeout.
_SQLITE_BUSY = ("SQLITE_BUSY", "SQLITE_LOCKED")
# SQLite asks whether to go on every this many virtual machine steps (well under a
# millisecond of work; COMMIT and other short statements never reach it).
_SQLITE_STEPS = 10_000
# The execution option that lets a connection's statements run for as long as they take.
_UNLIMITED = "skylens_unlimited_statements"

log = logging.getLogger("skylens.db")


def create_engine(url: str, *, pool_size: int = 10, statement_timeout_ms: int = 0) -> sa.Engine:
    """An engine tuned for the backend named by `url`.

    `statement_timeout_ms` > 0: the database cancels any statement running longer,
    and the caller gets `StatementTimedOut` (PostgreSQL's statement_timeout; on
    SQLite a progress handler interrupts it), so no request's query outlives it.
    """
    parsed = sa.make_url(url)
    if parsed.get_backend_name() == "sqlite":
        engine = _sqlite_engine(parsed, pool_size)
        if statement_timeout_ms > 0:
            _limit_sqlite_statements(engine, statement_timeout_ms / 1000)
    else:
        if parsed.drivername == "postgresql":
            parsed = parsed.set(drivername="postgresql+psycopg")
        engine = sa.create_engine(
            parsed, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True
        )
        if engine.dialect.name == "postgresql":
            configure = functools.partial(_configure_postgresql, timeout_ms=statement_timeout_ms)
            sa.event.listen(engine, "connect", configure)
    sa.event.listen(engine, "handle_error", _timed_out)
    return engine


def _configure_postgresql(dbapi_connection: Any, _record: Any, *, timeout_ms: int) -> None:
    # psycopg prepares statements it sees repeatedly, and PostgreSQL then soon
    # plans them once for any parameter. A list filtered on a common property
    # value (os_distro=ubuntu) must not run the plan made for a rare one.
    dbapi_connection.execute("SET plan_cache_mode = force_custom_plan")
    dbapi_connection.execute(f"SET statement_timeout = {max(timeout_ms, 0):d}")
    dbapi_connection.commit()


class _Deadline:
    """When the statement a SQLite connection runs must stop."""

    __slots__ = ("at",)

    def __init__(self) -> None:
        self.at = math.inf

    def passed(self) -> bool:  # the progress handler: true interrupts the statement
        return time.monotonic() > self.at


def _limit_sqlite_statements(engine: sa.Engine, seconds: float) -> None:
    # The deadline is set as each statement starts and holds while its rows are
    # fetched (SQLite runs the statement step by step as they are read).
    @sa.event.listens_for(engine, "connect")
    def _install(dbapi_connection: Any, record: Any) -> None:
        deadline = record.info["deadline"] = _Deadline()
        dbapi_connection.set_progress_handler(deadline.passed, _SQLITE_STEPS)

    @sa.event.listens_for(engine, "before_cursor_execute")
    def _start(connection: sa.Connection, *_args: Any) -> None:
        unlimited = connection.get_execution_options().get(_UNLIMITED, False)
        connection.info["deadline"].at = math.inf if unlimited else time.monotonic() + seconds


def _timed_out(context: sa.engine.ExceptionContext) -> None:
    error = context.original_exception
    if isinstance(error, psycopg.errors.QueryCanceled) or (
        isinstance(error, sqlite3.OperationalError) and str(error) == "interrupted"
    ):
        raise StatementTimedOut() from error


def lift_statement_timeout(connection: sa.Connection) -> None:
    """Let `connection`'s statements run as long as they need, until it closes
    (PostgreSQL: until its transaction ends): migrations are never cut short."""
    connection.execution_options(**{_UNLIMITED: True})
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql("SET LOCAL statement_timeout = 0")


def autocommit_reads(engine: sa.Engine) -> sa.Engine:
    """The engine to run reads on that need no transaction of their own.

    On PostgreSQL, autocommit saves a BEGIN and a ROLLBACK round trip per read
    and lets psycopg prepare statements it sees repeatedly. pysqlite already
    reads outside transactions; switching its connections costs more than it saves.
    """
    if engine.dialect.name == "sqlite":
        return engine
    return engine.execution_options(isolation_level="AUTOCOMMIT")


@contextlib.contextmanager
def connected(engine: sa.Engine) -> Iterator[sa.Connection]:
    """A pooled connection, as `engine.connect()`, whose loss is `DatabaseUnavailable`."""
    connection = _checked_out(engine)
    with connection:
        try:
            yield connection
        except sa.exc.DBAPIError as error:
            if not _lost(error):
                raise
            raise unavailable(error) from error


@contextlib.contextmanager
def transaction(engine: sa.Engine) -> Iterator[sa.Connection]:
    """A connection in a transaction, as `engine.begin()`, whose loss is
    `DatabaseUnavailable`; the transaction commits when the block ends."""
    connection = _checked_out(engine)
    with connection:
        try:
            with connection.begin():
                yield connection
        except sa.exc.DBAPIError as error:
            if not _lost(error):
                raise
            raise unavailable(error) from error


def _checked_out(engine: sa.Engine) -> sa.Connection:
    # Whatever stops a checkout (refused, the server gone, the database not accepting
    # connections, the pool's timeout) leaves the request nothing to run on.
    try:
        return engine.connect()
    except (sa.exc.DBAPIError, sa.exc.TimeoutError) as error:
        raise unavailable(error) from error


def _lost(error: sa.exc.DBAPIError) -> bool:
    """Whether a statement failed for want of the database rather than for itself."""
    if error.connection_invalidated:
        return True
    name = getattr(error.orig, "sqlite_errorname", "")
    return isinstance(name, str) and name.startswith(_SQLITE_BUSY)


def unavailable(error: BaseException) -> DatabaseUnavailable:
    """The domain error for `error` (SQLAlchemy's, or a driver's own), logged as one
    line: an outage must not fill the log with a traceback per request."""
    cause = error.orig if isinstance(error, sa.exc.DBAPIError) else error
    reason = f"{type(cause).__name__}: {first_line(cause)}"
    log.warning("database unavailable: %s", reason)
    return DatabaseUnavailable(reason)


def _sqlite_engine(url: sa.URL, pool_size: int) -> sa.Engine:
    if url.database and url.database != ":memory:":
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)
    engine = sa.create_engine(
        url,
        connect_args={"check_same_thread": False, "timeout": 30},
        pool_size=pool_size,
        max_overflow=pool_size,
    )

    @sa.event.listens_for(engine, "connect")
    def _configure(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        # WAL lets readers run while one writer commits; NORMAL is durable in WAL
        # mode against process crashes (the last commits may roll back on power loss).
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    return engine


def close_database(engine: sa.Engine) -> None:
    """On a clean stop: move an SQLite database's write-ahead log into the database
    file (`wal_checkpoint(TRUNCATE)`), so the file alone holds everything (a copy of
    it is a backup), then close every pooled connection."""
    if engine.dialect.name == "sqlite":
        try:
            with engine.connect() as connection:
                connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        except sa.exc.SQLAlchemyError as error:
            log.warning("the database's write-ahead log was not checkpointed: %s", error)
    engine.dispose()


def alembic_config(engine: sa.Engine) -> Config:
    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    config.attributes["engine"] = engine
    return config


def upgrade(engine: sa.Engine, revision: str = "head") -> None:
    """Bring the schema up to `revision` (idempotent)."""
    command.upgrade(alembic_config(engine), revision)


def downgrade(engine: sa.Engine, revision: str) -> None:
    """Take the schema down to `revision` (`base`: empty; `-N`: N steps back).
    A revision that does not exist, or is not below the current one, is
    `DatabaseSetupError` naming it."""
    from alembic.util.exc import CommandError

    current = current_revision(engine)
    try:
        command.downgrade(alembic_config(engine), revision)
    except CommandError as error:
        raise DatabaseSetupError(
            f"cannot downgrade {redacted(engine.url)} from revision {current or 'none'} "
            f"to {revision}: {first_line(error)}"
        ) from None


def current_revision(engine: sa.Engine) -> str | None:
    with engine.connect() as connection:
        return revision_of(connection)


def revision_of(connection: sa.Connection) -> str | None:
    """The schema revision the database is at; None for an empty database."""
    from alembic.runtime.migration import MigrationContext

    return MigrationContext.configure(connection).get_current_revision()


@functools.cache
def head_revision() -> str:
    """The newest migration: the schema revision this release works with."""
    from alembic.script import ScriptDirectory

    head = ScriptDirectory(str(_MIGRATIONS)).get_current_head()
    assert head is not None
    return head


def is_past_revision(revision: str | None) -> bool:
    """Whether `revision` is this release's head or one before it (None: an empty
    database), which `upgrade` can bring to the head; False for one it does not know
    (a newer release's)."""
    from alembic.script import ScriptDirectory

    if revision is None:
        return True
    return any(
        script.revision == revision for script in ScriptDirectory(str(_MIGRATIONS)).walk_revisions()
    )


class DatabaseSetupError(ConfigError):
    """The configured database cannot be used: it does not exist, cannot be reached,
    or is not at this release's schema. The message is one line, for an operator."""

    label = "database error"


def check_schema(engine: sa.Engine) -> None:
    """Refuse a database not at `head_revision()` (migrations are left to
    `skylens db upgrade`)."""
    with setup_errors(engine.url):
        current = current_revision(engine)
    if current != head_revision():
        raise DatabaseSetupError(
            f"the database {redacted(engine.url)} is at schema revision {current or 'none'}, "
            f"this release needs {head_revision()}: run `skylens db upgrade` first "
            "(or set database.auto_upgrade = true)"
        )


@contextlib.contextmanager
def setup_errors(url: str | sa.URL) -> Iterator[None]:
    """Turn what stops a command from using the database (a database that does not
    exist, a host that does not answer, a file that cannot be made) into
    `DatabaseSetupError`: its driver's first line, the URL without its password."""
    try:
        yield
    except (sa.exc.DBAPIError, sa.exc.TimeoutError) as error:
        cause = error.orig if isinstance(error, sa.exc.DBAPIError) else error
        raise DatabaseSetupError(f"cannot use {redacted(url)}: {first_line(cause)}") from None
    except (OSError, sa.exc.ArgumentError, ValueError) as error:
        raise DatabaseSetupError(f"cannot use {redacted(url)}: {error}") from None


def redacted(url: str | sa.URL) -> str:
    """`url` with its password hidden (or a description, if it does not parse)."""
    try:
        return sa.make_url(url).render_as_string(hide_password=True)
    except (sa.exc.ArgumentError, ValueError):
        return "the configured database URL (which does not parse)"


def first_line(error: BaseException | None) -> str:
    """The first line of `error`'s message, or its type's name when it has none."""
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__
