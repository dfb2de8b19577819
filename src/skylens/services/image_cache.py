"""The image cache (see `skylens.domain.cache`): downloads served from and filling a
node's cache directory, its prefetch queue, and the cache API's use cases.

Only data whose store has no local file is cached: a store that keeps the bytes in
a local file (`BlobStore.local_path`) is served from that file already, so the
cache sits in front of S3, Swift and HTTP stores without knowing which they are.

A download that misses fills the cache as it streams to the client: the bytes the
store sends are written to the fill and hashed on their way out, so the store is
read once. When the last byte has gone, the size and the image's `os_hash_value`
decide: the file is synced and renamed into place, or discarded.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import hashlib
import logging
import math
import queue
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NoReturn, Protocol

from skylens.domain.access import Action, RequestContext
from skylens.domain.cache import (
    CachedImage,
    CacheFiles,
    CacheFill,
    CacheIndex,
    CacheState,
    ClearTarget,
    Pruned,
)
from skylens.domain.errors import CachingNotSupported, ImageNotFound, InvalidRequest, NotFound
from skylens.domain.images import Image, ImageStatus
from skylens.domain.policy import authorize
from skylens.domain.ports import ImageRepository, Policy
from skylens.services.image_data import Download, ImageDataService
from skylens.services.images import ImageService

log = logging.getLogger(__name__)

HIT, MISS = "hit", "miss"
# Chunks a fill's thread may lag behind the download (a store's chunks are 64 KiB
# to a few MiB).
_PIPELINE_DEPTH = 16
# How often each process removes the node's stalled fills (besides POST /v2/cache/clean).
_STALLED_SWEEP_SECONDS = 3600.0
# Image ids per repository lookup of a clean (within every database's bind limit).
_LOOKUP_BATCH = 1000


def _ignore(_result: str) -> None:
    return None


def _now() -> dt.datetime:
    """Naive UTC with microseconds: accesses within one second keep their order
    (image timestamps are truncated to the second)."""
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


@dataclasses.dataclass(frozen=True)
class CacheLimits:
    max_size: int = 10 << 30  # Glance's image_cache_max_size
    stall_seconds: float = 86400.0  # Glance's image_cache_stall_time
    poll_seconds: float = 5.0  # how often an idle node looks at its queue


def _image_missing(image_id: str) -> NotFound:
    return ImageNotFound(image_id, f"Image {image_id} not found.")


class CacheApi(Protocol):
    """The cache API's use cases: `ImageCache`, or `NoCache` on a node without one."""

    def state(self, context: RequestContext) -> CacheState: ...

    def queue(self, context: RequestContext, image_id: str) -> None: ...

    def delete(self, context: RequestContext, image_id: str) -> None: ...

    def clear(self, context: RequestContext, target: str) -> None: ...

    def clean(self, context: RequestContext) -> None: ...

    def prune(self, context: RequestContext) -> Pruned: ...

    def nodes(self, context: RequestContext, image_id: str) -> list[str]: ...


class NoCache:
    """The cache API of a node without a cache, in Glance's order: the route's policy
    (after the image, for the routes naming one) is checked first, then 404 `Caching
    via API is not supported at this site.`"""

    def __init__(self, images: ImageService, policy: Policy) -> None:
        self._images = images
        self._policy = policy

    def _refuse(
        self, context: RequestContext, action: Action, image: Image | None = None
    ) -> NoReturn:
        authorize(self._policy, context, action, image)
        raise CachingNotSupported()

    def state(self, context: RequestContext) -> CacheState:
        self._refuse(context, Action.CACHE_LIST)

    def queue(self, context: RequestContext, image_id: str) -> None:
        image = self._images.visible(context, image_id, _image_missing)
        self._refuse(context, Action.CACHE_IMAGE, image)

    def delete(self, context: RequestContext, image_id: str) -> None:
        image = self._images.visible(context, image_id, _image_missing)
        self._refuse(context, Action.CACHE_DELETE, image)

    def clear(self, context: RequestContext, target: str) -> None:
        self._refuse(context, Action.CACHE_DELETE)

    def clean(self, context: RequestContext) -> None:
        self._refuse(context, Action.CACHE_CLEAN)

    def prune(self, context: RequestContext) -> Pruned:
        self._refuse(context, Action.CACHE_PRUNE)

    def nodes(self, context: RequestContext, image_id: str) -> list[str]:
        self._refuse(context, Action.LIST_CACHED_NODES)


