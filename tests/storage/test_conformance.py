"""One conformance suite every blob store passes (STYLE rule 4).

Each backend adds one fixture to `store`; the tests below know nothing of it.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from skylens.domain.errors import BlobNotFound, InvalidBlobKey
from skylens.domain.ports import BlobStore
from skylens.storage.checked import CheckedStore
from skylens.storage.filesystem import FilesystemStore
from skylens.storage.keys import image_data_key
from tests.storage.stores import MIB, PART

KEY = image_data_key("2d5d4e9a-6b3c-4f0e-9a8b-1c2d3e4f5a6b")


@pytest.fixture(params=["filesystem", "s3", "swift"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> BlobStore:
    """Object stores cut blobs into parts (segments) of `PART` bytes. Every store is
    used through the wrapper the registry puts around each backend."""
    if request.param == "filesystem":
        return CheckedStore(FilesystemStore("local", tmp_path / "store"))
    make: Callable[[], BlobStore] = request.getfixturevalue(f"make_{request.param}_store")
    return make()


def put(store: BlobStore, key: str, data: bytes, chunk: int = 65536) -> None:
    writer = store.writer(key)
    for offset in range(0, len(data), chunk):
        writer.write(data[offset : offset + chunk])
    writer.commit()


def read_all(store: BlobStore, key: str, start: int = 0, end: int | None = None) -> bytes:
    return b"".join(store.read(key, start, end))


def test_committed_bytes_read_back_identically(store: BlobStore) -> None:
    data = os.urandom(3 * 1024 * 1024 + 17)

    put(store, KEY, data)

    assert read_all(store, KEY) == data
    assert store.size(KEY) == len(data)


def test_an_empty_blob_is_a_blob(store: BlobStore) -> None:
    store.writer(KEY).commit()

    assert store.size(KEY) == 0
    assert read_all(store, KEY) == b""
    assert read_all(store, KEY, 0, 10) == b""
    assert list(store.keys()) == [KEY]


def test_nothing_is_visible_before_commit(store: BlobStore) -> None:
    writer = store.writer(KEY)
    writer.write(b"partial")

    assert store.size(KEY) is None
    assert KEY not in set(store.keys())
    writer.abort()


def test_abort_leaves_nothing_behind(store: BlobStore) -> None:
    writer = store.writer(KEY)
    writer.write(os.urandom(1024))
    writer.abort()

    assert store.size(KEY) is None
    assert list(store.keys()) == []
    assert store.sweep_uncommitted(older_than=0) == 0


def test_a_blob_of_several_parts_is_invisible_until_committed_then_whole(
    store: BlobStore,
) -> None:
    data = os.urandom(2 * PART + 2 * MIB + 3)
    writer = store.writer(KEY)
    for offset in range(0, len(data), MIB):
        writer.write(data[offset : offset + MIB])

    assert store.size(KEY) is None
    assert list(store.keys()) == []
    writer.commit()

    assert store.size(KEY) == len(data)
    assert list(store.keys()) == [KEY]
    assert read_all(store, KEY) == data
    assert read_all(store, KEY, PART - 10, PART + 10) == data[PART - 10 : PART + 10]
    assert read_all(store, KEY, 2 * PART) == data[2 * PART :]
    assert store.sweep_uncommitted(older_than=0) == 0

    store.delete(KEY)

    assert store.size(KEY) is None
    assert list(store.keys()) == []
    assert store.sweep_uncommitted(older_than=0) == 0  # no segment outlived its blob


def test_abort_after_parts_were_sent_leaves_nothing_behind(store: BlobStore) -> None:
    writer = store.writer(KEY)
    writer.write(os.urandom(2 * PART + 1))
    writer.abort()

    assert store.size(KEY) is None
    assert list(store.keys()) == []
    assert store.sweep_uncommitted(older_than=0) == 0


def test_abort_after_commit_changes_nothing(store: BlobStore) -> None:
    writer = store.writer(KEY)
    writer.write(b"kept")
    writer.commit()

    writer.abort()

    assert read_all(store, KEY) == b"kept"


def test_local_path_declines_or_holds_the_bytes(store: BlobStore) -> None:
    put(store, KEY, b"bytes")

    path = store.local_path(KEY)

    assert path is None or path.read_bytes() == b"bytes"


def test_threads_write_and_read_different_blobs_at_once(store: BlobStore) -> None:
    blobs = {
        image_data_key(f"{n:02d}aaaaaa-0000-4000-8000-000000000000"): os.urandom(65536 + n)
        for n in range(8)
    }

    def round_trip(key: str) -> bool:
        put(store, key, blobs[key], chunk=4096)
        return read_all(store, key) == blobs[key]

    with ThreadPoolExecutor(8) as pool:
        assert all(pool.map(round_trip, blobs))
    assert sorted(store.keys()) == sorted(blobs)


def test_ranges_are_half_open_and_clamped(store: BlobStore) -> None:
    data = bytes(range(256)) * 4
    put(store, KEY, data)

    assert read_all(store, KEY, 0, 1) == data[:1]
    assert read_all(store, KEY, 100, 356) == data[100:356]
    assert read_all(store, KEY, 1000) == data[1000:]
    assert read_all(store, KEY, 1000, 5000) == data[1000:]
    assert read_all(store, KEY, 5, 5) == b""


def test_recommitting_a_key_replaces_it_whole(store: BlobStore) -> None:
    put(store, KEY, b"first version")
    put(store, KEY, b"second")

    assert read_all(store, KEY) == b"second"


def test_reading_or_sizing_a_missing_key(store: BlobStore) -> None:
    with pytest.raises(BlobNotFound):
        read_all(store, KEY)
    assert store.size(KEY) is None


def test_delete_is_idempotent(store: BlobStore) -> None:
    put(store, KEY, b"data")

    store.delete(KEY)
    store.delete(KEY)

    assert store.size(KEY) is None


def test_keys_lists_committed_blobs_only(store: BlobStore) -> None:
    other = image_data_key("ffffffff-0000-4000-8000-000000000000")
    put(store, KEY, b"a")
    put(store, other, b"b")
    pending = store.writer(image_data_key("aaaaaaaa-0000-4000-8000-000000000000"))
    pending.write(b"c")

    assert set(store.keys()) == {KEY, other}
    pending.abort()


def test_the_sweep_removes_only_old_uncommitted_leftovers(store: BlobStore) -> None:
    # Past a part, so every store has sent something (an object store holds a smaller
    # blob in memory until commit, and a killed process leaves nothing of it).
    abandoned = store.writer(KEY)
    abandoned.write(os.urandom(2 * PART + 1))
    put(store, image_data_key("ffffffff-0000-4000-8000-000000000000"), b"kept")

    assert store.sweep_uncommitted(older_than=3600) == 0
    time.sleep(0.05)
    assert store.sweep_uncommitted(older_than=0.01) == 1
    assert len(list(store.keys())) == 1
    abandoned.abort()  # after the sweep, nothing to remove: not an error


def test_the_sweep_leaves_the_leftovers_of_live_writes_whatever_their_age(
    store: BlobStore,
) -> None:
    """A slow upload's write may sit idle past the grace period; while its lease is
    renewed the sweep names its key as live, and the write must survive."""
    slow = store.writer(KEY)
    slow.write(os.urandom(2 * PART + 1))
    other = image_data_key("ffffffff-0000-4000-8000-000000000000")
    abandoned = store.writer(other)
    abandoned.write(os.urandom(2 * PART + 1))
    time.sleep(0.05)

    assert store.sweep_uncommitted(older_than=0.01, live={KEY}) == 1
    slow.write(b"the rest")
    slow.commit()

    abandoned.abort()  # a part of it may still have been on its way during the sweep
    assert store.size(KEY) == 2 * PART + 1 + len(b"the rest")
    assert store.sweep_uncommitted(older_than=0.01) == 0  # nothing the commit needs went


def test_keys_older_than_leave_out_fresh_commits(store: BlobStore) -> None:
    """The orphan sweep asks for old keys only, so it never takes a commit whose image
    record is not updated yet for an orphan."""
    put(store, KEY, b"fresh")

    assert list(store.keys(older_than=3600)) == []
    assert list(store.keys(older_than=0)) == [KEY]
    time.sleep(2.5)  # object stores stamp in whole seconds, with a second of slack
    assert list(store.keys(older_than=0.1)) == [KEY]


@pytest.mark.parametrize(
    "key", ["../etc/passwd", "images/../../x", "/abs", "images//x", ".partial/x", "a/./b", ""]
)
def test_keys_that_could_escape_the_store_are_refused(store: BlobStore, key: str) -> None:
    with pytest.raises(InvalidBlobKey):
        store.writer(key)
    with pytest.raises(InvalidBlobKey):
        read_all(store, key)
    with pytest.raises(InvalidBlobKey):
        store.delete(key)
