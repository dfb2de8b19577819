"""One streaming pass over upload data: size cap, md5 + secure hash, format
inspection and the store write, with memory bounded whatever the image size.

Hashing and writing run on worker threads (hashlib and file writes release the
GIL), each block's three jobs side by side, while the next block is received.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from typing import Any

from skylens.domain.data import DataDigest
from skylens.domain.errors import InvalidRequest, LimitExceeded
from skylens.domain.ports import BlobWriter, FormatInspector

BLOCK_SIZE = 4 << 20  # work unit; at most two blocks are held at once


class ImageTooLarge(LimitExceeded):
    def __init__(self) -> None:
        super().__init__("The incoming image is too large: The provided image is too large.")


async def ingest(
    chunks: AsyncIterator[bytes],
    writer: BlobWriter,
    inspector: FormatInspector,
    *,
    hash_algo: str,
    size_cap: int,
    expected_size: int | None = None,
) -> DataDigest:
    """Stream `chunks` into `writer`; stop as soon as the data passes `size_cap` or the
    size the client announced (`expected_size`), and refuse data short of the latter."""
    md5 = hashlib.md5(usedforsecurity=False)
    secure = hashlib.new(hash_algo)
    size = 0
    buffer = bytearray()
    in_flight: asyncio.Future[Any] | None = None

    async def process(block: bytes) -> None:
        await asyncio.gather(
            asyncio.to_thread(md5.update, block),
            asyncio.to_thread(secure.update, block),
            asyncio.to_thread(writer.write, block),
            asyncio.to_thread(inspector.feed, block),
        )

    try:
        async for chunk in chunks:
            size += len(chunk)
            if size > size_cap:
                raise ImageTooLarge()
            if expected_size is not None and size > expected_size:
                raise InvalidRequest(
                    f"Size exceeds: expected {expected_size} bytes, got {size} bytes"
                )
            buffer += chunk
            if len(buffer) >= BLOCK_SIZE:
                if in_flight is not None:
                    await in_flight
                in_flight = asyncio.ensure_future(process(bytes(buffer)))
                buffer.clear()
        if in_flight is not None:
            await in_flight
            in_flight = None
        if buffer:
            await process(bytes(buffer))
    finally:
        if in_flight is not None:
            await asyncio.gather(in_flight, return_exceptions=True)
    if expected_size is not None and size != expected_size:
        raise InvalidRequest(f"Size mismatch: expected {expected_size} bytes, got {size} bytes")
    verdict = await asyncio.to_thread(inspector.verdict)
    return DataDigest(
        size=size,
        checksum=md5.hexdigest(),
        hash_algo=hash_algo,
        hash_value=secure.hexdigest(),
        format=verdict,
    )
