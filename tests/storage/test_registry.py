"""Named stores from plain settings, as the composition root will hand them over."""

from __future__ import annotations

from pathlib import Path

import pytest

from skylens.storage.checked import CheckedStore
from skylens.storage.filesystem import FilesystemStore
from skylens.storage.registry import InvalidStoreSettings, build_stores
from skylens.storage.s3 import S3Store
from skylens.storage.swift import SwiftStore
from tests.storage.stores import unique_name
from tests.support.swift import RunningSwift


def test_every_kind_is_built_under_its_name(tmp_path: Path, swift: RunningSwift) -> None:
    settings = {
        "local": {
            "kind": "file",
            "root": str(tmp_path / "images"),
            "fsync": False,
            "description": "Fast local disk",
            "weight": 10,
        },
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

    backends: dict[str, type] = {}
    for name, store in stores.items():
        assert isinstance(store.blob, CheckedStore)  # every store goes through the wrapper
        backends[name] = type(store.blob.backend)
    assert backends == {
        "local": FilesystemStore,
        "objects": S3Store,
        "cloud": SwiftStore,
    }
    assert [store.id for store in stores.values()] == ["local", "objects", "cloud"]
    assert [store.kind for store in stores.values()] == ["file", "s3", "swift"]
    assert [(store.description, store.weight) for store in stores.values()] == [
        ("Fast local disk", 10),
        ("", 0),
        ("", 0),
    ]
    for store in stores.values():
        writer = store.blob.writer("images/ab/abc")
        writer.write(b"data")
        writer.commit()
        assert b"".join(store.blob.read("images/ab/abc")) == b"data"
    assert settings["local"]["kind"] == "file"  # the settings are not consumed


def test_details_show_where_a_store_is_but_never_its_credentials(
    tmp_path: Path, swift: RunningSwift
) -> None:
    stores = build_stores(
        {
            "local": {"kind": "file", "root": str(tmp_path)},
            "objects": {
                "kind": "s3",
                "bucket": "images",
                "endpoint_url": swift.s3_endpoint,
                "access_key": swift.s3_access_key,
                "secret_key": swift.s3_secret_key,
                "path_style": True,
            },
            "cloud": {
                "kind": "swift",
                "auth_url": swift.auth_url,
                "user": swift.user,
                "key": swift.key,
                "container": "images",
            },
        }
    )

    assert stores["local"].blob.details() == {"data_dir": str(tmp_path.resolve()), "fsync": True}
    assert stores["objects"].blob.details() == {
        "endpoint": swift.s3_endpoint,
        "bucket": "images",
        "path_style": True,
        "first_part_size": 8 << 20,
        "max_parts": 10_000,
    }
    assert stores["cloud"].blob.details()["container"] == "images"
    shown = repr([store.blob.details() for store in stores.values()])
    for secret in (swift.s3_secret_key, swift.key, swift.s3_access_key):
        assert secret not in shown


@pytest.mark.parametrize("kind", [None, "ceph", 3])
def test_an_unknown_kind_is_refused(kind: object) -> None:
    with pytest.raises(InvalidStoreSettings, match="kind must be one of file, http, s3, swift"):
        build_stores({"main": {"kind": kind, "root": "images"}})


def test_an_unknown_option_is_refused_with_the_known_ones(tmp_path: Path) -> None:
    with pytest.raises(InvalidStoreSettings) as refused:
        build_stores({"main": {"kind": "file", "root": str(tmp_path), "fsycn": True}})

    assert refused.value.args[0] == (
        "store 'main' (file): unknown option(s) fsycn; known: fsync, root"
    )


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("description", 3, "description must be a string"),
        ("weight", "high", "weight must be an integer"),
        ("weight", True, "weight must be an integer"),
    ],
)
def test_description_and_weight_are_typed(
    tmp_path: Path, option: str, value: object, message: str
) -> None:
    with pytest.raises(InvalidStoreSettings, match=f"store 'main': {message}"):
        build_stores({"main": {"kind": "file", "root": str(tmp_path), option: value}})


def test_a_missing_option_is_refused() -> None:
    with pytest.raises(InvalidStoreSettings, match=r"'objects' \(s3\): missing option\(s\) bucket"):
        build_stores({"objects": {"kind": "s3", "endpoint_url": "http://127.0.0.1:1"}})


def test_a_bad_value_is_refused_with_the_stores_name() -> None:
    with pytest.raises(InvalidStoreSettings, match="'objects' \\(s3\\): part_size must be"):
        build_stores({"objects": {"kind": "s3", "bucket": "images", "part_size": 1024}})
