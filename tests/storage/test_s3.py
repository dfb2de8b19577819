"""What only the S3 store does, checked with boto3 against the real server (s3api)."""

from __future__ import annotations

import os
import socket
from collections.abc import Callable

import pytest

from skylens.domain.errors import BlobNotFound, LimitExceeded, StorageUnavailable
from skylens.storage.checked import CheckedStore
from skylens.storage.s3 import DEFAULT_PART_SIZE, growing_part_size
from tests.storage.stores import MIB, PART, unique_name
from tests.support.swift import RunningSwift

MakeStore = Callable[..., CheckedStore]
KEY = "images/ab/abcdef"


def put(store: CheckedStore, data: bytes, key: str = KEY) -> None:
    writer = store.writer(key)
    for offset in range(0, len(data), MIB):
        writer.write(data[offset : offset + MIB])
    writer.commit()


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


@pytest.mark.parametrize("checksums", ["when_supported", "when_required"])
def test_a_large_blob_is_one_multipart_object_and_a_small_one_a_single_put(
    make_s3_store: MakeStore, swift: RunningSwift, checksums: str
) -> None:
    bucket = unique_name("s3")
    store = make_s3_store(bucket=bucket, checksums=checksums)
    large, small = os.urandom(2 * PART + 1), os.urandom(1000)

    put(store, large)
    put(store, small, key="small")

    s3 = swift.s3_client()
    assert s3.head_object(Bucket=bucket, Key=KEY)["ETag"].endswith('-3"')  # three parts
    assert "-" not in s3.head_object(Bucket=bucket, Key="small")["ETag"]
    assert "Uploads" not in s3.list_multipart_uploads(Bucket=bucket)
    assert b"".join(store.read(KEY)) == large


def test_abort_leaves_no_multipart_upload(make_s3_store: MakeStore, swift: RunningSwift) -> None:
    bucket = unique_name("s3")
    store = make_s3_store(bucket=bucket)
    writer = store.writer(KEY)
    writer.write(os.urandom(2 * PART + 1))
    assert len(swift.s3_client().list_multipart_uploads(Bucket=bucket)["Uploads"]) == 1

    writer.abort()

    s3 = swift.s3_client()
    assert "Uploads" not in s3.list_multipart_uploads(Bucket=bucket)
    assert "Contents" not in s3.list_objects_v2(Bucket=bucket)


def test_a_blob_past_the_part_limit_is_refused_and_leaves_nothing(
    make_s3_store: MakeStore, swift: RunningSwift
) -> None:
    bucket = unique_name("s3")
    store = make_s3_store(bucket=bucket, max_parts=2)  # parts of 5 then 10 MiB
    writer = store.writer(KEY)

    with pytest.raises(LimitExceeded):
        writer.write(b"\0" * (3 * PART + 1))
    writer.abort()

    assert "Uploads" not in swift.s3_client().list_multipart_uploads(Bucket=bucket)


def test_part_sizes_grow_so_the_part_limit_allows_terabytes() -> None:
    size = growing_part_size(DEFAULT_PART_SIZE, 10_000)

    assert {size(n) for n in range(1, 201)} == {8 * MIB}
    assert size(201) == 16 * MIB
    assert size(10_000) == 50 * 8 * MIB  # well under S3's 5 GiB per part
    assert sum(size(n) for n in range(1, 10_001)) > 1.9 * 1024**4
    assert sum(size(n) for n in range(1, 601)) > 4 * 1024**3  # 4 GiB in parts <= 24 MiB


def test_the_sweep_leaves_uploads_that_are_still_sending(make_s3_store: MakeStore) -> None:
    store = make_s3_store()
    writer = store.writer(KEY)
    writer.write(os.urandom(2 * PART + 1))

    assert store.sweep_uncommitted(older_than=60) == 0
    writer.commit()
    assert store.size(KEY) == 2 * PART + 1


def test_a_missing_bucket_is_unavailable_not_empty(make_s3_store: MakeStore) -> None:
    store = make_s3_store(create_bucket=False)

    with pytest.raises(StorageUnavailable, match="NoSuchBucket"):
        list(store.keys())
    with pytest.raises(StorageUnavailable, match="NoSuchBucket"):
        b"".join(store.read(KEY))
    writer = store.writer(KEY)
    writer.write(b"data")
    with pytest.raises(StorageUnavailable):
        writer.commit()


def test_an_existing_bucket_is_used_as_it_is(make_s3_store: MakeStore, swift: RunningSwift) -> None:
    bucket = unique_name("s3")
    swift.s3_client().create_bucket(Bucket=bucket)
    store = make_s3_store(bucket=bucket, create_bucket=False)

    put(store, b"data")

    assert list(store.keys()) == [KEY]
    with pytest.raises(BlobNotFound):
        b"".join(store.read("other"))


def test_wrong_credentials_are_reported_without_them(
    make_s3_store: MakeStore, swift: RunningSwift
) -> None:
    store = make_s3_store(secret_key="not-the-secret", create_bucket=False)

    with pytest.raises(StorageUnavailable, match="HTTP 403") as failure:
        store.size(KEY)

    assert "not-the-secret" not in failure.value.message
    assert swift.s3_access_key not in failure.value.message


def test_an_unreachable_server_is_unavailable(make_s3_store: MakeStore) -> None:
    store = make_s3_store(
        endpoint_url=f"http://user:password@127.0.0.1:{closed_port()}",
        max_attempts=1,
        create_bucket=False,
    )

    for action in (
        lambda: store.size(KEY),
        lambda: b"".join(store.read(KEY)),
        lambda: list(store.keys()),
        lambda: store.sweep_uncommitted(0),
    ):
        with pytest.raises(StorageUnavailable) as failure:
            action()
        # Where the store is goes to the log only, never to the client.
        assert "127.0.0.1" in failure.value.reason
        assert "127.0.0.1" not in failure.value.message
        assert "password" not in failure.value.message
