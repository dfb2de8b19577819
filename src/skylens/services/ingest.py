"""One streaming pass over upload data: size cap, md5 + secure hash, format
inspection and the store write, with memory bounded whatever the image size.

The body is read straight into one of two reused blocks (`BodySource.readinto`;
under `skylens serve`, by the socket's own `recv_into`). Hashing and writing run on
worker threads (hashlib and file writes release the GIL), two jobs per block side by
side (md5 + write, secure hash + inspection), while the next block is received into
the other block.
"""

from __future__ import annotations

import asyncio
import hashlib
from typing import Any

from skylens.domain.data import DataDigest
from skylens.domain.errors import InvalidRequest, LimitExceeded
from skylens.domain.ports import BlobWriter, BodySource, FormatInspector

BLOCK_SIZE = 8 << 20  # work unit; at most two blocks are held at once


class ImageTooLarge(LimitExceeded):
    def __init__(self) -> None:
        super().__init__("The incoming image is too large: The provided image is too large.")


async def ingest(
    body: BodySource,
    writer: BlobWriter,
    inspector: FormatInspector,
    *,
    hash_algo: str,
    size_cap: int,
    expected_size: int | None = None,
) -> DataDigest:
    """Stream `body` into `writer`; stop as soon as the data passes `size_cap` or the
    size the client announced (`expected_size`), and refuse data short of the latter."""
    md5 = hashlib.md5(usedforsecurity=False)
    secure = hashlib.new(hash_algo)
    size = 0
    # Two blocks, filled in place in turn: one fills while the other is processed.
    blocks = (memoryview(bytearray(BLOCK_SIZE)), memoryview(bytearray(BLOCK_SIZE)))
    # Never ask for more than one byte past what may come, so too much is told at once.
    limit = size_cap if expected_size is None else min(size_cap, expected_size)
    current = 0
    filled = 0
    in_flight: asyncio.Future[Any] | None = None

    def md5_and_store(block: memoryview) -> None:
        md5.update(block)
        writer.write(block)

    def hash_and_inspect(block: memoryview) -> None:
        secure.update(block)
        inspector.feed(block)

    async def process(block: memoryview) -> None:
        await asyncio.gather(
            asyncio.to_thread(md5_and_store, block),
            asyncio.to_thread(hash_and_inspect, block),
        )

    async def hand_over() -> None:
        nonlocal in_flight, current, filled
        if in_flight is not None:
            await in_flight
        in_flight = asyncio.ensure_future(process(blocks[current][:filled]))
        current ^= 1
        filled = 0

    try:
        while True:
            room = min(BLOCK_SIZE - filled, limit + 1 - size)
            count = await body.readinto(blocks[current][filled : filled + room])
            if not count:
                break
            size += count
            filled += count
            if size > size_cap:
                raise ImageTooLarge()
            if expected_size is not None and size > expected_size:
                raise InvalidRequest(
                    f"Size exceeds: expected {expected_size} bytes, got {size} bytes"
                )
            if filled == BLOCK_SIZE:
                await hand_over()
        if filled:
            await hand_over()
        if in_flight is not None:
            await in_flight
            in_flight = None
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
