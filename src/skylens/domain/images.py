"""The image aggregate and its status machine."""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from collections.abc import Mapping
from enum import StrEnum
from typing import Any

from skylens.domain.errors import (
    InvalidRequest,
    InvalidStatusTransition,
    ReadOnlyAttribute,
    ReservedAttribute,
)


class ImageStatus(StrEnum):
    QUEUED = "queued"
    SAVING = "saving"
    UPLOADING = "uploading"
    IMPORTING = "importing"
    ACTIVE = "active"
    DEACTIVATED = "deactivated"
    KILLED = "killed"
    DELETED = "deleted"
    PENDING_DELETE = "pending_delete"


class Visibility(StrEnum):
    PUBLIC = "public"
    COMMUNITY = "community"
    SHARED = "shared"
    PRIVATE = "private"


class MemberStatus(StrEnum):
    PENDING = "pending"
    ACCEPTED = "accepted"
    REJECTED = "rejected"


# The one table every status change goes through: current status -> allowed targets.
# saving -> queued exists so that a failed upload can be retried (as in Glance v2).
_S = ImageStatus
STATUS_TRANSITIONS: Mapping[ImageStatus, frozenset[ImageStatus]] = {
    _S.QUEUED: frozenset({_S.SAVING, _S.UPLOADING, _S.IMPORTING, _S.ACTIVE, _S.DELETED}),
    _S.SAVING: frozenset({_S.ACTIVE, _S.KILLED, _S.DELETED, _S.QUEUED}),
    _S.UPLOADING: frozenset({_S.IMPORTING, _S.QUEUED, _S.DELETED}),
    _S.IMPORTING: frozenset({_S.ACTIVE, _S.DELETED, _S.QUEUED}),
    _S.ACTIVE: frozenset({_S.PENDING_DELETE, _S.DELETED, _S.DEACTIVATED}),
    _S.KILLED: frozenset({_S.DELETED}),
    # A delayed delete can be undone while the data still exists.
    _S.PENDING_DELETE: frozenset({_S.DELETED, _S.ACTIVE}),
    _S.DELETED: frozenset(),
    _S.DEACTIVATED: frozenset({_S.ACTIVE, _S.DELETED}),
}


def check_transition(current: ImageStatus, target: ImageStatus) -> None:
    """Raise unless the status machine allows `current` -> `target`."""
    if target not in STATUS_TRANSITIONS[current]:
        raise InvalidStatusTransition(current.value, target.value)


# Attributes a client may set on create and change with PATCH.
MUTABLE_ATTRIBUTES: frozenset[str] = frozenset(
    {
        "name",
        "visibility",
        "protected",
        "os_hidden",
        "min_ram",
        "min_disk",
        "container_format",
        "disk_format",
        "tags",
        "owner",
    }
)


@dataclasses.dataclass(frozen=True, slots=True)
class Location:
    """One entry of an image's `locations`: its URL and metadata (whose `store` names
    the store it belongs to)."""

    url: str
    store: str
    metadata: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    # True for a copy in one of the service's own stores (`Image.stores`).
    own: bool = False

    def shown(self) -> dict[str, Any]:
        return {"url": self.url, "metadata": {**self.metadata, "store": self.store}}


@dataclasses.dataclass(frozen=True, slots=True)
class Image:
    id: str
    owner: str | None
    status: ImageStatus
    visibility: Visibility
    created_at: dt.datetime
    updated_at: dt.datetime
    name: str | None = None
    protected: bool = False
    os_hidden: bool = False
    checksum: str | None = None
    os_hash_algo: str | None = None
    os_hash_value: str | None = None
    size: int | None = None
    virtual_size: int | None = None
    min_ram: int = 0
    min_disk: int = 0
    container_format: str | None = None
    disk_format: str | None = None
    tags: frozenset[str] = frozenset()
    properties: Mapping[str, str | None] = dataclasses.field(default_factory=dict)
    # Names of the stores holding the image data, in the order they got it.
    stores: tuple[str, ...] = ()
    # Where else the data may be read: URLs in read-only stores (the locations API).
    locations: tuple[Location, ...] = ()
    # When the image first became active (IMS shows it as `active_at`).
    active_at: dt.datetime | None = None

    def with_status(self, target: ImageStatus, now: dt.datetime) -> Image:
        check_transition(self.status, target)
        active_at = self.active_at
        if target is ImageStatus.ACTIVE and active_at is None:
            active_at = now
        return dataclasses.replace(self, status=target, updated_at=now, active_at=active_at)

    def with_changes(self, now: dt.datetime, **attributes: Any) -> Image:
        return dataclasses.replace(self, updated_at=now, **attributes)


def utc_now() -> dt.datetime:
    """Timestamps are naive UTC truncated to the second, as clients see them."""
    return dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0)


# Attributes only the service sets; a client naming one gets 403 read-only.
READ_ONLY_ATTRIBUTES: frozenset[str] = frozenset(
    {
        "id",
        "status",
        "checksum",
        "os_hash_algo",
        "os_hash_value",
        "size",
        "virtual_size",
        "created_at",
        "updated_at",
        "self",
        "file",
        "schema",
        "direct_url",
        "stores",
    }
)
# Names no client may use as a property; `os_glance_` is Glance's reserved namespace.
RESERVED_ATTRIBUTES: frozenset[str] = frozenset({"location", "locations", "deleted", "deleted_at"})
RESERVED_PREFIX = "os_glance"
MAX_NAME_LENGTH = 255


def check_property_name(name: str) -> None:
    """Raise unless a client may set a property called `name`."""
    if name in READ_ONLY_ATTRIBUTES:
        raise ReadOnlyAttribute(name)
    if name in RESERVED_ATTRIBUTES or name.startswith(RESERVED_PREFIX):
        raise ReservedAttribute(name)
    if len(name) > MAX_NAME_LENGTH:
        raise InvalidRequest("Custom property should not be greater than 255 characters.")


# An image id: a UUID, stored in lower case. Ids compare as text (a primary key on
# PostgreSQL and SQLite alike), so `canonical_image_id` lower-cases what clients send:
# an upper-case copy of an existing id is that id (409 on create), never a new image.
_IMAGE_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def is_image_id(text: str) -> bool:
    """Is `text` an id exactly as it is stored (a lower-case UUID, nothing around it)?"""
    return _IMAGE_ID.fullmatch(text) is not None


def canonical_image_id(text: str) -> str:
    """The id a client chose for a new image, as it is stored: 400 unless a UUID."""
    lowered = text.lower()
    if not is_image_id(lowered):
        raise InvalidRequest(f"Invalid image id {text!r}: an image id is a UUID.")
    return lowered


MAX_INT32 = 2**31 - 1


def check_minimums(attributes: Mapping[str, Any]) -> None:
    """min_ram and min_disk are non-negative 32-bit integers, as in Glance."""
    for name in ("min_ram", "min_disk"):
        value = attributes.get(name)
        if value is None:
            continue
        if value < 0:
            raise InvalidRequest(
                f"Invalid value '{value}' for parameter '{name}': Cannot be a negative value"
            )
        if value > MAX_INT32:
            raise InvalidRequest(f"'{name}' value out of range, must not exceed {MAX_INT32}.")
