"""Stores as the deployment configured them: a blob store plus what users are told."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from skylens.domain.ports import BlobStore


@dataclasses.dataclass(frozen=True)
class ConfiguredStore:
    """A named place image data lives.

    `weight` orders the stores a download may read from, highest first, when an
    image has copies in several (Glance's store weight).
    """

    blob: BlobStore
    kind: str  # file | s3 | swift | http, as Glance names store types
    description: str = ""
    weight: int = 0
    # The URL an image location shows for the blob under a key (`file:///...`).
    url_of: Callable[[str], str] | None = None
    # A store of URLs (read-only: the http store): the key it reads a URL under, or
    # None for a URL it does not serve. None for the stores that hold image data.
    key_of_url: Callable[[str], str | None] | None = None

    def location_url(self, key: str) -> str:
        return self.url_of(key) if self.url_of is not None else f"{self.kind}://{self.id}/{key}"

    @property
    def id(self) -> str:
        return self.blob.name


@dataclasses.dataclass(frozen=True)
class StagingArea:
    """Where import data waits between stage and import (a store no image lists),
    and how its keys name images."""

    store: ConfiguredStore
    key_of: Callable[[str], str]
    image_id_of_key: Callable[[str], str | None]


@dataclasses.dataclass(frozen=True)
class StoreInfo:
    """One entry of `GET /v2/info/stores`; the detail fields only for admins."""

    id: str
    description: str
    is_default: bool
    kind: str | None = None
    weight: int | None = None
    properties: dict[str, object] | None = None
