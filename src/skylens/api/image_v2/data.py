"""Handlers that touch image data: upload, (ranged) download, and delete."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from starlette.concurrency import iterate_in_threadpool, run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from skylens.api.errors import RangeNotSatisfiable
from skylens.api.offload import Offload
from skylens.api.request_body import request_body
from skylens.api.responses import no_content
from skylens.api.sendfile import FileRangeResponse, server_sends_files
from skylens.domain.access import RequestContext
from skylens.domain.errors import BlobNotFound, InvalidRequest, UnsupportedMediaType
from skylens.logs import note_store
from skylens.services.image_cache import ImageCache
from skylens.services.image_data import ImageDataService

OCTET_STREAM = "application/octet-stream"
_SINGLE_RANGE = re.compile(r"bytes=(\d*)-(\d*)")
# More digits than any byte position has (sizes are 64-bit): parsed as "beyond the end".
_POSITION_DIGITS = 19
_BEYOND = 1 << 63
_CHUNK = 1 << 20


@dataclasses.dataclass(frozen=True)
class DataHandlers:
    service: ImageDataService
    reads: Offload
    writes: Offload
    cache: ImageCache | None = None  # in front of stores without local files

    async def upload(self, request: Request, context: RequestContext) -> Response:
        """PUT /v2/images/{id}/file, after `check_upload_media_type`."""
        store = request.headers.get("x-image-meta-store")
        chosen = self.service.configured_store(store)
        if chosen is not None:  # for the metrics: never a name a client made up
            note_store(chosen)
        await self.service.upload(
            context,
            request.path_params["image_id"],
            request_body(request),
            store,
            expected_size=announced_size(request.headers.get("x-openstack-image-size")),
        )
        return no_content()

    async def delete(self, request: Request, context: RequestContext) -> Response:
        """DELETE /v2/images/{id}: the record and its data go together."""
        await self.writes(self.service.delete_image, context, request.path_params["image_id"])
        return no_content()

    async def download(self, request: Request, context: RequestContext) -> Response:
        prefer = request.query_params.get("prefer", "")
        found = await self.reads(
            self.service.open_download,
            context,
            request.path_params["image_id"],
            [name.strip() for name in prefer.split(",") if name.strip()],
        )
        if found is None:
            return Response(status_code=204)  # no data yet: a bare 204, as in Glance
        note_store(found.store.name)
        size = found.image.size or 0
        headers = {"Content-Type": OCTET_STREAM}
        if found.image.checksum:
            headers["Content-MD5"] = found.image.checksum
        byte_range = requested_range(request.headers.get("range"), size)
        if "range" not in request.headers:
            # Glance still honours the (deprecated) Content-Range request header.
            byte_range = content_range(request.headers.get("content-range"), size)
        status, start, end = 200, 0, size
        if byte_range is not None:
            status, (start, end) = 206, byte_range
            headers["Content-Range"] = f"bytes {start}-{end - 1}/{size}"
        headers["Content-Length"] = str(end - start)
        # Zero copy when the store has the bytes in a local file, or the image cache
        # has them, and the server can send files; otherwise they stream through here.
        # Stores are opened off the event loop: opening may wait on the network.
        path = found.store.local_path(found.key)
        if path is None and self.cache is not None:
            path = await self.reads(self.cache.cached_file, found)
            if path is None and byte_range is None:
                # A miss: the whole image streams from its store, filling the cache.
                opened = await run_in_threadpool(found.store.read, found.key)
                filling = self.cache.filling(found, opened)
                return StreamingResponse(
                    iterate_in_threadpool(filling), status_code=status, headers=headers
                )
        if path is not None:
            file = _open_blob(path, found.key)
            if server_sends_files(request.scope):
                return FileRangeResponse(file, start, end, status_code=status, headers=headers)
            chunks = iterate_in_threadpool(_file_chunks(file, start, end))
        else:
            opened = await run_in_threadpool(found.store.read, found.key, start, end)
            chunks = iterate_in_threadpool(opened)
        return StreamingResponse(chunks, status_code=status, headers=headers)


def check_upload_media_type(request: Request) -> None:
    """An upload's body is octet-stream, or it is 415 (before 401, as in Glance)."""
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != OCTET_STREAM:
        raise UnsupportedMediaType(
            f"The request media type {media_type or 'None'} is not supported by this server."
        )


def _file_chunks(file: BinaryIO, start: int, end: int) -> Iterator[bytes]:
    """Bytes [start, end) of an open file, for a server that cannot send files."""
    with file:
        file.seek(start)
        left = end - start
        while left > 0:
            chunk = file.read(min(left, _CHUNK))
            if not chunk:
                return
            left -= len(chunk)
            yield chunk


def _open_blob(path: Path, key: str) -> BinaryIO:
    """The blob's file, opened before the response starts (the response closes it)."""
    try:
        return open(path, "rb")
    except FileNotFoundError:  # deleted since local_path looked
        raise BlobNotFound(key) from None


def announced_size(header: str | None) -> int | None:
    """`x-openstack-image-size`: the size the client says it will send."""
    if header is None:
        return None
    try:
        size = int(header.strip())
    except ValueError:
        size = -1
    if size < 0:
        raise InvalidRequest("Invalid or missing image size in request headers.")
    return size


def requested_range(header: str | None, size: int) -> tuple[int, int] | None:
    """The half-open byte range of a single-range `Range` header.

    None means "send everything": no header, a malformed one, or several ranges
    (which Glance does not serve either). Raises when nothing of it exists.
    """
    if not header:
        return None
    match = _SINGLE_RANGE.fullmatch(header.strip())
    if match is None:
        return None
    first, last = match.groups()
    if not first and not last:
        return None
    if not first:  # the last n bytes
        length = _position(last)
        if length == 0 or size == 0:
            raise RangeNotSatisfiable(size)
        return max(0, size - length), size
    start = _position(first)
    end = size if not last else _position(last) + 1
    if last and _position(last) < start:
        return None
    if start >= size:
        raise RangeNotSatisfiable(size)
    return start, min(end, size)


_CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+|\*)")


def content_range(header: str | None, size: int) -> tuple[int, int] | None:
    """The half-open byte range of a `Content-Range` request header (`bytes 1-4/*`),
    which Glance reads when there is no `Range`; 416 for a malformed or
    unsatisfiable one."""
    if header is None:
        return None
    match = _CONTENT_RANGE.fullmatch(header.strip())
    if match is None:
        raise RangeNotSatisfiable(size)
    first, last, length = match.groups()
    start, stop = _position(first), _position(last) + 1
    if stop <= start or (length != "*" and stop > _position(length)):
        raise RangeNotSatisfiable(size)  # as webob, which refuses to parse it
    if (length == "*" and stop > size) or start >= size:
        raise RangeNotSatisfiable(size)
    return start, min(stop, size)


def _position(digits: str) -> int:
    """A byte position; any number too long for one is past every image's end (and
    never handed to `int`, which refuses more than 4300 digits)."""
    digits = digits.lstrip("0") or "0"
    return _BEYOND if len(digits) > _POSITION_DIGITS else int(digits)
