"""What the object stores (S3, Swift) share: ranged reads, what a "not found" or "full"
answer means, how a failure is worded, and the ages of listed blobs.

Each kind names the answers of its own service: `_answer(error)` reduces a client
error to one word (S3's error code, Swift's HTTP status), which the class attributes
`MISSING`, `PAST_END` and `FULL` list. Key checks and preparation are the wrapper's
(`checked.py`), not these classes'.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from skylens.domain.errors import BlobNotFound, SkylensError, StorageFull, StorageUnavailable
from skylens.storage.parts import TIMESTAMP_SLACK, range_header

log = logging.getLogger(__name__)

READ_CHUNK = 1 << 20
# An opened blob: its bytes, and what holds the response behind them (left when the
# bytes are read, or their reading failed).
Opened = tuple[Iterable[bytes], contextlib.AbstractContextManager[Any]]


class ObjectStore:
    """Base of the stores that speak to an object service over HTTP."""

    MISSING: tuple[str, ...] = ()  # answers that mean "no such blob"
    PAST_END: tuple[str, ...] = ()  # a range that starts at or past the end
    FULL: tuple[str, ...] = ()  # no room left (disks, quotas)
    SPACE = "container"  # what the store's own space is called, for messages

    def __init__(
        self,
        name: str,
        *,
        location: str,
        errors: tuple[type[Exception], ...],
        upload_threads: int,
    ) -> None:
        self._name = name
        self._location = location
        self._errors_caught = errors
        self._executor = ThreadPoolExecutor(upload_threads, thread_name_prefix=f"store-{name}")

    @property
    def name(self) -> str:
        return self._name

    def read(self, key: str, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        if end is not None and end <= start:
            if self.size(key) is None:
                raise BlobNotFound(key)
            return iter(())
        try:
            chunks, held = self._open(key, range_header(start, end))
        except self._errors_caught as error:
            answer = self._answer(error)
            if answer in self.MISSING:
                raise BlobNotFound(key) from None
            if answer in self.PAST_END:
                return iter(())
            raise self._failure("GET", error) from error
        return self._stream(chunks, held)

    def keys(self, older_than: float = 0.0) -> Iterator[str]:
        cutoff = time.time() - older_than
        for key, modified in self._committed():
            # Clocks differ: a blob counts as younger than it claims.
            if older_than <= 0 or modified + TIMESTAMP_SLACK < cutoff:
                yield key

    def local_path(self, key: str) -> Path | None:
        return None

    # What each kind provides.

    def size(self, key: str) -> int | None:
        raise NotImplementedError

    def _open(self, key: str, byte_range: str | None) -> Opened:
        """GET the blob (the `Range` value, if any); raise the client's error."""
        raise NotImplementedError

    def _committed(self) -> Iterator[tuple[str, float]]:
        """Every committed blob's key and when it was last written (Unix time)."""
        raise NotImplementedError

    def _status(self, error: Exception) -> tuple[int | None, str]:
        """The HTTP status and error code of a client error; None and "" when no
        answer came (a transport error)."""
        raise NotImplementedError

    # Shared.

    def _answer(self, error: Exception) -> str:
        status, code = self._status(error)
        return code or ("" if status is None else str(status))

    def _unless_missing(self, action: str, error: Exception) -> None:
        """Return when `error` says there is no such thing; raise it otherwise."""
        if self._answer(error) not in self.MISSING:
            raise self._failure(action, error) from error

    def _stream(
        self, chunks: Iterable[bytes], held: contextlib.AbstractContextManager[Any]
    ) -> Iterator[bytes]:
        with held, self._errors("GET"):
            yield from chunks

    @contextlib.contextmanager
    def _errors(self, action: str) -> Iterator[None]:
        try:
            yield
        except self._errors_caught as error:
            raise self._failure(action, error) from error

    def _failure(self, action: str, error: Exception) -> SkylensError:
        """The error to report, worded without credentials, tokens or signatures."""
        status, code = self._status(error)
        if status == 507 or self._answer(error) in self.FULL:
            log.error("store %s (%s): %s failed, no room left", self._name, self._location, action)
            return StorageFull()
        if status is None:
            detail = type(error).__name__
        else:
            detail = f"HTTP {status}" + (f" {code}" if code and code != str(status) else "")
        advice = ""
        if status in (401, 403):
            advice = f"; check the credentials and the {self.SPACE}'s permissions"
        reason = f"store {self._name} ({self._location}): {action} failed ({detail}{advice})"
        log.warning("%s", reason)
        return StorageUnavailable(f"Store {self._name!r}: {action} failed ({detail}).", reason)
