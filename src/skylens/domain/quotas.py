"""Per-project quotas: Glance's four unified-limit resources, and what exceeding one says.

The limits come from configuration or from Keystone's unified limits (a
`LimitSource`). Usage is counted by the repository in the same transaction as the
write that adds to it, under a per-project lock, so concurrent requests can never
take a project past a limit (Glance checks before it writes, and documents that
concurrent requests can overshoot).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from enum import StrEnum
from typing import Protocol

from skylens.domain.errors import QuotaExceeded

MIB = 1 << 20
UNLIMITED = -1


class Resource(StrEnum):
    """Glance's resource names, as registered in Keystone."""

    IMAGE_SIZE_TOTAL = "image_size_total"  # MiB of image data in stores (each copy counts)
    IMAGE_STAGE_TOTAL = "image_stage_total"  # MiB of staged import data
    IMAGE_COUNT_TOTAL = "image_count_total"  # images owned
    IMAGE_COUNT_UPLOADING = "image_count_uploading"  # images receiving data

    @property
    def in_mib(self) -> bool:
        return self in (Resource.IMAGE_SIZE_TOTAL, Resource.IMAGE_STAGE_TOTAL)


@dataclasses.dataclass(frozen=True, slots=True)
class ProjectLimits:
    """A project's limits; a negative limit means none."""

    values: Mapping[Resource, int]

    def of(self, resource: Resource) -> int:
        return self.values.get(resource, UNLIMITED)

    def limits(self, resource: Resource) -> bool:
        return self.of(resource) >= 0


NO_LIMITS = ProjectLimits({})


@dataclasses.dataclass(frozen=True, slots=True)
class ResourceUsage:
    """One row of `GET /v2/info/usage`."""

    resource: Resource
    limit: int
    usage: int


@dataclasses.dataclass(frozen=True, slots=True)
class QuotaClaim:
    """What a write adds to its project's use of a resource, checked against the
    limit in the write's own transaction. Size resources claim bytes."""

    resource: Resource
    limit: int
    delta: int

    def exceeded_by(self, usage: int) -> bool:
        """Would `usage` (bytes for size resources) plus this claim pass the limit?"""
        if self.limit < 0:
            return False
        scale = MIB if self.resource.in_mib else 1
        return usage + self.delta > self.limit * scale


class LimitSource(Protocol):
    """Where the limits live: configuration, or Keystone's unified limits."""

    @property
    def enabled(self) -> bool:
        """False when no quota system is configured (usage then reports nothing)."""

    def limits(self, project_id: str) -> ProjectLimits:
        """The project's limits; raise `IdentityUnavailable` if they cannot be read."""


def exceeded(project_id: str, claim: QuotaClaim, usage: int) -> QuotaExceeded:
    """The refusal for `claim` on top of `usage`, in the resource's reporting unit."""
    if claim.resource.in_mib:
        return QuotaExceeded(
            project_id, claim.resource, claim.limit, usage // MIB, -(-claim.delta // MIB)
        )
    if claim.resource is Resource.IMAGE_COUNT_UPLOADING:
        # Glance checks after marking the image saving, so its usage counts it.
        return QuotaExceeded(project_id, claim.resource, claim.limit, usage + claim.delta, 0)
    return QuotaExceeded(project_id, claim.resource, claim.limit, usage, claim.delta)


def reported(resource: Resource, usage: int) -> int:
    """Usage as `GET /v2/info/usage` reports it: MiB (rounded down) for sizes."""
    return usage // MIB if resource.in_mib else usage


class NoLimits:
    """No quota system: nothing is limited, and usage reports nothing (as Glance
    without `use_keystone_limits`)."""

    enabled = False

    def limits(self, project_id: str) -> ProjectLimits:
        return NO_LIMITS


class ConfiguredLimits:
    """Limits from the service's own configuration: defaults for every project,
    overridden per project."""

    enabled = True

    def __init__(
        self,
        defaults: Mapping[Resource, int],
        per_project: Mapping[str, Mapping[Resource, int]],
    ) -> None:
        self._defaults = ProjectLimits(dict(defaults))
        self._per_project = {
            project: ProjectLimits({**defaults, **overrides})
            for project, overrides in per_project.items()
        }

    def limits(self, project_id: str) -> ProjectLimits:
        return self._per_project.get(project_id, self._defaults)
