"""Counting a project's use of each quota resource, and checking claims on it
inside the transaction that makes them, under a per-project lock."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa

from skylens.db.tables import images
from skylens.domain.images import ImageStatus
from skylens.domain.quotas import QuotaClaim, Resource, exceeded

# Glance counts an image as uploading while its data streams in, is staged or imported.
_UPLOADING = (ImageStatus.SAVING.value, ImageStatus.UPLOADING.value, ImageStatus.IMPORTING.value)
# Staged data waits in these statuses; its size is the image's (set once staged).
_STAGED = (ImageStatus.UPLOADING.value, ImageStatus.IMPORTING.value)


def _copies() -> sa.ColumnElement[int]:
    """How many stores hold the image's data: its comma-separated `stores`, counted."""
    stores = sa.func.coalesce(images.c.stores, "")
    commas = sa.func.length(stores) - sa.func.length(sa.func.replace(stores, ",", ""))
    return sa.case((stores == "", 0), else_=commas + 1)


def _usage_query(project_id: str, resource: Resource) -> sa.Select[Any]:
    owned = images.c.owner == project_id
    if resource is Resource.IMAGE_COUNT_TOTAL:
        return sa.select(sa.func.count()).select_from(images).where(owned)
    if resource is Resource.IMAGE_COUNT_UPLOADING:
        return (
            sa.select(sa.func.count())
            .select_from(images)
            .where(owned, images.c.status.in_(_UPLOADING))
        )
    if resource is Resource.IMAGE_SIZE_TOTAL:
        # Bytes; every copy counts, as in Glance (each location holds the whole image).
        total = sa.func.sum(sa.func.coalesce(images.c.size, 0) * _copies())
        return sa.select(sa.func.coalesce(total, 0)).where(owned)
    # Bytes staged for import: the data of images staged (or being imported from
    # staging) until the import ends.
    staged = sa.func.sum(sa.func.coalesce(images.c.size, 0))
    return sa.select(sa.func.coalesce(staged, 0)).where(
        owned, images.c.status.in_(_STAGED), images.c.stores.is_(None)
    )


def usage(connection: sa.Connection, project_id: str, resource: Resource) -> int:
    """The project's current use of the resource; bytes for size resources."""
    return int(connection.execute(_usage_query(project_id, resource)).scalar_one())


def lock_project(connection: sa.Connection, project_id: str) -> None:
    """Serialise the writes that claim quota for one project, until the transaction ends.

    PostgreSQL: a transaction-scoped advisory lock on the project (READ COMMITTED:
    later reads see the writer that held it). SQLite: a write that changes nothing, so
    the transaction holds the database's write lock from here on and every later read
    in it sees the latest data (pysqlite begins the transaction at the first write);
    it must come before the transaction's first read, unless a write already did.
    """
    if connection.dialect.name == "postgresql":
        connection.execute(sa.select(sa.func.pg_advisory_xact_lock(_lock_key(project_id))))
    else:
        connection.execute(images.update().where(sa.false()).values(version=images.c.version))


def _lock_key(project_id: str) -> int:
    digest = hashlib.sha256(b"skylens-quota:" + project_id.encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def check_claims(connection: sa.Connection, project_id: str, claims: Iterable[QuotaClaim]) -> None:
    """Raise `QuotaExceeded` for the first claim the project's usage cannot take."""
    for claim in claims:
        if claim.limit < 0:
            continue
        current = usage(connection, project_id, claim.resource)
        if claim.exceeded_by(current):
            raise exceeded(project_id, claim, current)
