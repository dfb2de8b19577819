"""The reading half of the store conformance suite (tests/storage/test_conformance.py)
for every kind, read-only ones included: the http store, whose blobs are URLs on a
loopback web server (tests.support.web_source) that its URI filter allows, and which
refuses writes (Glance's 410) and never lists, sweeps or deletes anything.

Each kind adds one way to publish a blob (`Published`); the tests know nothing of it.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from skylens.domain.errors import BlobNotFound, ImportUriRefused, InvalidBlobKey, StoreAddDisabled
from skylens.domain.ports import BlobStore
from skylens.domain.uris import UriFilter
from skylens.remote.http import HttpFetcher
from skylens.storage.checked import CheckedStore
from skylens.storage.filesystem import FilesystemStore
from skylens.storage.http import HttpStore
from skylens.storage.keys import image_data_key, location_key
from tests.support.web_source import WebSource

# Publish bytes in the store; the key to read them under.
Publish = Callable[[bytes], str]


def _writing(store: BlobStore) -> Publish:
    def publish(data: bytes) -> str:
        key = image_data_key(str(uuid.uuid4()))
        writer = store.writer(key)
        writer.write(data)
        writer.commit()
        return key

    return publish


def http_store(files: WebSource) -> CheckedStore:
    allowed = UriFilter(allowed_hosts=("127.0.0.1",), allowed_ports=(files.port,))
    return CheckedStore(HttpStore("web", remote=HttpFetcher(allowed)))


def _on_the_web(files: WebSource) -> Publish:
    def publish(data: bytes) -> str:
        name = f"{uuid.uuid4().hex}.img"
        files.files[name] = data
        return location_key(files.url(f"/files/{name}"))

    return publish


@pytest.fixture(params=["filesystem", "s3", "swift", "http"])
def readable(
    request: pytest.FixtureRequest, tmp_path: Path, web_files: WebSource
) -> tuple[BlobStore, Publish]:
    """A store, through the registry's wrapper, and how to put a blob in it."""
    if request.param == "http":
        return http_store(web_files), _on_the_web(web_files)
    if request.param == "filesystem":
        store: BlobStore = CheckedStore(FilesystemStore("local", tmp_path / "store"))
    else:
        make: Callable[[], BlobStore] = request.getfixturevalue(f"make_{request.param}_store")
        store = make()
    return store, _writing(store)


def read_all(store: BlobStore, key: str, start: int = 0, end: int | None = None) -> bytes:
    return b"".join(store.read(key, start, end))


def test_published_bytes_read_back_identically(readable: tuple[BlobStore, Publish]) -> None:
    store, publish = readable
    data = os.urandom(3 * 1024 * 1024 + 17)

    key = publish(data)

    assert read_all(store, key) == data
    assert store.size(key) == len(data)


def test_ranges_are_half_open_and_clamped(readable: tuple[BlobStore, Publish]) -> None:
    store, publish = readable
    data = bytes(range(256)) * 4
    key = publish(data)

    assert read_all(store, key, 0, 1) == data[:1]
    assert read_all(store, key, 100, 356) == data[100:356]
    assert read_all(store, key, 1000) == data[1000:]
    assert read_all(store, key, 1000, 5000) == data[1000:]
    assert read_all(store, key, 5, 5) == b""


def test_reading_or_sizing_a_missing_blob(
    readable: tuple[BlobStore, Publish], web_files: WebSource
) -> None:
    store, publish = readable
    publish(b"there")
    missing = image_data_key(str(uuid.uuid4()))
    if isinstance(store, CheckedStore) and isinstance(store.backend, HttpStore):
        missing = location_key(web_files.url(f"/files/{uuid.uuid4().hex}.img"))  # a 404

    with pytest.raises(BlobNotFound):
        read_all(store, missing)
    assert store.size(missing) is None


def test_local_path_declines_or_holds_the_bytes(readable: tuple[BlobStore, Publish]) -> None:
    store, publish = readable
    key = publish(b"bytes")

    path = store.local_path(key)

    assert path is None or path.read_bytes() == b"bytes"


def test_threads_read_different_blobs_at_once(readable: tuple[BlobStore, Publish]) -> None:
    store, publish = readable
    blobs = {publish(data): data for data in (os.urandom(65536 + n) for n in range(8))}

    with ThreadPoolExecutor(4) as pool:
        found = dict(zip(blobs, pool.map(lambda key: read_all(store, key), blobs), strict=True))

    assert found == blobs


def test_a_reader_left_unfinished_can_be_closed(readable: tuple[BlobStore, Publish]) -> None:
    store, publish = readable
    key = publish(os.urandom(4 << 20))

    chunks = store.read(key)
    first = next(iter(chunks))
    close = getattr(chunks, "close", None)
    if close is not None:
        close()

    assert first
    assert read_all(store, key, 0, 10) == read_all(store, key)[:10]


@pytest.mark.parametrize("key", ["../etc/passwd", "/abs", "images//x", "a/./b", ""])
def test_keys_that_could_escape_the_store_are_refused(
    readable: tuple[BlobStore, Publish], key: str
) -> None:
    store, _publish = readable
    with pytest.raises(InvalidBlobKey):
        read_all(store, key)
    with pytest.raises(InvalidBlobKey):
        store.size(key)


# -- what is the http store's own ---------------------------------------------------


def test_the_http_store_is_read_only(web_files: WebSource) -> None:
    store = http_store(web_files)
    key = _on_the_web(web_files)(b"theirs")

    with pytest.raises(StoreAddDisabled):
        store.writer(key)
    store.delete(key)  # the data is not the service's: it stays

    assert read_all(store, key) == b"theirs"
    assert list(store.keys()) == []
    assert store.sweep_uncommitted(older_than=0) == 0
    assert store.size(image_data_key(str(uuid.uuid4()))) is None  # not a URL's key


def test_the_http_store_reads_through_the_uri_filter(web_files: WebSource) -> None:
    store = http_store(web_files)

    for url in ("http://127.0.0.1:1/x", "http://10.0.0.1/x", "http://[::1]/x"):
        with pytest.raises(ImportUriRefused):
            store.size(location_key(url))
        with pytest.raises(ImportUriRefused):
            read_all(store, location_key(url))


def test_the_http_store_asks_the_server_for_the_range(web_files: WebSource) -> None:
    store = http_store(web_files)
    data = os.urandom(100_000)
    key = _on_the_web(web_files)(data)

    assert read_all(store, key, 50_000, 50_010) == data[50_000:50_010]

    assert web_files.requests[-1].range == "bytes=50000-"
