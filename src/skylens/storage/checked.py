"""The one wrapper every backend is used through (STYLE rule 4: wrap once, test once).

`build_store` wraps each backend it builds, so what is cross-cutting lives here and
nowhere else:

- keys are validated (`check_key`) before a backend sees them;
- a backend is prepared once, before its first use (a bucket or container created,
  when so configured), and again on the next call if preparing failed;
- errors come out as the domain's: a full disk (ENOSPC, EDQUOT, EFBIG) as
  `StorageFull`, any other `OSError` as `StorageUnavailable`, including those raised
  while a read is being iterated or a writer fed. Backends map their own client
  errors (see `objects.py`), which pass through unchanged.

A backend is a `BlobStore` with a `prepare()` method.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import threading
from collections.abc import Collection, Iterator, Mapping
from pathlib import Path
from typing import Protocol, TypeVar

from skylens.domain.errors import StorageFull, StorageUnavailable
from skylens.domain.ports import BlobStore, BlobWriter
from skylens.storage.keys import check_key

log = logging.getLogger(__name__)

# What a filesystem answers when it has no room (or the quota none) left.
_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})

T = TypeVar("T")


class Backend(BlobStore, Protocol):
    def prepare(self) -> None:
        """Make the store usable: create what it needs, when so configured. Called
        before the first operation (from any thread, never two at once)."""


class CheckedStore:
    """A `BlobStore` around a backend; see the module docstring."""

    def __init__(self, backend: Backend) -> None:
        self._backend = backend
        self._ready = False
        self._ready_lock = threading.Lock()

    @property
    def backend(self) -> Backend:
        return self._backend

    @property
    def name(self) -> str:
        return self._backend.name

    def writer(self, key: str) -> BlobWriter:
        with self._use("write", key):
            return CheckedWriter(self._backend.writer(key), self)

    def read(self, key: str, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        with self._use("read", key):
            chunks = self._backend.read(key, start, end)
        return self._iterate("read", chunks)

    def size(self, key: str) -> int | None:
        with self._use("size", key):
            return self._backend.size(key)

    def delete(self, key: str) -> None:
        with self._use("delete", key):
            self._backend.delete(key)

    def keys(self, older_than: float = 0.0) -> Iterator[str]:
        with self._use("list"):
            listing = self._backend.keys(older_than)
        return self._iterate("list", listing)

    def sweep_uncommitted(self, older_than: float, live: Collection[str] = ()) -> int:
        with self._use("sweep"):
            return self._backend.sweep_uncommitted(older_than, live)

    def local_path(self, key: str) -> Path | None:
        with self._use("stat", key):
            return self._backend.local_path(key)

    def details(self) -> Mapping[str, object]:
        return self._backend.details()

    @contextlib.contextmanager
    def errors(self, action: str) -> Iterator[None]:
        """Turn what an `OSError` says into the domain's error."""
        try:
            yield
        except OSError as error:
            if error.errno in _FULL_ERRNOS:
                log.error("store %s: %s failed, no room left: %s", self.name, action, error)
                raise StorageFull() from error
            code = errno.errorcode.get(error.errno or 0) or type(error).__name__
            detail = f"{code}: {os.strerror(error.errno)}" if error.errno else code
            # The error's own text may name a path: for the log only.
            reason = f"store {self.name}: {action} failed: {error}"
            log.warning("%s", reason)
            raise StorageUnavailable(
                f"Store {self.name!r}: {action} failed ({detail}).", reason
            ) from error

    @contextlib.contextmanager
    def _use(self, action: str, key: str | None = None) -> Iterator[None]:
        if key is not None:
            check_key(key)
        with self.errors(action):
            if not self._ready:
                with self._ready_lock:
                    if not self._ready:
                        self._backend.prepare()
                        self._ready = True
            yield

    def _iterate(self, action: str, items: Iterator[T]) -> Iterator[T]:
        with self.errors(action):
            yield from items


class CheckedWriter:
    """A backend's writer whose errors come out as the domain's."""

    def __init__(self, writer: BlobWriter, store: CheckedStore) -> None:
        self._writer = writer
        self._store = store

    def write(self, data: bytes | memoryview) -> None:
        with self._store.errors("write"):
            self._writer.write(data)

    def commit(self) -> None:
        with self._store.errors("commit"):
            self._writer.commit()

    def abort(self) -> None:
        with self._store.errors("abort"):
            self._writer.abort()
