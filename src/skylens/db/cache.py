"""`CacheIndex` on SQLAlchemy Core: each node's cached images and prefetch queue."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from skylens.db.engine import autocommit_reads, connected, transaction
from skylens.db.tables import cache_queue, cached_images
from skylens.domain.cache import CachedImage

_COLUMNS = (
    cached_images.c.image_id,
    cached_images.c.size,
    cached_images.c.hits,
    cached_images.c.last_accessed,
    cached_images.c.last_modified,
    cached_images.c.checksum,
    cached_images.c.fingerprint,
)


class SqlCacheIndex:
    def __init__(self, engine: sa.Engine) -> None:
        self._engine = engine
        self._reader = autocommit_reads(engine)

    def entry(self, node: str, image_id: str) -> CachedImage | None:
        query = sa.select(*_COLUMNS).where(_of(node, image_id))
        with connected(self._reader) as connection:
            row = connection.execute(query).first()
        return None if row is None else _entry_of(row)

    def entries(self, node: str) -> Sequence[CachedImage]:
        query = (
            sa.select(*_COLUMNS)
            .where(cached_images.c.node == node)
            .order_by(cached_images.c.last_accessed, cached_images.c.image_id)
        )
        with connected(self._reader) as connection:
            return [_entry_of(row) for row in connection.execute(query)]

    def record_fill(self, node: str, entry: CachedImage) -> None:
        with transaction(self._engine) as connection:
            connection.execute(sa.delete(cached_images).where(_of(node, entry.image_id)))
            connection.execute(
                sa.insert(cached_images).values(
                    node=node,
                    image_id=entry.image_id,
                    size=entry.size,
                    hits=entry.hits,
                    last_accessed=entry.last_accessed,
                    last_modified=entry.last_modified,
                    checksum=entry.checksum,
                    fingerprint=entry.fingerprint,
                )
            )

    def record_hit(self, node: str, image_id: str, now: dt.datetime) -> None:
        with transaction(self._engine) as connection:
            connection.execute(
                sa.update(cached_images)
                .where(_of(node, image_id))
                .values(hits=cached_images.c.hits + 1, last_accessed=now)
            )

    def remove(self, node: str, image_id: str) -> bool:
        with transaction(self._engine) as connection:
            result = connection.execute(sa.delete(cached_images).where(_of(node, image_id)))
        return bool(result.rowcount)

    def remove_all(self, node: str) -> int:
        with transaction(self._engine) as connection:
            result = connection.execute(
                sa.delete(cached_images).where(cached_images.c.node == node)
            )
        return int(result.rowcount)

    def nodes_of(self, image_id: str) -> Sequence[str]:
        query = (
            sa.select(cached_images.c.node)
            .where(cached_images.c.image_id == image_id)
            .order_by(cached_images.c.node)
        )
        with connected(self._reader) as connection:
            return list(connection.execute(query).scalars())

    def enqueue(self, node: str, image_id: str, now: dt.datetime) -> bool:
        queued = sa.and_(cache_queue.c.node == node, cache_queue.c.image_id == image_id)
        try:
            with transaction(self._engine) as connection:
                if connection.execute(sa.select(cache_queue.c.node).where(queued)).first():
                    return False
                connection.execute(
                    sa.insert(cache_queue).values(node=node, image_id=image_id, queued_at=now)
                )
        except sa.exc.IntegrityError:  # queued by another request at the same moment
            return False
        return True

    def queued(self, node: str) -> Sequence[str]:
        query = (
            sa.select(cache_queue.c.image_id)
            .where(cache_queue.c.node == node)
            .order_by(cache_queue.c.queued_at, cache_queue.c.image_id)
        )
        with connected(self._reader) as connection:
            return list(connection.execute(query).scalars())

    def dequeue(self, node: str, image_id: str) -> bool:
        queued = sa.and_(cache_queue.c.node == node, cache_queue.c.image_id == image_id)
        with transaction(self._engine) as connection:
            result = connection.execute(sa.delete(cache_queue).where(queued))
        return bool(result.rowcount)

    def clear_queue(self, node: str) -> int:
        with transaction(self._engine) as connection:
            result = connection.execute(sa.delete(cache_queue).where(cache_queue.c.node == node))
        return int(result.rowcount)


def _of(node: str, image_id: str) -> sa.ColumnElement[bool]:
    return sa.and_(cached_images.c.node == node, cached_images.c.image_id == image_id)


def _entry_of(row: Any) -> CachedImage:
    return CachedImage(
        image_id=row.image_id,
        size=row.size,
        hits=row.hits,
        last_accessed=row.last_accessed,
        last_modified=row.last_modified,
        checksum=row.checksum,
        fingerprint=row.fingerprint,
    )
