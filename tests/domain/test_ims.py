"""The IMS profile's pure rules: releases, Mitaka's visibilities, legacy tags."""

from __future__ import annotations

import datetime as dt

import pytest

from skylens.domain.images import Image, ImageStatus, Visibility
from skylens.domain.ims import (
    ApiRelease,
    legacy_tag,
    mitaka_visibility,
    mitaka_visibility_filter,
    release_of,
)

NOW = dt.datetime(2026, 1, 1)


@pytest.mark.parametrize(
    ("header", "release"),
    [
        (None, ApiRelease.MITAKA),
        ("M", ApiRelease.MITAKA),
        ("mitaka", ApiRelease.MITAKA),
        ("Liberty", ApiRelease.MITAKA),
        ("A", ApiRelease.MITAKA),
        ("N", ApiRelease.QUEENS),
        ("Queens", ApiRelease.QUEENS),
        ("z", ApiRelease.QUEENS),
        (" Q ", ApiRelease.QUEENS),
        ("2.6", None),
        ("", None),
        ("é", None),
    ],
)
def test_release_of(header: str | None, release: ApiRelease | None) -> None:
    assert release_of(header) is release


def test_mitaka_knew_public_and_private_only() -> None:
    assert {mitaka_visibility(v) for v in Visibility} == {Visibility.PUBLIC, Visibility.PRIVATE}
    assert mitaka_visibility(Visibility.SHARED) is Visibility.PRIVATE
    assert mitaka_visibility(Visibility.COMMUNITY) is Visibility.PUBLIC


def test_mitaka_filters_find_what_mitaka_shows() -> None:
    assert set(mitaka_visibility_filter(Visibility.PRIVATE)) == {
        Visibility.PRIVATE,
        Visibility.SHARED,
    }
    assert set(mitaka_visibility_filter(Visibility.PUBLIC)) == {
        Visibility.PUBLIC,
        Visibility.COMMUNITY,
    }
    assert mitaka_visibility_filter(Visibility.SHARED) == (Visibility.SHARED,)
    assert mitaka_visibility_filter(Visibility.COMMUNITY) == ()


def test_legacy_tag() -> None:
    assert legacy_tag("a=b") == "a.b"
    assert legacy_tag("a=b=c") == "a.b=c"
    assert legacy_tag("plain") is None


def test_active_at_is_the_first_activation() -> None:
    image = Image("i", "o", ImageStatus.SAVING, Visibility.PRIVATE, NOW, NOW)
    later = NOW + dt.timedelta(days=1)

    active = image.with_status(ImageStatus.ACTIVE, NOW)
    again = active.with_status(ImageStatus.DEACTIVATED, later).with_status(
        ImageStatus.ACTIVE, later
    )

    assert active.active_at == NOW
    assert again.active_at == NOW
    assert image.with_status(ImageStatus.QUEUED, NOW).active_at is None
