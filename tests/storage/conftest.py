"""Blob stores on the session's real Swift server: S3 (s3api) and Swift, each in a bucket
or container of its own, so tests never see each other's blobs. Each is used through
the wrapper every configured store gets (`CheckedStore`), as the service uses it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from skylens.storage.checked import CheckedStore
from skylens.storage.s3 import S3Store
from skylens.storage.swift import SwiftStore
from tests.storage.stores import PART, unique_name
from tests.support.swift import RunningSwift


@pytest.fixture
def make_s3_store(swift: RunningSwift) -> Callable[..., CheckedStore]:
    def make(**options: Any) -> CheckedStore:
        settings: dict[str, Any] = {
            "bucket": unique_name("s3"),
            "endpoint_url": swift.s3_endpoint,
            "region": swift.region,
            "access_key": swift.s3_access_key,
            "secret_key": swift.s3_secret_key,
            "path_style": True,
            "create_bucket": True,
            "part_size": PART,
            "max_parts": 1000,  # s3api's limit
        }
        settings.update(options)
        return CheckedStore(S3Store("s3", **settings))

    return make


@pytest.fixture
def make_swift_store(swift: RunningSwift) -> Callable[..., CheckedStore]:
    def make(**options: Any) -> CheckedStore:
        settings: dict[str, Any] = {
            "auth_url": swift.auth_url,
            "user": swift.user,
            "key": swift.key,
            "container": unique_name("swift"),
            "create_container": True,
            "segment_size": PART,
        }
        settings.update(options)
        return CheckedStore(SwiftStore("swift", **settings))

    return make
