"""HttpStore: a read-only store of http(s) URLs, Glance's `http` store.

The locations API puts URLs in it; downloads read them through the service. A key
is a URL as `location_key` wrote it. Every fetch goes through the `RemoteSource` the
composition root gives it, web-download's fetcher, so the same URI filter applies
(no loopback, link-local or private target unless the operator allows it) and the
same resumption of dropped connections. A ranged read asks the server for the range
(`Range: bytes=start-`) and stops at `end`.

The store's methods are blocking, as every `BlobStore`'s (called from worker
threads), and the fetcher is asynchronous: the store runs it on an event loop of its
own, in one daemon thread started on first use.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Collection, Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

from skylens.domain.errors import (
    BlobNotFound,
    RemoteSourceFailed,
    RemoteSourceMissing,
    StoreAddDisabled,
)
from skylens.domain.ports import BlobWriter, RemoteBody, RemoteSource
from skylens.storage.keys import url_of_location_key

T = TypeVar("T")


class HttpStore:
    def __init__(self, name: str, *, remote: RemoteSource, size_cap: int = 1 << 40) -> None:
        self._name = name
        self._remote = remote
        self._size_cap = size_cap
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def name(self) -> str:
        return self._name

    def prepare(self) -> None:
        loop = asyncio.new_event_loop()
        threading.Thread(target=loop.run_forever, name=f"store-{self._name}", daemon=True).start()
        self._loop = loop

    def writer(self, key: str) -> BlobWriter:
        raise StoreAddDisabled()

    def read(self, key: str, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        url = _url(key)
        if end is not None and end <= start:
            return iter(())
        try:
            body = self._run(self._remote.open(url, self._size_cap, start=start))
        except RemoteSourceMissing:
            raise BlobNotFound(key) from None
        return self._chunks(body, None if end is None else end - start)

    def _chunks(self, body: RemoteBody, length: int | None) -> Iterator[bytes]:
        block = bytearray(1 << 20)
        try:
            while length is None or length > 0:
                view = memoryview(block)[
                    : len(block) if length is None else min(len(block), length)
                ]
                count = self._run(body.readinto(view))
                if count == 0:
                    return
                if length is not None:
                    length -= count
                yield bytes(view[:count])
        finally:
            self._run(body.aclose())

    def size(self, key: str) -> int | None:
        """The size the server announces for the URL; None if it cannot be fetched
        or announces none (a URL the filter refuses raises `ImportUriRefused`)."""
        url = url_of_location_key(key)
        if url is None:
            return None
        try:
            body = self._run(self._remote.open(url, self._size_cap))
        except RemoteSourceFailed:
            return None
        self._run(body.aclose())
        return body.size

    def delete(self, key: str) -> None:
        """The data is not the service's: removing a location leaves it where it is."""

    def keys(self, older_than: float = 0.0) -> Iterator[str]:
        return iter(())  # nothing to sweep: the store never writes

    def sweep_uncommitted(self, older_than: float, live: Collection[str] = ()) -> int:
        return 0

    def local_path(self, key: str) -> Path | None:
        return None

    def details(self) -> dict[str, object]:
        return {"read_only": True}

    def _run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        assert self._loop is not None, "prepare() first"
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result()


def _url(key: str) -> str:
    url = url_of_location_key(key)
    if url is None:
        raise BlobNotFound(key)
    return url
