"""`ImageCache.clean_now` on a real cache directory and index, with the repository
on SQLite: the files of deleted images go, and the images are looked up together."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from skylens.db.cache import SqlCacheIndex
from skylens.domain.access import RequestContext
from skylens.domain.policy import BuiltinPolicy
from skylens.services.image_cache import CacheLimits, ImageCache
from skylens.storage.cache_dir import CacheDirectory
from tests.support.in_process import Services, admin_of


@pytest.fixture
def cache(services: Services, tmp_path: Path) -> ImageCache:
    return ImageCache(
        "node-a",
        CacheDirectory(tmp_path / "cache"),
        SqlCacheIndex(services.engine),
        services.images,
        services.data,
        services.repository,
        BuiltinPolicy(),
        CacheLimits(),
    )


def cached_image(services: Services, cache: ImageCache, owner: RequestContext) -> str:
    """A new active image, downloaded once through the cache (which it now holds)."""
    image = services.active(owner, data=b"cached bytes " * 100)
    download = services.data.data_of(image)
    assert download is not None
    for _chunk in cache.filling(download, download.store.read(download.key)):
        pass
    assert cache.cached_file(download) is not None
    return image.id


@contextlib.contextmanager
def statements(engine: sa.Engine) -> Iterator[list[str]]:
    """The SQL statements run on `engine` meanwhile."""
    seen: list[str] = []

    def record(*args: Any) -> None:
        seen.append(args[2])  # (connection, cursor, statement, ...)

    sa.event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        sa.event.remove(engine, "before_cursor_execute", record)


def test_clean_removes_the_files_of_deleted_images_in_one_lookup(
    services: Services, cache: ImageCache, owner: RequestContext, project: str, tmp_path: Path
) -> None:
    kept = [cached_image(services, cache, owner) for _ in range(3)]
    deleted = [cached_image(services, cache, owner) for _ in range(2)]
    for image_id in deleted:
        services.images.delete(owner, image_id)

    with statements(services.engine) as seen:
        removed = cache.clean_now()

    assert removed == len(deleted)
    assert sorted(path.name for path in (tmp_path / "cache").iterdir() if path.is_file()) == sorted(
        kept
    )
    assert sorted(entry.image_id for entry in cache.state(admin_of(project)).cached) == sorted(kept)
    image_reads = [sql for sql in seen if "FROM images" in sql]
    assert len(image_reads) == 1, image_reads
