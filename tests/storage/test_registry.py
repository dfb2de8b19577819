"""Named stores from plain settings, as the composition root will hand them over."""

from __future__ import annotations

from pathlib import Path

import pytest

from skylens.storage.filesystem import FilesystemStore
from skylens.storage.registry import InvalidStoreSettings, build_stores
from skylens.storage.s3 import S3Store
from skylens.storage.swift import SwiftStore
from tests.storage.stores import unique_name
from tests.support.swift import RunningSwift


def test_every_kind_is_built_under_its_name(tmp_path: Path, swift: RunningSwift) -> None:
    settings = {
        "local": {"kind": "filesystem", "root": str(tmp_path / "images"), "fsync": False},
        "objects": {
            "kind": "s3",
            "bucket": unique_name("s3"),
            "endpoint_url": swift.s3_endpoint,
            "region": swift.region,
            "access_key": swift.s3_access_key,
            "secret_key": swift.s3_secret_key,
            "path_style": True,
            "create_bucket": True,
        },
        "cloud": {
            "kind": "swift",
            "auth_url": swift.auth_url,
            "user": swift.user,
            "key": swift.key,
            "container": unique_name("swift"),
            "create_container": True,
        },
    }

    stores = build_stores(settings)

    assert {name: type(store) for name, store in stores.items()} == {
        "local": FilesystemStore,
        "objects": S3Store,
        "cloud": SwiftStore,
    }
    assert [store.name for store in stores.values()] == ["local", "objects", "cloud"]
    for store in stores.values():
        writer = store.writer("images/ab/abc")
        writer.write(b"data")
        writer.commit()
        assert b"".join(store.read("images/ab/abc")) == b"data"
    assert settings["local"]["kind"] == "filesystem"  # the settings are not consumed


@pytest.mark.parametrize("kind", [None, "ceph", 3])
def test_an_unknown_kind_is_refused(kind: object) -> None:
    with pytest.raises(InvalidStoreSettings, match="kind must be one of filesystem, s3, swift"):
        build_stores({"main": {"kind": kind, "root": "images"}})


def test_an_unknown_option_is_refused_with_the_known_ones(tmp_path: Path) -> None:
    with pytest.raises(InvalidStoreSettings) as refused:
        build_stores({"main": {"kind": "filesystem", "root": str(tmp_path), "fsycn": True}})

    assert refused.value.args[0] == (
        "store 'main' (filesystem): unknown option(s) fsycn; known: fsync, root"
    )


def test_a_missing_option_is_refused() -> None:
    with pytest.raises(InvalidStoreSettings, match=r"'objects' \(s3\): missing option\(s\) bucket"):
        build_stores({"objects": {"kind": "s3", "endpoint_url": "http://127.0.0.1:1"}})


def test_a_bad_value_is_refused_with_the_stores_name() -> None:
    with pytest.raises(InvalidStoreSettings, match="'objects' \\(s3\\): part_size must be"):
        build_stores({"objects": {"kind": "s3", "bucket": "images", "part_size": 1024}})
