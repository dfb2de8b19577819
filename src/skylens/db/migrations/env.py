"""Alembic environment: runs against the engine the caller hands over."""

from __future__ import annotations

from alembic import context

from skylens.db.engine import lift_statement_timeout
from skylens.db.tables import metadata

engine = context.config.attributes["engine"]

with engine.begin() as connection:
    lift_statement_timeout(connection)
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()
