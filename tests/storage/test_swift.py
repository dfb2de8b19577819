"""What only the Swift store does, checked with python-swiftclient against the real server."""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Callable

import pytest

from skylens.domain.errors import BlobNotFound, LimitExceeded, StorageUnavailable
from skylens.storage.checked import CheckedStore
from tests.storage.stores import MIB, PART, unique_name
from tests.support.swift import RunningSwift

MakeStore = Callable[..., CheckedStore]
KEY = "images/ab/abcdef"


def put(store: CheckedStore, data: bytes, key: str = KEY, chunk: int = MIB) -> None:
    writer = store.writer(key)
    for offset in range(0, len(data), chunk):
        writer.write(data[offset : offset + chunk])
    writer.commit()


def segment_names(swift: RunningSwift, container: str) -> list[str]:
    return [item["name"] for item in swift.swift_connection().get_container(container)[1]]


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def test_a_large_blob_is_an_slo_over_segments_under_its_upload(
    make_swift_store: MakeStore, swift: RunningSwift
) -> None:
    container = unique_name("swift")
    store = make_swift_store(container=container)
    put(store, os.urandom(2 * PART + 1))
    put(store, b"small", key="small")

    conn = swift.swift_connection()
    headers = conn.head_object(container, KEY)
    assert headers["x-static-large-object"] == "True"
    upload = headers["x-object-meta-skylens-upload"]
    assert segment_names(swift, f"{container}_segments") == [
        f"{KEY}/{upload}/{n:08d}" for n in (1, 2, 3)
    ]
    assert "x-static-large-object" not in conn.head_object(container, "small")

    store.delete(KEY)

    assert segment_names(swift, f"{container}_segments") == []
    assert store.size("small") == 5


def test_abort_deletes_the_segments_sent(make_swift_store: MakeStore, swift: RunningSwift) -> None:
    container = unique_name("swift")
    store = make_swift_store(container=container)
    writer = store.writer(KEY)
    writer.write(os.urandom(2 * PART + 1))
    assert len(segment_names(swift, f"{container}_segments")) >= 1

    writer.abort()

    assert segment_names(swift, f"{container}_segments") == []
    assert segment_names(swift, container) == []


def test_past_max_segments_the_manifest_lists_groups_of_segments(
    make_swift_store: MakeStore, swift: RunningSwift
) -> None:
    container = unique_name("swift")
    store = make_swift_store(container=container, segment_size=1000, max_segments=3)
    data = os.urandom(8500)  # 9 segments: 3 groups of 3 (the limit is 3 x 3 x 1000)

    put(store, data, chunk=700)

    assert store.size(KEY) == len(data)
    assert b"".join(store.read(KEY)) == data
    assert b"".join(store.read(KEY, 2990, 6010)) == data[2990:6010]  # across two groups
    assert swift.swift_connection().head_object(container, KEY)["x-object-meta-skylens-groups"] == (
        "3"
    )
    assert len(segment_names(swift, f"{container}_segments")) == 9 + 3
    assert store.sweep_uncommitted(older_than=0) == 0  # committed segments stay

    store.delete(KEY)

    assert segment_names(swift, f"{container}_segments") == []
    with pytest.raises(LimitExceeded):
        store.writer(KEY).write(b"\0" * 9001)


@pytest.mark.parametrize(("size", "groups"), [(3000, 0), (3001, 2), (3500, 2), (4000, 2)])
def test_no_manifest_lists_more_than_max_segments(
    make_swift_store: MakeStore, swift: RunningSwift, size: int, groups: int
) -> None:
    container = unique_name("swift")
    store = make_swift_store(container=container, segment_size=1000, max_segments=3)
    data = os.urandom(size)

    put(store, data, chunk=size)  # one write: the grouping happens at commit

    conn = swift.swift_connection()
    headers, manifest = conn.get_object(container, KEY, query_string="multipart-manifest=get")
    assert headers["x-object-meta-skylens-groups"] == str(groups)
    assert len(json.loads(manifest)) <= 3
    for group in range(1, groups + 1):
        upload = headers["x-object-meta-skylens-upload"]
        name = f"{KEY}/{upload}/group-{group:05d}"
        _, entries = conn.get_object(
            f"{container}_segments", name, query_string="multipart-manifest=get"
        )
        assert 1 <= len(json.loads(entries)) <= 3
    assert b"".join(store.read(KEY)) == data


def test_replacing_a_large_blob_deletes_the_old_segments(
    make_swift_store: MakeStore, swift: RunningSwift
) -> None:
    container = unique_name("swift")
    store = make_swift_store(container=container)
    put(store, os.urandom(2 * PART + 1))
    replacement = os.urandom(PART + 1)

    put(store, replacement)

    upload = swift.swift_connection().head_object(container, KEY)["x-object-meta-skylens-upload"]
    assert {name.split("/")[-2] for name in segment_names(swift, f"{container}_segments")} == {
        upload
    }
    assert b"".join(store.read(KEY)) == replacement


def test_the_sweep_leaves_uploads_that_are_still_sending(make_swift_store: MakeStore) -> None:
    store = make_swift_store()
    writer = store.writer(KEY)
    writer.write(os.urandom(2 * PART + 1))

    assert store.sweep_uncommitted(older_than=60) == 0
    writer.commit()
    assert store.size(KEY) == 2 * PART + 1


def test_segments_that_are_not_the_stores_are_left_alone(
    make_swift_store: MakeStore, swift: RunningSwift
) -> None:
    container = unique_name("swift")
    store = make_swift_store(container=container)
    list(store.keys())  # creates the containers
    swift.swift_connection().put_object(f"{container}_segments", "someone/else/0001", b"x")

    assert store.sweep_uncommitted(older_than=0) == 0
    assert segment_names(swift, f"{container}_segments") == ["someone/else/0001"]


def test_a_missing_container_is_unavailable(make_swift_store: MakeStore) -> None:
    store = make_swift_store(create_container=False)

    with pytest.raises(StorageUnavailable, match="HTTP 404"):
        list(store.keys())
    writer = store.writer(KEY)
    writer.write(b"data")
    with pytest.raises(StorageUnavailable):
        writer.commit()
    with pytest.raises(BlobNotFound):  # Swift answers 404 either way
        b"".join(store.read(KEY))


def test_wrong_credentials_are_reported_without_them(make_swift_store: MakeStore) -> None:
    store = make_swift_store(key="not-the-key", create_container=False)

    with pytest.raises(StorageUnavailable, match="HTTP 401") as failure:
        store.size(KEY)

    assert "not-the-key" not in failure.value.message


@pytest.mark.parametrize("auth_version", ["1", "3"])
def test_an_unreachable_server_is_unavailable(
    make_swift_store: MakeStore, auth_version: str
) -> None:
    path = "/auth/v1.0" if auth_version == "1" else "/v3"
    store = make_swift_store(
        auth_url=f"http://127.0.0.1:{closed_port()}{path}",
        auth_version=auth_version,
        project_name="images",
        key="the-password",
        retries=0,
        create_container=False,
    )

    for action in (
        lambda: store.size(KEY),
        lambda: b"".join(store.read(KEY)),
        lambda: list(store.keys()),
        lambda: store.delete(KEY),
    ):
        with pytest.raises(StorageUnavailable) as failure:
            action()
        # Where the store is goes to the log only, never to the client.
        assert "127.0.0.1" in failure.value.reason
        assert "127.0.0.1" not in failure.value.message
        assert "the-password" not in failure.value.message
