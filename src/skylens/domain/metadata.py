"""Image metadata as the Compute API's image proxy changes it.

Compute "metadata" is the image's extra properties. Each operation here is a plan:
given the image as the caller sees it, the property changes to make, so that the
reading and the writing happen in one atomic update.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from skylens.domain.changes import Change, ChangeOp
from skylens.domain.errors import MetadataKeyNotFound, ReservedAttribute
from skylens.domain.images import MUTABLE_ATTRIBUTES, Image, check_property_name

Plan = Callable[[Image], tuple[Change, ...]]


def check_metadata_key(key: str) -> None:
    """A metadata key is an extra property: never a core attribute's name."""
    if key in MUTABLE_ATTRIBUTES:
        raise ReservedAttribute(key)
    check_property_name(key)


def merge(metadata: Mapping[str, str]) -> Plan:
    """Set these items, keeping every other one."""
    for key in metadata:
        check_metadata_key(key)
    changes = tuple(Change(ChangeOp.ADD, key, value) for key, value in metadata.items())
    return lambda _image: changes


def replace_all(metadata: Mapping[str, str]) -> Plan:
    """Make these items the image's whole metadata."""
    for key in metadata:
        check_metadata_key(key)

    def plan(image: Image) -> tuple[Change, ...]:
        removed = tuple(
            Change(ChangeOp.REMOVE, key) for key in image.properties if key not in metadata
        )
        return removed + tuple(Change(ChangeOp.ADD, k, v) for k, v in metadata.items())

    return plan


def remove(key: str) -> Plan:
    """Delete one item, which must exist."""

    def plan(image: Image) -> tuple[Change, ...]:
        if key not in image.properties:
            raise MetadataKeyNotFound(key)
        return (Change(ChangeOp.REMOVE, key),)

    return plan
