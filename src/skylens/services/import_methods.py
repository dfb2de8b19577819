"""Image import methods: where each one's data comes from, and what it requires.

A method is one entry of the registry the composition root builds from
`images.enabled_import_methods`; a method not in it answers exactly as a Glance
with that method disabled ("Unknown import method name"). Adding a method is
writing one `ImportMethod` and registering it.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable, Iterator
from typing import Protocol

from skylens.domain.errors import BlobNotFound, Conflict
from skylens.domain.images import Image, ImageStatus
from skylens.domain.ports import BlobStore, BodySource
from skylens.domain.stores import ConfiguredStore
from skylens.domain.tasks import ImportRequest

GLANCE_DIRECT = "glance-direct"
COPY_IMAGE = "copy-image"
# Glance's import methods in Glance's order: `import-methods` lists the enabled ones so.
KNOWN_METHODS = (GLANCE_DIRECT, "web-download", COPY_IMAGE, "glance-download")


@dataclasses.dataclass(frozen=True)
class ImportSource:
    """The data an import reads: a body, its size when known, and what to close."""

    body: BodySource
    size: int | None
    close: Callable[[], None] = lambda: None


class ImportMethod(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def required_status(self) -> ImageStatus:
        """The status the image must be in to be imported by this method."""
        ...

    @property
    def wrong_status(self) -> str:
        """Glance's 409 text for an image in any other status."""
        ...

    def check(self, image: Image, request: ImportRequest) -> None:
        """The method's own checks of a request, before any task exists (raise)."""

    def open(self, image: Image, request: ImportRequest) -> ImportSource:
        """Start reading the data to import (blocking; on a worker thread)."""
        ...

    def finish(self, image_id: str) -> None:
        """Drop what the import used once it ended, either way (blocking)."""


class BlobSource:
    """A stored blob read as a request body: `ingest` streams it like an upload."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._pending = memoryview(b"")
        self._ended = False

    async def readinto(self, buffer: memoryview) -> int:
        filled = 0
        while filled < len(buffer):
            if not self._pending:
                if self._ended:
                    break
                chunk = await asyncio.to_thread(next, self._chunks, None)
                if chunk is None:
                    self._ended = True
                    break
                self._pending = memoryview(chunk)
            count = min(len(self._pending), len(buffer) - filled)
            buffer[filled : filled + count] = self._pending[:count]
            self._pending = self._pending[count:]
            filled += count
        return filled

    def close(self) -> None:
        close = getattr(self._chunks, "close", None)
        if close is not None:
            close()


@dataclasses.dataclass(frozen=True)
class GlanceDirect:
    """Data a client staged (`PUT /v2/images/{id}/stage`) into the staging store."""

    staging: BlobStore
    key_of: Callable[[str], str]

    name: str = GLANCE_DIRECT
    required_status: ImageStatus = ImageStatus.UPLOADING
    wrong_status: str = "Image needs to be staged before 'glance-direct' method can be used"

    def check(self, image: Image, request: ImportRequest) -> None:
        if image.size is None:  # still being staged: nothing complete to import yet
            raise Conflict(self.wrong_status)

    def open(self, image: Image, request: ImportRequest) -> ImportSource:
        source = BlobSource(self.staging.read(self.key_of(image.id)))
        return ImportSource(source, image.size, source.close)

    def finish(self, image_id: str) -> None:
        self.staging.delete(self.key_of(image_id))


@dataclasses.dataclass(frozen=True)
class CopyImage:
    """An active image's data, copied from a store that holds it to more stores."""

    stores: dict[str, ConfiguredStore]
    key_of: Callable[[str], str]

    name: str = COPY_IMAGE
    required_status: ImageStatus = ImageStatus.ACTIVE
    wrong_status: str = "Only images with status active can be targeted for copying"

    def check(self, image: Image, request: ImportRequest) -> None:
        pass

    def open(self, image: Image, request: ImportRequest) -> ImportSource:
        holders = [self.stores[name] for name in image.stores if name in self.stores]
        if not holders:
            raise BlobNotFound(self.key_of(image.id))
        store = max(holders, key=lambda holder: holder.weight)
        source = BlobSource(store.blob.read(self.key_of(image.id)))
        return ImportSource(source, image.size, source.close)

    def finish(self, image_id: str) -> None:
        pass
