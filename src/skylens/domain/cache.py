"""The image cache: image data kept on a node's own disk, in front of the stores
whose data is not already in a local file (S3, Swift, HTTP).

Two parts, each behind a Protocol the outer layers implement:

- `CacheFiles`, the node's cache directory: complete files by image id, and fills
  under way. A fill is written under an incomplete name and only renamed into place
  once complete and synced, so a file under an image's name is always whole.
- `CacheIndex`, the shared database's record of what each node holds (hits, last
  access, the file's fingerprint) and what each node is asked to fetch (its queue).
  Keyed by node, so any node can say which nodes hold an image.

A cached file is trusted only while its fingerprint (inode, size and modification
time, taken when it was filled and verified) is the one the index recorded: a file
changed since is deleted and the image read from its store again.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol


@dataclasses.dataclass(frozen=True)
class CachedImage:
    """One image in one node's cache, as `GET /v2/cache` lists it."""

    image_id: str
    size: int
    hits: int
    last_accessed: dt.datetime
    last_modified: dt.datetime
    checksum: str | None  # the os_hash_value the file was verified against
    fingerprint: str


@dataclasses.dataclass(frozen=True)
class CacheState:
    cached: Sequence[CachedImage]
    queued: Sequence[str]


@dataclasses.dataclass(frozen=True)
class Pruned:
    """What a prune removed (`POST /v2/cache/prune`'s body)."""

    files: int
    bytes: int


class ClearTarget:
    """`x-image-cache-clear-target`: what `DELETE /v2/cache` clears."""

    CACHE = "cache"
    QUEUE = "queue"
    BOTH = ""
    ALL = (CACHE, QUEUE, BOTH)


class CacheFill(Protocol):
    """A file being filled; nothing of it is servable before `commit`."""

    def write(self, data: bytes | memoryview) -> None: ...

    def seal(self) -> str:
        """Sync the data; the fingerprint the file will keep once committed."""

    def commit(self) -> None:
        """Move the sealed file into place."""

    def abort(self) -> None: ...


class CacheFiles(Protocol):
    """A node's cache directory."""

    def path(self, image_id: str) -> Path:
        """Where the image's complete file is (it may not exist)."""

    def fingerprint(self, image_id: str) -> str | None:
        """The complete file's fingerprint; None when there is none."""

    def start_fill(self, image_id: str) -> CacheFill | None:
        """A fill of the image, or None when another one is under way."""

    def delete(self, image_id: str) -> bool: ...

    def sizes(self) -> dict[str, int]:
        """Every complete file: image id -> size."""

    def delete_stalled(self, older_than_seconds: float) -> int:
        """Remove fills nobody works on any more (their process died) and that saw
        no write for that long; how many."""


class CacheIndex(Protocol):
    """The shared database's cache records, keyed by node."""

    def entry(self, node: str, image_id: str) -> CachedImage | None: ...

    def entries(self, node: str) -> Sequence[CachedImage]:
        """The node's cached images, least recently accessed first."""

    def record_fill(self, node: str, entry: CachedImage) -> None:
        """Add or replace the node's entry for the image."""

    def record_hit(self, node: str, image_id: str, now: dt.datetime) -> None: ...

    def remove(self, node: str, image_id: str) -> bool: ...

    def remove_all(self, node: str) -> int: ...

    def nodes_of(self, image_id: str) -> Sequence[str]: ...

    def enqueue(self, node: str, image_id: str, now: dt.datetime) -> bool:
        """Ask the node to fetch the image; False if it already was."""

    def queued(self, node: str) -> Sequence[str]:
        """The node's queue, oldest first."""

    def dequeue(self, node: str, image_id: str) -> bool: ...

    def clear_queue(self, node: str) -> int: ...
