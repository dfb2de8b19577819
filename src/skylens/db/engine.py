"""Engines for the embedded SQLite default and for PostgreSQL, and migrations."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config

_MIGRATIONS = Path(__file__).parent / "migrations"


def create_engine(url: str, *, pool_size: int = 10) -> sa.Engine:
    """An engine tuned for the backend named by `url`."""
    parsed = sa.make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(parsed, pool_size)
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    engine = sa.create_engine(
        parsed, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True
    )
    if engine.dialect.name == "postgresql":
        sa.event.listen(engine, "connect", _configure_postgresql)
    return engine


def _configure_postgresql(dbapi_connection: Any, _record: Any) -> None:
    # psycopg prepares statements it sees repeatedly, and PostgreSQL then soon
    # plans them once for any parameter. A list filtered on a common property
    # value (os_distro=ubuntu) must not run the plan made for a rare one.
    dbapi_connection.execute("SET plan_cache_mode = force_custom_plan")
    dbapi_connection.commit()


def autocommit_reads(engine: sa.Engine) -> sa.Engine:
    """The engine to run reads on that need no transaction of their own.

    On PostgreSQL, autocommit saves a BEGIN and a ROLLBACK round trip per read
    and lets psycopg prepare statements it sees repeatedly. pysqlite already
    reads outside transactions; switching its connections costs more than it saves.
    """
    if engine.dialect.name == "sqlite":
        return engine
    return engine.execution_options(isolation_level="AUTOCOMMIT")


def reads_may_wait(engine: sa.Engine) -> bool:
    """Whether a read can wait on the network or on another connection.

    Reads of the embedded SQLite database do neither once it is in WAL mode,
    where readers never wait for writers: they are CPU work like any other.
    """
    if engine.dialect.name != "sqlite":
        return True
    with engine.connect() as connection:
        mode = connection.exec_driver_sql("PRAGMA journal_mode").scalar()
    return mode not in ("wal", "memory")


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


def alembic_config(engine: sa.Engine) -> Config:
    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    config.attributes["engine"] = engine
    return config


def upgrade(engine: sa.Engine, revision: str = "head") -> None:
    """Bring the schema up to `revision` (idempotent)."""
    command.upgrade(alembic_config(engine), revision)


def current_revision(engine: sa.Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()
