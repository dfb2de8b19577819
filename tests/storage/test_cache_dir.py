"""`CacheDirectory`: a node's cache files on a real filesystem, with fills held by
flock(2) in this process and in another one."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from skylens.domain.errors import InvalidBlobKey
from skylens.storage.cache_dir import CacheDirectory

IMAGE = "7c3f0a52-6f0e-4f7d-9d1e-0a4c8b2e5f61"


@pytest.fixture
def cache(tmp_path: Path) -> CacheDirectory:
    return CacheDirectory(tmp_path / "cache")


def test_a_fill_has_the_image_s_name_only_once_committed(cache: CacheDirectory) -> None:
    fill = cache.start_fill(IMAGE)
    assert fill is not None
    fill.write(b"abc")
    fill.write(memoryview(b"def"))
    assert cache.fingerprint(IMAGE) is None
    assert cache.sizes() == {}

    sealed = fill.seal()
    assert cache.fingerprint(IMAGE) is None
    fill.commit()

    assert cache.path(IMAGE).read_bytes() == b"abcdef"
    assert cache.fingerprint(IMAGE) == sealed
    assert cache.sizes() == {IMAGE: 6}
    assert not (cache.root / "incomplete" / IMAGE).exists()


def test_an_aborted_fill_leaves_nothing(cache: CacheDirectory) -> None:
    fill = cache.start_fill(IMAGE)
    assert fill is not None
    fill.write(b"partial")
    fill.abort()

    assert cache.fingerprint(IMAGE) is None
    assert list((cache.root / "incomplete").iterdir()) == []


def test_one_fill_of_an_image_at_a_time(cache: CacheDirectory) -> None:
    first = cache.start_fill(IMAGE)
    assert first is not None

    assert cache.start_fill(IMAGE) is None
    first.abort()
    again = cache.start_fill(IMAGE)
    assert again is not None
    again.abort()


def test_another_process_s_fill_holds_the_image(cache: CacheDirectory) -> None:
    holder = _hold_in_another_process(cache.root / "incomplete" / IMAGE)
    try:
        assert cache.start_fill(IMAGE) is None
        assert cache.delete_stalled(0) == 0  # a live fill is never removed
    finally:
        holder.kill()
        holder.wait()
    # Its process died (as kill -9 leaves it): the fill is stalled, and may be taken.
    os.utime(cache.root / "incomplete" / IMAGE, (0, 0))
    assert cache.delete_stalled(3600) == 1
    assert not (cache.root / "incomplete" / IMAGE).exists()


def test_a_recent_dead_fill_waits_for_the_stall_time(cache: CacheDirectory) -> None:
    (cache.root / "incomplete" / IMAGE).write_bytes(b"partial")

    assert cache.delete_stalled(3600) == 0
    assert cache.delete_stalled(0) == 1


def test_a_write_to_a_committed_file_changes_its_fingerprint(cache: CacheDirectory) -> None:
    fill = cache.start_fill(IMAGE)
    assert fill is not None
    fill.write(b"x" * 4096)
    before = fill.seal()
    fill.commit()
    time.sleep(0.01)

    with open(cache.path(IMAGE), "r+b") as file:
        file.write(b"y")

    assert cache.fingerprint(IMAGE) != before


def test_delete(cache: CacheDirectory) -> None:
    fill = cache.start_fill(IMAGE)
    assert fill is not None
    fill.seal()
    fill.commit()

    assert cache.delete(IMAGE)
    assert not cache.delete(IMAGE)
    assert cache.sizes() == {}


@pytest.mark.parametrize("image_id", ["../x", "a/b", ".hidden", "", "x" * 65, "incomplete/x"])
def test_names_that_are_not_image_ids_are_refused(cache: CacheDirectory, image_id: str) -> None:
    with pytest.raises(InvalidBlobKey):
        cache.path(image_id)
    with pytest.raises(InvalidBlobKey):
        cache.start_fill(image_id)


def _hold_in_another_process(path: Path) -> subprocess.Popen[bytes]:
    """A process holding the flock on `path` until killed."""
    script = (
        "import fcntl, sys, time\n"
        f"f = open({str(path)!r}, 'ab+')\n"
        "fcntl.flock(f.fileno(), fcntl.LOCK_EX)\n"
        "sys.stdout.write('held\\n'); sys.stdout.flush()\n"
        "time.sleep(600)\n"
    )
    process = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE)
    assert process.stdout is not None
    assert process.stdout.readline() == b"held\n"
    return process
