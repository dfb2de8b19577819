"""One streaming pass over upload data: size cap, md5 + secure hash, format
inspection and the store write, with memory bounded whatever the image size.

The body is read straight into one of three reused blocks (`BodySource.readinto`;
under `skylens serve`, by the socket's own `recv_into`). Hashing and writing run on
worker threads (hashlib and file writes release the GIL) as two streams of jobs, one
job per block in each: md5 + write, and secure hash + inspection. Each stream takes
the blocks in order but at its own pace, so neither waits for the other at every
block, while the next block is received; a block is filled again once both streams
are done with it.

The blocks are anonymous memory maps, not bytearrays: a bytearray is zeroed, so all
of its pages are in memory from the start, while a map's pages are only taken as
bytes are received into them. An upload that announces a gigabyte and sends a byte
holds one page, not three blocks; and the maps go back to the system when the
upload ends, whatever the allocator would have kept.
"""

from __future__ import annotations

import asyncio
import hashlib
import mmap
from collections.abc import Callable
from typing import Any

from skylens.domain.data import DataDigest
from skylens.domain.errors import ImageTooLarge, InvalidRequest
from skylens.domain.ports import BlobWriter, BodySource, FormatInspector, Offload

BLOCK_SIZE = 8 << 20  # work unit
BLOCKS = 3  # held at once: one being received, two for the streams to work through


class _Stream:
    """Jobs on worker threads, one at a time, in the order they were submitted."""

    def __init__(self, work: Callable[[memoryview], None], threads: Offload) -> None:
        self._work = work
        self._threads = threads
        self.last: asyncio.Future[None] | None = None  # done: every earlier job is too

    def submit(self, block: memoryview) -> asyncio.Future[None]:
        self.last = asyncio.ensure_future(self._run(self.last, block))
        return self.last

    async def _run(self, previous: asyncio.Future[None] | None, block: memoryview) -> None:
        if previous is not None:
            await previous  # a failed job fails the ones after it, unrun
        await self._threads(self._work, block)


async def ingest(
    body: BodySource,
    writer: BlobWriter,
    inspector: FormatInspector,
    *,
    hash_algo: str,
    size_cap: int,
    threads: Offload,
    expected_size: int | None = None,
) -> DataDigest:
    """Stream `body` into `writer`; stop as soon as the data passes `size_cap` or the
    size the client announced (`expected_size`), and refuse data short of the latter.
    The two streams' jobs (md5 and the write; the secure hash and the inspection) and
    the inspector's verdict run on `threads`, at most two of them at once per ingest."""
    md5 = hashlib.md5(usedforsecurity=False)
    secure = hashlib.new(hash_algo)

    def md5_and_store(block: memoryview) -> None:
        md5.update(block)
        writer.write(block)

    def hash_and_inspect(block: memoryview) -> None:
        secure.update(block)
        inspector.feed(block)

    streams = (_Stream(md5_and_store, threads), _Stream(hash_and_inspect, threads))
    blocks: list[memoryview] = []  # mapped as the data reaches each
    in_use: list[asyncio.Future[Any] | None] = [None] * BLOCKS  # both streams' jobs on it
    current = 0
    filled = 0
    size = 0
    # Never ask for more than one byte past what may come, so too much is told at once.
    limit = size_cap if expected_size is None else min(size_cap, expected_size)

    async def hand_over() -> None:
        """Give the current block to both streams; make the next one free to fill."""
        nonlocal current, filled
        view = blocks[current][:filled]
        in_use[current] = asyncio.gather(*(stream.submit(view) for stream in streams))
        current = (current + 1) % BLOCKS
        filled = 0
        pending, in_use[current] = in_use[current], None
        if pending is not None:
            await pending

    try:
        while True:
            if current == len(blocks):
                blocks.append(memoryview(mmap.mmap(-1, BLOCK_SIZE, flags=mmap.MAP_PRIVATE)))
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
        for pending in in_use:
            if pending is not None:
                await pending
    finally:
        # Whatever happened, no job may still touch a block, the writer or the hashes
        # once this returns (the caller aborts the writer next): wait for the last job
        # of each stream, and retrieve what failed.
        unfinished = [stream.last for stream in streams if stream.last is not None]
        unfinished += [future for future in in_use if future is not None]
        await asyncio.gather(*unfinished, return_exceptions=True)
    if expected_size is not None and size != expected_size:
        raise InvalidRequest(f"Size mismatch: expected {expected_size} bytes, got {size} bytes")
    verdict = await threads(inspector.verdict)
    return DataDigest(
        size=size,
        checksum=md5.hexdigest(),
        hash_algo=hash_algo,
        hash_value=secure.hexdigest(),
        format=verdict,
    )
