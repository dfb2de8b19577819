"""Quota claims, limits and Glance's wording of a refusal."""

from __future__ import annotations

import pytest

from skylens.domain.quotas import (
    MIB,
    ConfiguredLimits,
    NoLimits,
    QuotaClaim,
    Resource,
    exceeded,
    reported,
)

GLANCE_413 = (
    "The request returned a 413 Request Entity Too Large. This generally means that "
    "rate limiting or a quota threshold was breached.\n\nThe response body:\n"
)


@pytest.mark.parametrize(
    ("limit", "usage", "delta", "over"),
    [(3, 2, 1, False), (3, 3, 1, True), (0, 0, 1, True), (0, 0, 0, False), (-1, 10**9, 1, False)],
)
def test_a_count_claim_is_over_when_usage_plus_delta_passes_the_limit(
    limit: int, usage: int, delta: int, over: bool
) -> None:
    claim = QuotaClaim(Resource.IMAGE_COUNT_TOTAL, limit, delta)

    assert claim.exceeded_by(usage) is over


def test_a_size_claim_counts_bytes_against_a_limit_in_mib() -> None:
    claim = QuotaClaim(Resource.IMAGE_SIZE_TOTAL, 2, MIB)

    assert not claim.exceeded_by(MIB)
    assert claim.exceeded_by(MIB + 1)


def test_the_refusal_is_oslo_limits_text_inside_glances_413() -> None:
    error = exceeded("alpha", QuotaClaim(Resource.IMAGE_COUNT_TOTAL, 3, 1), 3)

    assert error.message == GLANCE_413 + (
        "Project alpha is over a limit for [Resource image_count_total is over limit of 3 "
        "due to current usage 3 and delta 1]"
    )


def test_a_size_refusal_speaks_mib_rounding_the_delta_up() -> None:
    error = exceeded("alpha", QuotaClaim(Resource.IMAGE_SIZE_TOTAL, 2, MIB + 1), 3 * MIB // 2)

    assert error.message.endswith("over limit of 2 due to current usage 1 and delta 2]")


def test_an_uploading_refusal_counts_the_image_itself_as_glance_does() -> None:
    error = exceeded("alpha", QuotaClaim(Resource.IMAGE_COUNT_UPLOADING, 1, 1), 1)

    assert error.message.endswith("over limit of 1 due to current usage 2 and delta 0]")


def test_configured_limits_override_the_defaults_per_resource() -> None:
    limits = ConfiguredLimits(
        {Resource.IMAGE_COUNT_TOTAL: 3, Resource.IMAGE_SIZE_TOTAL: 10},
        {"big": {Resource.IMAGE_SIZE_TOTAL: 100}},
    )

    assert limits.limits("big").of(Resource.IMAGE_SIZE_TOTAL) == 100
    assert limits.limits("big").of(Resource.IMAGE_COUNT_TOTAL) == 3
    assert limits.limits("small").of(Resource.IMAGE_SIZE_TOTAL) == 10
    assert not limits.limits("small").limits(Resource.IMAGE_STAGE_TOTAL)


def test_without_a_quota_system_nothing_is_limited() -> None:
    assert not NoLimits().enabled
    assert not NoLimits().limits("any").limits(Resource.IMAGE_COUNT_TOTAL)


def test_usage_reports_sizes_in_whole_mib() -> None:
    assert reported(Resource.IMAGE_SIZE_TOTAL, 2 * MIB - 1) == 1
    assert reported(Resource.IMAGE_COUNT_TOTAL, 7) == 7
