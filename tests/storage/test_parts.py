"""The part buffer every object-store writer uses: sizes, order, memory bound, failures."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from skylens.domain.errors import LimitExceeded, StorageUnavailable
from skylens.storage.parts import PartUploader


class Recorder:
    """An upload that keeps what it was sent and how many parts were in flight at once."""

    def __init__(self, delay: float = 0.0, fail_on: int | None = None) -> None:
        self.parts: dict[int, bytes] = {}
        self.in_flight = 0
        self.most_in_flight = 0
        self._delay = delay
        self._fail_on = fail_on
        self._lock = threading.Lock()

    def __call__(self, number: int, data: bytes) -> int:
        with self._lock:
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            time.sleep(self._delay)
            if number == self._fail_on:
                raise StorageUnavailable("part refused")
            self.parts[number] = data
            return number
        finally:
            with self._lock:
                self.in_flight -= 1


@pytest.fixture
def executor() -> Iterator[ThreadPoolExecutor]:
    with ThreadPoolExecutor(4) as pool:
        yield pool


def feed(uploader: PartUploader[int], data: bytes, chunk: int) -> None:
    for offset in range(0, len(data), chunk):
        uploader.write(data[offset : offset + chunk])


def test_parts_have_the_size_asked_for_and_arrive_in_order(executor: ThreadPoolExecutor) -> None:
    upload = Recorder(delay=0.01)
    uploader = PartUploader(lambda n: 100, upload, executor, max_parts=100)
    data = bytes(range(256)) * 4  # 1024 bytes: ten parts of 100, then 24

    feed(uploader, data, chunk=37)

    assert uploader.finish() == list(range(1, 12))
    assert [len(upload.parts[n]) for n in range(1, 12)] == [100] * 10 + [24]
    assert b"".join(upload.parts[n] for n in range(1, 12)) == data
    assert upload.most_in_flight == 1  # one part buffering, at most one in flight


def test_a_blob_smaller_than_a_part_is_never_sent(executor: ThreadPoolExecutor) -> None:
    upload = Recorder()
    uploader = PartUploader(lambda n: 100, upload, executor, max_parts=10)

    uploader.write(b"x" * 99)

    assert not uploader.started
    assert uploader.pending() == b"x" * 99
    assert upload.parts == {}


def test_an_exact_multiple_sends_no_empty_last_part(executor: ThreadPoolExecutor) -> None:
    upload = Recorder()
    started: list[bool] = []
    uploader = PartUploader(
        lambda n: 100, upload, executor, max_parts=10, start=lambda: started.append(True)
    )

    uploader.write(b"x" * 300)

    assert uploader.finish() == [1, 2, 3]
    assert started == [True]


def test_part_sizes_may_grow(executor: ThreadPoolExecutor) -> None:
    upload = Recorder()
    uploader = PartUploader(lambda n: 10 * n, upload, executor, max_parts=10)

    feed(uploader, b"y" * 65, chunk=7)
    uploader.finish()

    assert [len(upload.parts[n]) for n in sorted(upload.parts)] == [10, 20, 30, 5]


def test_a_failed_part_surfaces_on_a_later_call(executor: ThreadPoolExecutor) -> None:
    uploader = PartUploader(lambda n: 10, Recorder(fail_on=1), executor, max_parts=10)
    uploader.write(b"z" * 10)  # part 1 is sent, and fails

    with pytest.raises(StorageUnavailable):
        uploader.write(b"z" * 10)  # part 2 waits for part 1 first
    uploader.cancel()  # cancelling ignores it


def test_more_than_max_parts_is_refused(executor: ThreadPoolExecutor) -> None:
    uploader = PartUploader(lambda n: 10, Recorder(), executor, max_parts=3)
    uploader.write(b"a" * 30)  # exactly the limit

    with pytest.raises(LimitExceeded, match="30 bytes"):
        uploader.write(b"a")
