"""Applying JSON-patch changes to an image, with Glance's semantics."""

from __future__ import annotations

import datetime as dt
import re

import pytest

from skylens.domain.changes import Change, ChangeOp, ImageLimits, apply_changes, check_counts
from skylens.domain.errors import (
    Forbidden,
    LimitExceeded,
    PropertyExists,
    PropertyNotFound,
    PropertyNotRemovable,
    ReadOnlyAttribute,
    ReservedAttribute,
)
from skylens.domain.images import Image, ImageStatus, Visibility

NOW = dt.datetime(2026, 1, 1, 12, 0, 0)
LATER = NOW + dt.timedelta(minutes=1)


def image(**overrides: object) -> Image:
    values: dict[str, object] = {
        "id": "i", "owner": "p", "status": ImageStatus.QUEUED,
        "visibility": Visibility.SHARED, "created_at": NOW, "updated_at": NOW,
        "properties": {"os_distro": "ubuntu"}, "tags": frozenset({"a"}),
    }  # fmt: skip
    values.update(overrides)
    return Image(**values)  # type: ignore[arg-type]


def test_replace_sets_attributes_and_properties_and_stamps_updated_at() -> None:
    changed = apply_changes(
        image(),
        [
            Change(ChangeOp.REPLACE, "name", "Fedora 17"),
            Change(ChangeOp.REPLACE, "os_distro", "fedora"),
            Change(ChangeOp.REPLACE, "tags", ["fedora", "beefy"]),
        ],
        LATER,
    )

    assert changed.name == "Fedora 17"
    assert changed.properties == {"os_distro": "fedora"}
    assert changed.tags == {"fedora", "beefy"}
    assert changed.updated_at == LATER


def test_add_creates_a_property_and_in_v21_replaces_an_existing_one() -> None:
    changed = apply_changes(
        image(),
        [Change(ChangeOp.ADD, "login-user", "kvothe"), Change(ChangeOp.ADD, "os_distro", "arch")],
        LATER,
    )

    assert changed.properties == {"os_distro": "arch", "login-user": "kvothe"}


def test_add_on_an_existing_member_is_a_conflict_in_the_v20_media_type() -> None:
    with pytest.raises(PropertyExists, match=re.escape("Property os_distro already present.")):
        apply_changes(image(), [Change(ChangeOp.ADD, "os_distro", "x")], LATER, add_replaces=False)


def test_replace_or_remove_of_a_missing_property_is_a_conflict() -> None:
    for op in (ChangeOp.REPLACE, ChangeOp.REMOVE):
        with pytest.raises(PropertyNotFound, match=re.escape("Property nope does not exist.")):
            apply_changes(image(), [Change(op, "nope", "x")], LATER)


def test_core_attributes_cannot_be_removed() -> None:
    with pytest.raises(PropertyNotRemovable, match=re.escape("Property name may not be removed.")):
        apply_changes(image(), [Change(ChangeOp.REMOVE, "name")], LATER)


def test_read_only_and_reserved_names_are_refused() -> None:
    with pytest.raises(ReadOnlyAttribute, match=re.escape("Attribute 'status' is read-only.")):
        apply_changes(image(), [Change(ChangeOp.REPLACE, "status", "active")], LATER)
    with pytest.raises(ReservedAttribute, match=re.escape("Attribute 'os_glance_x' is reserved.")):
        apply_changes(image(), [Change(ChangeOp.ADD, "os_glance_x", "1")], LATER)


def test_formats_change_only_before_the_image_has_data() -> None:
    queued = apply_changes(image(), [Change(ChangeOp.REPLACE, "disk_format", "raw")], LATER)
    assert queued.disk_format == "raw"

    with pytest.raises(Forbidden, match="disk_format can be only replaced for a queued image"):
        apply_changes(
            image(status=ImageStatus.ACTIVE),
            [Change(ChangeOp.REPLACE, "disk_format", "raw")],
            LATER,
        )


def test_changes_apply_in_order_and_a_failure_changes_nothing() -> None:
    original = image()
    with pytest.raises(PropertyNotFound):
        apply_changes(
            original,
            [Change(ChangeOp.ADD, "x", "1"), Change(ChangeOp.REMOVE, "missing")],
            LATER,
        )
    assert original.properties == {"os_distro": "ubuntu"}


def test_property_quota_counts_only_when_a_new_key_is_added() -> None:
    limits = ImageLimits(properties=1, tags=1)
    before = image()
    check_counts(image(properties={"os_distro": "arch"}), limits, before=before)

    with pytest.raises(LimitExceeded) as raised:
        check_counts(image(properties={"os_distro": "a", "b": "c"}), limits, before=before)
    assert raised.value.message == (
        "The limit has been exceeded on the number of allowed image properties. "
        "Attempted: 2, Maximum: 1"
    )


def test_a_negative_quota_means_unlimited() -> None:
    many = image(tags=frozenset(str(n) for n in range(500)))
    check_counts(many, ImageLimits(tags=-1))
    with pytest.raises(LimitExceeded, match=re.escape("image tags. Attempted: 500, Maximum: 128")):
        check_counts(many, ImageLimits())
