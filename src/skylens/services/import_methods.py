"""Image import methods: where each one's data comes from, and what it requires.

A method is one entry of the registry the composition root builds from
`images.enabled_import_methods`; a method not in it answers exactly as a Glance
with that method disabled ("Unknown import method name"). Adding a method is
writing one `ImportMethod` and registering it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import re
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, Protocol

from skylens.domain.data import DataDigest
from skylens.domain.errors import BlobNotFound, Conflict, ImportUriRefused, RemoteSourceFailed
from skylens.domain.images import Image, ImageStatus
from skylens.domain.ports import BlobStore, BodySource, Offload, RemoteBody, RemoteSource
from skylens.domain.stores import ConfiguredStore
from skylens.domain.tasks import ImportRequest
from skylens.domain.uris import UriFilter
from skylens.services.import_plugins import FormatChange

log = logging.getLogger(__name__)

GLANCE_DIRECT = "glance-direct"
WEB_DOWNLOAD = "web-download"
COPY_IMAGE = "copy-image"
GLANCE_DOWNLOAD = "glance-download"
# Glance's import methods in Glance's order: `import-methods` lists the enabled ones so.
KNOWN_METHODS = (GLANCE_DIRECT, WEB_DOWNLOAD, COPY_IMAGE, GLANCE_DOWNLOAD)


async def _nothing() -> None:
    pass


@dataclasses.dataclass(frozen=True)
class ImportSource:
    """The data an import reads: a body, its size when known, and what to close;
    what the import changes of the image besides its data, and a check of what the
    ingest learned of the data (raise `ImportFailed`), when the source says more."""

    body: BodySource
    size: int | None
    close: Callable[[], Awaitable[None]] = _nothing
    change: FormatChange = dataclasses.field(default_factory=FormatChange)
    verify: Callable[[DataDigest], None] | None = None


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

    def with_fields(self, request: ImportRequest, token: str | None) -> ImportRequest:
        """The request as this method runs it: its own fields checked as Glance checks
        them just after the image's status and formats (raise `InvalidRequest`), their
        defaults filled in, and the caller's `token` kept if the method acts as the
        caller (only then: a task row keeps it until the task ends)."""
        ...

    def check(self, image: Image, request: ImportRequest) -> None:
        """The method's own checks of a request, before any task exists (raise)."""

    async def open(self, image: Image, request: ImportRequest, storage: Offload) -> ImportSource:
        """Start reading the data to import; blocking calls go through `storage`."""
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

    def with_fields(self, request: ImportRequest, token: str | None) -> ImportRequest:
        return request

    def check(self, image: Image, request: ImportRequest) -> None:
        if image.size is None:  # still being staged: nothing complete to import yet
            raise Conflict(self.wrong_status)

    async def open(self, image: Image, request: ImportRequest, storage: Offload) -> ImportSource:
        source = BlobSource(await storage(self.staging.read, self.key_of(image.id)))
        return ImportSource(source, image.size, lambda: storage(source.close))

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

    def with_fields(self, request: ImportRequest, token: str | None) -> ImportRequest:
        return request

    def check(self, image: Image, request: ImportRequest) -> None:
        pass

    async def open(self, image: Image, request: ImportRequest, storage: Offload) -> ImportSource:
        holders = [self.stores[name] for name in image.stores if name in self.stores]
        if not holders:
            raise BlobNotFound(self.key_of(image.id))
        store = max(holders, key=lambda holder: holder.weight)
        source = BlobSource(await storage(store.blob.read, self.key_of(image.id)))
        return ImportSource(source, image.size, lambda: storage(source.close))

    def finish(self, image_id: str) -> None:
        pass


@dataclasses.dataclass(frozen=True)
class WebDownload:
    """Data a web server serves at the request's `uri`, fetched by the task itself.

    The request checks the URI with the filter (no DNS: a name is resolved, and
    each of its addresses checked, when the task connects). The body streams
    straight into the ingest; a failure's task message names the URI the client
    gave and what went wrong in words that say nothing of the deployment's inside
    (which address a name resolved to, where a redirect went), which only the log
    says.
    """

    uri_filter: UriFilter
    remote: RemoteSource
    size_cap: int

    name: str = WEB_DOWNLOAD
    required_status: ImageStatus = ImageStatus.QUEUED
    wrong_status: str = "Image needs to be in 'queued' state to use 'web-download' method"

    def with_fields(self, request: ImportRequest, token: str | None) -> ImportRequest:
        return request

    def check(self, image: Image, request: ImportRequest) -> None:
        self.uri_filter.check(_uri_of(request))

    async def open(self, image: Image, request: ImportRequest, storage: Offload) -> ImportSource:
        uri = _uri_of(request)
        if uri is None:  # the request was checked: only a task edited since gets here
            raise ImportUriRefused(uri, "no URI")
        try:
            body = await self.remote.open(uri, self.size_cap)
        except (RemoteSourceFailed, ImportUriRefused) as error:
            raise _told(uri, error, reading=False) from error
        return ImportSource(_Told(body, uri), body.size, body.aclose)

    def finish(self, image_id: str) -> None:
        pass


def _uri_of(request: ImportRequest) -> str | None:
    uri: Any = request.fields.get("uri")
    return uri if uri is None or isinstance(uri, str) else str(uri)


# Reasons the fetcher gives that say nothing of where it connected.
_TELLABLE = re.compile(r"the server answered [0-9]{3}|more than [0-9]+ redirects")


def _told(uri: str, error: RemoteSourceFailed | ImportUriRefused, reading: bool) -> Exception:
    """`error` as the task's message may tell it: about `uri`, as the client gave it."""
    log.warning("web-download from %s failed: %s (%s)", uri, error, error.reason)
    if isinstance(error, ImportUriRefused):  # a redirect, or an address a name resolved to
        reason = "it leads to a URI or an address that does not pass filtering"
    elif _TELLABLE.fullmatch(error.reason):
        reason = error.reason
    elif reading:
        reason = "the connection failed and could not be resumed"
    else:
        reason = "the source could not be reached"
    return RemoteSourceFailed(uri, reason)


class _Told:
    """A web source's body whose failures are told as `_told` tells them."""

    def __init__(self, body: RemoteBody, uri: str) -> None:
        self._body = body
        self._uri = uri

    async def readinto(self, buffer: memoryview) -> int:
        try:
            return await self._body.readinto(buffer)
        except (RemoteSourceFailed, ImportUriRefused) as error:
            raise _told(self._uri, error, reading=True) from error
