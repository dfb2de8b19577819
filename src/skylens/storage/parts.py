"""Cutting a byte stream into parts that upload one at a time while the next one fills.

The object-store writers (S3 multipart uploads, Swift SLO segments) share this. Memory
per writer is bounded by two parts, whatever the blob's length: the part being filled
and at most one part in flight on the store's upload threads.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from concurrent.futures import Executor, Future
from typing import Generic, TypeVar
from urllib.parse import urlsplit

from skylens.domain.errors import LimitExceeded

# Object-store timestamps have one-second resolution and some servers (Swift's s3api)
# round them up, on a clock that is not ours. Sweeps allow this much either way: an
# uncommitted upload counts as this much older than it claims (so "older than 0.5 s"
# still means something), a committed blob as this much younger (so a fresh commit
# is never taken for an orphan).
TIMESTAMP_SLACK = 1.0

T = TypeVar("T")


class PartUploader(Generic[T]):
    """Buffers writes into parts; each full part goes to `upload` on `executor`.

    `part_size(n)` is the size of part n (1-based; every part but the last has exactly
    that size). `upload(n, data)` sends part n and returns what the commit needs (an
    ETag, a manifest entry); it runs on an executor thread, so it raises the domain's
    errors itself. `start()`, if given, runs on the caller's thread before part 1 is
    sent (creating the multipart upload, say), so a part never waits for it.

    Not thread-safe: one writer is fed by one caller at a time.
    """

    def __init__(
        self,
        part_size: Callable[[int], int],
        upload: Callable[[int, bytes], T],
        executor: Executor,
        *,
        max_parts: int,
        start: Callable[[], None] | None = None,
    ) -> None:
        self._part_size = part_size
        self._upload = upload
        self._executor = executor
        self._max_parts = max_parts
        self._start = start
        # calloc'd: pages count towards RSS only once written.
        self._buffer = bytearray(part_size(1))
        self._filled = 0
        self._number = 1
        self._in_flight: Future[T] | None = None
        self._sent: list[T] = []

    @property
    def started(self) -> bool:
        """Whether any part has been handed to `upload`."""
        return self.count > 0

    @property
    def count(self) -> int:
        """How many parts have been handed to `upload`."""
        return self._number - 1

    @property
    def sent(self) -> list[T]:
        """The results of the parts that finished, in order."""
        return self._sent

    def write(self, data: bytes | memoryview) -> None:
        view = memoryview(data)
        while view:
            if self._number > self._max_parts:
                capacity = sum(self._part_size(n) for n in range(1, self._max_parts + 1))
                raise LimitExceeded(f"The data exceeds this store's limit of {capacity} bytes.")
            take = min(len(view), len(self._buffer) - self._filled)
            self._buffer[self._filled : self._filled + take] = view[:take]
            self._filled += take
            view = view[take:]
            if self._filled == len(self._buffer):
                self._send()

    def pending(self) -> bytes:
        """The bytes not yet sent: all of a blob smaller than one part."""
        return bytes(memoryview(self._buffer)[: self._filled])

    def finish(self) -> list[T]:
        """Send what is buffered as the last part, wait for every part, return the results."""
        if self._filled:
            self._send()
        self._collect()
        self._buffer = bytearray()
        return self._sent

    def cancel(self) -> None:
        """Drop the buffer and wait for the part in flight, ignoring how it ended."""
        self._buffer = bytearray()
        self._filled = 0
        with contextlib.suppress(Exception):
            self._collect()

    def _send(self) -> None:
        self._collect()  # at most one part in flight
        if self._number == 1 and self._start is not None:
            self._start()
        part = bytes(memoryview(self._buffer)[: self._filled])
        number = self._number
        self._number += 1
        self._filled = 0
        size = self._part_size(self._number)
        if size != len(self._buffer):
            self._buffer = bytearray(size)
        self._in_flight = self._executor.submit(self._upload, number, part)

    def _collect(self) -> None:
        if self._in_flight is not None:
            future, self._in_flight = self._in_flight, None
            self._sent.append(future.result())


def range_header(start: int, end: int | None) -> str | None:
    """The HTTP `Range` value for bytes [start, end), or None for the whole blob."""
    if not start and end is None:
        return None
    return f"bytes={start}-{'' if end is None else end - 1}"


def endpoint_origin(url: str) -> str:
    """Where a store is, for messages and details: scheme, host and port only (never
    the `user:password@` a URL may carry)."""
    parts = urlsplit(url)
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{parts.hostname}{port}"
