"""The ingest pipeline on its own, with the real file store and format inspector: every
byte hashed and written in order, whatever the block boundaries, and nothing still
running once it has failed."""

from __future__ import annotations

import asyncio
import hashlib
import os
import threading
import time
from pathlib import Path

import anyio
import pytest

from skylens.api.offload import InThreads
from skylens.domain.data import DataFormat
from skylens.domain.errors import ImageTooLarge, InvalidRequest
from skylens.inspection.formats import OsloFormatInspector
from skylens.services.ingest import BLOCK_SIZE, BLOCKS, ingest
from skylens.storage.filesystem import FilesystemStore, FileWriter
from tests.support.in_process import BytesBody

# The ingest's jobs run on worker threads, as in the service (two at once per upload).
JOBS = InThreads(anyio.CapacityLimiter(2))


class FailingWriter:
    """The file store's writer, failing at its `fail_at`-th write."""

    def __init__(self, writer: FileWriter, fail_at: int) -> None:
        self._writer = writer
        self._fail_at = fail_at
        self.writes = 0

    def write(self, data: bytes | memoryview) -> None:
        self.writes += 1
        if self.writes == self._fail_at:
            raise OSError("the disk is full")
        self._writer.write(data)

    def commit(self) -> None:
        self._writer.commit()

    def abort(self) -> None:
        self._writer.abort()


class SlowInspector:
    """The real inspector, slowed down; it records feeds that run after `returned` is
    set."""

    def __init__(self) -> None:
        self._inspector = OsloFormatInspector()
        self.returned = threading.Event()
        self.late_feeds = 0

    def feed(self, data: bytes | memoryview) -> None:
        late = self.returned.is_set()
        time.sleep(0.2)
        self._inspector.feed(data)
        if late or self.returned.is_set():
            self.late_feeds += 1

    def verdict(self) -> DataFormat:
        return self._inspector.verdict()


@pytest.fixture
def store(tmp_path: Path) -> FilesystemStore:
    return FilesystemStore("local", tmp_path / "images", fsync=False)


@pytest.mark.parametrize(
    "size",
    [0, 1, BLOCK_SIZE - 1, BLOCK_SIZE, BLOCK_SIZE + 1, (2 * BLOCKS + 1) * BLOCK_SIZE + 12345],
)
def test_every_byte_is_hashed_and_written_in_order(store: FilesystemStore, size: int) -> None:
    data = os.urandom(size)
    writer = store.writer("image")

    digest = asyncio.run(
        ingest(
            BytesBody(data),
            writer,
            OsloFormatInspector(),
            hash_algo="sha512",
            size_cap=size,
            threads=JOBS,
        )
    )
    writer.commit()

    assert digest.size == size
    assert digest.checksum == hashlib.md5(data, usedforsecurity=False).hexdigest()
    assert (digest.hash_algo, digest.hash_value) == ("sha512", hashlib.sha512(data).hexdigest())
    assert b"".join(store.read("image")) == data


@pytest.mark.parametrize(
    ("cap", "announced", "error"),
    [
        (3 * BLOCK_SIZE, None, ImageTooLarge),
        (1 << 40, 3 * BLOCK_SIZE, InvalidRequest),
    ],
    ids=["size-cap", "announced-size"],
)
def test_too_much_is_told_at_the_first_byte_over(
    store: FilesystemStore, cap: int, announced: int | None, error: type[Exception]
) -> None:
    body = BytesBody(os.urandom(5 * BLOCK_SIZE))

    with pytest.raises(error):
        asyncio.run(
            ingest(
                body,
                store.writer("image"),
                OsloFormatInspector(),
                hash_algo="sha512",
                size_cap=cap,
                threads=JOBS,
                expected_size=announced,
            )
        )

    assert body.handed_out == 3 * BLOCK_SIZE + 1


def test_a_failed_write_stops_the_pipeline_before_it_returns(store: FilesystemStore) -> None:
    """The write fails while the other stream is still at work on the block: the
    ingest waits for it, so the caller can abort the writer and drop the blocks."""
    writer = FailingWriter(store.writer("image"), fail_at=3)
    inspector = SlowInspector()
    body = BytesBody(os.urandom(10 * BLOCK_SIZE))

    async def upload() -> None:
        with pytest.raises(OSError, match="the disk is full"):
            await ingest(
                body, writer, inspector, hash_algo="sha512", size_cap=1 << 40, threads=JOBS
            )
        inspector.returned.set()
        await asyncio.sleep(0.5)  # time for a job left behind to show itself

    asyncio.run(upload())

    assert inspector.late_feeds == 0  # no job ran on after the ingest had returned
    assert writer.writes == 3  # none after the failure
    assert body.handed_out <= (3 + BLOCKS) * BLOCK_SIZE  # reading stopped soon after
    writer.abort()
    assert list(store.keys()) == []
