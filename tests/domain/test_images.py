"""The image status machine: one table, every transition checked against it."""

from __future__ import annotations

import datetime as dt
import itertools

import pytest

from skylens.domain.errors import InvalidRequest, InvalidStatusTransition
from skylens.domain.images import (
    STATUS_TRANSITIONS,
    Image,
    ImageStatus,
    Visibility,
    check_minimums,
    check_transition,
)

NOW = dt.datetime(2026, 1, 1, 12, 0, 0)

# Glance's valid_state_targets, written out independently as the expectation.
EXPECTED = {
    ("queued", "saving"), ("queued", "uploading"), ("queued", "importing"),
    ("queued", "active"), ("queued", "deleted"),
    ("saving", "active"), ("saving", "killed"), ("saving", "deleted"), ("saving", "queued"),
    ("uploading", "importing"), ("uploading", "queued"), ("uploading", "deleted"),
    ("importing", "active"), ("importing", "deleted"), ("importing", "queued"),
    ("active", "pending_delete"), ("active", "deleted"), ("active", "deactivated"),
    ("killed", "deleted"),
    ("pending_delete", "deleted"), ("pending_delete", "active"),
    ("deactivated", "active"), ("deactivated", "deleted"),
}  # fmt: skip


def image(status: ImageStatus = ImageStatus.QUEUED) -> Image:
    return Image(
        id="a", owner="p", status=status, visibility=Visibility.SHARED,
        created_at=NOW, updated_at=NOW,
    )  # fmt: skip


def test_every_status_has_a_row_in_the_transition_table() -> None:
    assert set(STATUS_TRANSITIONS) == set(ImageStatus)


@pytest.mark.parametrize(("current", "target"), list(itertools.product(ImageStatus, ImageStatus)))
def test_a_transition_is_allowed_exactly_when_glance_allows_it(
    current: ImageStatus, target: ImageStatus
) -> None:
    if (current.value, target.value) in EXPECTED:
        check_transition(current, target)
    else:
        with pytest.raises(InvalidStatusTransition) as raised:
            check_transition(current, target)
        assert raised.value.message == (
            f"Image status transition from {current.value} to {target.value} is not allowed"
        )


def test_with_status_moves_the_image_and_stamps_updated_at() -> None:
    later = NOW + dt.timedelta(seconds=5)

    moved = image().with_status(ImageStatus.SAVING, later)

    assert moved.status is ImageStatus.SAVING
    assert moved.updated_at == later


def test_deleted_is_final() -> None:
    with pytest.raises(InvalidStatusTransition):
        image(ImageStatus.DELETED).with_status(ImageStatus.ACTIVE, NOW)


@pytest.mark.parametrize("name", ["min_ram", "min_disk"])
def test_minimums_must_be_non_negative_32_bit_integers(name: str) -> None:
    check_minimums({name: 0})
    check_minimums({name: 2**31 - 1})
    with pytest.raises(InvalidRequest, match="Cannot be a negative value"):
        check_minimums({name: -1})
    with pytest.raises(InvalidRequest, match="must not exceed 2147483647"):
        check_minimums({name: 2**31})
