"""Changes a client asks for on an image, applied with Glance's semantics."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable, Iterable
from enum import StrEnum
from typing import Any

from skylens.domain.errors import (
    Forbidden,
    InvalidRequest,
    LimitExceeded,
    PropertyExists,
    PropertyLimitExceeded,
    PropertyNotFound,
    PropertyNotRemovable,
)
from skylens.domain.images import (
    MUTABLE_ATTRIBUTES,
    READ_ONLY_ATTRIBUTES,
    Image,
    ImageStatus,
    Visibility,
    check_minimums,
    check_property_name,
)
from skylens.domain.protections import PropertyOperation

# Formats describe the data, so they can change only before there is data.
_FORMAT_ATTRIBUTES = ("disk_format", "container_format")
_FORMAT_EDITABLE = (ImageStatus.QUEUED, ImageStatus.IMPORTING)


class ChangeOp(StrEnum):
    ADD = "add"
    REPLACE = "replace"
    REMOVE = "remove"


_LOCATION_VERBS = {ChangeOp.ADD: "add", ChangeOp.REPLACE: "update", ChangeOp.REMOVE: "remove"}


def invisible(verb: str) -> Forbidden:
    """Glance's 403 for a locations change while `show_multiple_locations` is off."""
    return Forbidden(f"It's not allowed to {verb} locations if locations are invisible.")


@dataclasses.dataclass(frozen=True, slots=True)
class Change:
    """One operation on a top-level image attribute or property."""

    op: ChangeOp
    name: str
    value: Any = None
    # `/locations/N` or `/locations/-`: the position in a list attribute.
    position: str | None = None


# Applies one change of `locations` (Glance's rules, stores and policy: see
# `skylens.services.locations`) to the image as the changes so far left it.
LocationChange = Callable[["Image", Change, dt.datetime], "Image"]


@dataclasses.dataclass(frozen=True, slots=True)
class ImageLimits:
    """Per-image quotas (Glance's image_property_quota etc.); negative = unlimited."""

    properties: int = 128
    tags: int = 128
    members: int = 128
    # Characters in one extra property's value: what Glance can store on MySQL (TEXT).
    property_value_length: int = 65535


def check_counts(image: Image, limits: ImageLimits, before: Image | None = None) -> None:
    """Enforce the per-image limits on `image`, `before` changed: the property count
    only when a new key is added, value lengths only of values set anew.

    Both images are as the caller sees them (without the properties property
    protections hide from it), so that a refusal tells nothing of hidden properties.
    """
    if before is None or set(image.properties) - set(before.properties):
        _check_limit("properties", len(image.properties), limits.properties)
    if before is None or image.tags != before.tags:
        _check_limit("tags", len(image.tags), limits.tags)
    maximum = limits.property_value_length
    if maximum < 0:
        return
    old = {} if before is None else before.properties
    for name, value in image.properties.items():
        if value is not None and len(value) > maximum and old.get(name) != value:
            raise InvalidRequest(
                f"The value of property {name} should not be greater than {maximum} characters."
            )


def _check_limit(what: str, attempted: int, maximum: int) -> None:
    if 0 <= maximum < attempted:
        error = PropertyLimitExceeded if what == "properties" else LimitExceeded
        raise error(
            f"The limit has been exceeded on the number of allowed image {what}. "
            f"Attempted: {attempted}, Maximum: {maximum}"
        )


def apply_changes(
    image: Image,
    changes: Iterable[Change],
    now: dt.datetime,
    *,
    add_replaces: bool = True,
    guard: Callable[[str, PropertyOperation], None] | None = None,
    locations: LocationChange | None = None,
) -> Image:
    """Return the image with every change applied, in order.

    `add_replaces` is the v2.1 json-patch behaviour (add on an existing member
    replaces it); the deprecated v2.0 media type refuses it with 409. `guard`, if
    given, is told of each extra property about to be created, updated or deleted,
    just before it is, and may refuse by raising (property protections). Changes of
    `locations` go to `locations` (without it they are refused as Glance refuses them
    while locations are invisible).
    """
    attributes: dict[str, Any] = {}
    properties = dict(image.properties)
    located = image
    for change in changes:
        name = change.name
        if name == "locations":
            if locations is None:
                raise invisible(_LOCATION_VERBS[change.op])
            located = locations(located, change, now)
            continue
        is_attribute = name in MUTABLE_ATTRIBUTES or name in READ_ONLY_ATTRIBUTES
        if name in READ_ONLY_ATTRIBUTES:
            check_property_name(name)
        exists = is_attribute or name in properties
        if change.op is ChangeOp.REMOVE:
            if is_attribute:
                raise PropertyNotRemovable(name)
            if name not in properties:
                raise PropertyNotFound(name)
            if guard is not None:
                guard(name, PropertyOperation.DELETE)
            del properties[name]
            continue
        if change.op is ChangeOp.ADD and exists and not add_replaces:
            raise PropertyExists(name)
        if change.op is ChangeOp.REPLACE and not exists:
            raise PropertyNotFound(name)
        if is_attribute:
            attributes[name] = _attribute_value(name, change.value)
        else:
            check_property_name(name)
            if guard is not None:
                guard(name, PropertyOperation.UPDATE if exists else PropertyOperation.CREATE)
            properties[name] = change.value
    for name in _FORMAT_ATTRIBUTES:
        # As Glance's setters: refused even when the value would stay the same.
        if name in attributes and image.status not in _FORMAT_EDITABLE:
            raise Forbidden(f"Attribute {name} can be only replaced for a queued image.")
    check_minimums(attributes)
    return located.with_changes(now, properties=properties, **attributes)


def _attribute_value(name: str, value: Any) -> Any:
    if name == "tags":
        return frozenset(value)
    if name == "visibility":
        return Visibility(value)
    if name in ("min_ram", "min_disk") and value is None:
        return 0
    return value