class ImageCache:
    def __init__(
        self,
        node: str,
        files: CacheFiles,
        index: CacheIndex,
        images: ImageService,
        data: ImageDataService,
        repository: ImageRepository,
        policy: Policy,
        limits: CacheLimits,
        *,
        clock: Callable[[], Any] = _now,
        lookups: Callable[[str], None] = _ignore,
    ) -> None:
        self.node = node
        self._files = files
        self._index = index
        self._images = images
        self._data = data
        self._repository = repository
        self._policy = policy
        self._limits = limits
        self._clock = clock
        self._lookups = lookups
        self._wake = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None  # run_forever's

    # -- downloads -------------------------------------------------------------

    def cached_file(self, download: Download) -> Path | None:
        """The image's cached file, counted as a hit; None (a miss) when it is not
        cached here or its file changed since it was filled (then it goes)."""
        image_id = download.image.id
        entry = self._index.entry(self.node, image_id)
        found = self._files.fingerprint(image_id)
        if entry is not None and found is not None and found == entry.fingerprint:
            self._index.record_hit(self.node, image_id, self._clock())
            self._lookups(HIT)
            return self._files.path(image_id)
        if found is not None:
            log.warning("image %s: cached file changed since it was filled: deleted", image_id)
            self._files.delete(image_id)
            self._index.remove(self.node, image_id)
        self._lookups(MISS)
        return None

    def _holds(self, image_id: str) -> bool:
        entry = self._index.entry(self.node, image_id)
        return entry is not None and self._files.fingerprint(image_id) == entry.fingerprint

    def filling(self, download: Download, chunks: Iterator[bytes]) -> Iterator[bytes]:
        """`chunks` (the whole image from its store), filling the cache on the way.

        The fill's writes and hashing run on a thread of their own (`_Pipeline`), so
        this thread goes straight back to the store: the download waits for the
        cache only at its end, when the file is checked and committed.
        """
        fill = self._start(download.image)
        if fill is None:
            yield from chunks
            return
        yield from self._through(download.image, fill, chunks)

    def _through(self, image: Image, fill: CacheFill, chunks: Iterator[bytes]) -> Iterator[bytes]:
        pipeline: _Pipeline | None = _Pipeline(fill, _hasher(image), image.id)
        size = 0
        try:
            for chunk in chunks:
                size += len(chunk)
                if pipeline is not None:
                    pipeline.put(chunk)
                    if size >= (image.size or 0):
                        # Finished before the last bytes go: once the client has
                        # them, the cache has the image.
                        self._finish(image, pipeline, size)
                        pipeline = None
                yield chunk
        except BaseException:  # the store failed, or the client went away
            if pipeline is not None:
                pipeline.close()
                _quietly(fill.abort)
            raise
        if pipeline is not None:  # the store sent less than the image's size
            self._finish(image, pipeline, size)

    def _start(self, image: Image) -> CacheFill | None:
        if image.size is None or image.size > self._limits.max_size:
            return None
        try:
            return self._files.start_fill(image.id)
        except OSError:
            log.exception("image %s: cannot start a cache fill", image.id)
            return None

    def _finish(self, image: Image, pipeline: _Pipeline, size: int) -> None:
        fill, digest = pipeline.fill, pipeline.digest
        if not pipeline.close():
            _quietly(fill.abort)  # a write failed (a full disk): the download went on
            return
        expected = image.os_hash_value
        if size != image.size or (
            digest is not None and expected is not None and digest.hexdigest() != expected
        ):
            log.error("image %s: the data read for the cache does not match: discarded", image.id)
            _quietly(fill.abort)
            return
        try:
            fingerprint = fill.seal()
            now = self._clock()
            entry = CachedImage(image.id, size, 0, now, now, expected, fingerprint)
            self._index.record_fill(self.node, entry)
            fill.commit()
        except Exception:
            log.exception("image %s: could not commit its cache file", image.id)
            _quietly(fill.abort)
            return
        _quietly(lambda: self._index.dequeue(self.node, image.id))
        _quietly(self._prune_if_full)  # never the download's failure

    def _prune_if_full(self) -> None:
        if sum(self._files.sizes().values()) > self._limits.max_size:
            self._prune()

    # -- the cache API -----------------------------------------------------------

    def state(self, context: RequestContext) -> CacheState:
        authorize(self._policy, context, Action.CACHE_LIST)
        return CacheState(self._index.entries(self.node), self._index.queued(self.node))

    def queue(self, context: RequestContext, image_id: str) -> None:
        image = self._images.visible(context, image_id, _image_missing)
        authorize(self._policy, context, Action.CACHE_IMAGE, image)
        if image.status is not ImageStatus.ACTIVE:
            raise InvalidRequest("Only images with status active can be targeted for queueing")
        self._index.enqueue(self.node, image_id, self._clock())
        self.wake()

    def delete(self, context: RequestContext, image_id: str) -> None:
        image: Image | None
        try:
            image = self._images.visible(context, image_id, _image_missing)
        except NotFound:
            image = None
            known = self._index.entry(self.node, image_id) is not None
            if not known and image_id not in self._index.queued(self.node):
                raise
        authorize(self._policy, context, Action.CACHE_DELETE, image)
        self._files.delete(image_id)
        self._index.remove(self.node, image_id)
        self._index.dequeue(self.node, image_id)

    def clear(self, context: RequestContext, target: str) -> None:
        authorize(self._policy, context, Action.CACHE_DELETE)
        target = target.lower()
        if target not in ClearTarget.ALL:
            raise InvalidRequest(
                "If provided 'x-image-cache-clear-target' must be 'cache', 'queue' or empty string."
            )
        if target in (ClearTarget.CACHE, ClearTarget.BOTH):
            for image_id in self._files.sizes():
                self._files.delete(image_id)
            self._index.remove_all(self.node)
        if target in (ClearTarget.QUEUE, ClearTarget.BOTH):
            self._index.clear_queue(self.node)

    def clean(self, context: RequestContext) -> None:
        authorize(self._policy, context, Action.CACHE_CLEAN)
        self.clean_now()

    def prune(self, context: RequestContext) -> Pruned:
        authorize(self._policy, context, Action.CACHE_PRUNE)
        return self._prune()

    def nodes(self, context: RequestContext, image_id: str) -> list[str]:
        authorize(self._policy, context, Action.LIST_CACHED_NODES)
        self._images.visible(context, image_id, _image_missing)
        return list(self._index.nodes_of(image_id))

    # -- upkeep ------------------------------------------------------------------

    def clean_now(self) -> int:
        """Stalled fills, files the index does not vouch for or of deleted images,
        entries without files; how many went."""
        removed = self._files.delete_stalled(self._limits.stall_seconds)
        sizes = self._files.sizes()
        entries = {entry.image_id: entry for entry in self._index.entries(self.node)}
        # Which of the images are still there (deleted ones are absent): one query per
        # thousand files, not one each.
        indexed = [image_id for image_id in sizes if image_id in entries]
        live: set[str] = set()
        for start in range(0, len(indexed), _LOOKUP_BATCH):
            live.update(self._repository.data_locations(indexed[start : start + _LOOKUP_BATCH]))
        for image_id in sizes:
            entry = entries.get(image_id)
            if (
                entry is None
                or self._files.fingerprint(image_id) != entry.fingerprint
                or image_id not in live  # the image was deleted
            ):
                self._files.delete(image_id)
                self._index.remove(self.node, image_id)
                removed += 1
        for image_id in entries.keys() - sizes.keys():
            self._index.remove(self.node, image_id)
            removed += 1
        return removed

    def _prune(self) -> Pruned:
        """Least recently accessed first, until the cache fits `max_size`."""
        sizes = self._files.sizes()
        total = sum(sizes.values())
        order = [entry.image_id for entry in self._index.entries(self.node)]
        indexed = set(order)
        unindexed = [image_id for image_id in sizes if image_id not in indexed]
        files = pruned = 0
        for image_id in [*unindexed, *order]:
            if total <= self._limits.max_size:
                break
            size = sizes.get(image_id, 0)
            self._files.delete(image_id)
            self._index.remove(self.node, image_id)
            total -= size
            files, pruned = files + 1, pruned + size
        return Pruned(files, pruned)

    # -- the prefetch queue --------------------------------------------------------

    def wake(self) -> None:
        """Have the prefetch look at the queue now (from any thread)."""
        loop = self._loop
        if loop is not None:
            loop.call_soon_threadsafe(self._wake.set)

    async def run_forever(self) -> None:
        """Fetch this node's queued images, one at a time, until cancelled; once an
        hour (and at start-up), remove fills stalled for `stall_seconds`."""
        self._loop = asyncio.get_running_loop()
        cleaned = -math.inf  # so the first pass sweeps: the monotonic clock may be young
        while True:
            self._wake.clear()  # before looking: a wake from now on is not lost
            try:
                await asyncio.to_thread(self.prefetch_queued)
                if time.monotonic() - cleaned >= _STALLED_SWEEP_SECONDS:
                    await asyncio.to_thread(self._files.delete_stalled, self._limits.stall_seconds)
                    cleaned = time.monotonic()
            except Exception:
                log.exception("the cache prefetch failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._limits.poll_seconds)

    def prefetch_queued(self) -> int:
        """Fill the cache with every queued image; how many were filled."""
        filled = 0
        for image_id in self._index.queued(self.node):
            image = self._repository.get(image_id)
            download = None if image is None else self._data.data_of(image)
            if (
                download is None
                or download.image.status is not ImageStatus.ACTIVE
                or download.store.local_path(download.key) is not None
                or self._holds(image_id)
                or download.image.size is None
                or download.image.size > self._limits.max_size
            ):
                self._index.dequeue(self.node, image_id)  # nothing (more) to fetch
                continue
            fill = self._start(download.image)
            if fill is None:
                continue  # another process of this node fills it now
            for _chunk in self._through(download.image, fill, download.store.read(download.key)):
                pass
            if self._files.fingerprint(image_id) is not None:
                filled += 1
            else:  # not filled (a mismatch, another fill): given up, not retried forever
                self._index.dequeue(self.node, image_id)
        return filled


def _hasher(image: Image) -> Any:
    if not image.os_hash_algo or not image.os_hash_value:
        return None
    try:
        return hashlib.new(image.os_hash_algo)
    except ValueError:
        return None


class _Pipeline:
    """A fill's writes and hashing, on a thread of their own, a few chunks behind
    the download (the chunks are the store's `bytes`, never reused buffers)."""

    def __init__(self, fill: CacheFill, digest: Any, image_id: str) -> None:
        self.fill = fill
        self.digest = digest
        self._image_id = image_id
        self._chunks: queue.Queue[bytes | None] = queue.Queue(maxsize=_PIPELINE_DEPTH)
        self._failed = False
        self._thread = threading.Thread(target=self._run, name="cache-fill", daemon=True)
        self._thread.start()

    def put(self, chunk: bytes) -> None:
        if not self._failed:
            self._chunks.put(chunk)

    def close(self) -> bool:
        """Wait for every chunk put; whether all were written."""
        self._chunks.put(None)
        self._thread.join()
        return not self._failed

    def _run(self) -> None:
        while (chunk := self._chunks.get()) is not None:
            if self._failed:
                continue
            try:
                self.fill.write(chunk)
            except OSError:
                log.warning(
                    "image %s: cache fill failed, download continues", self._image_id, exc_info=True
                )
                self._failed = True
                continue
            if self.digest is not None:
                self.digest.update(chunk)


def _quietly(action: Callable[[], object]) -> None:
    try:
        action()
    except Exception:
        log.exception("image cache upkeep failed")
