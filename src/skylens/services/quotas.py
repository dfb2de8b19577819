"""Quota use cases: the claims a write makes on its project's limits, and usage."""

from __future__ import annotations

from collections.abc import Mapping

from skylens.domain.access import RequestContext
from skylens.domain.ports import ImageRepository
from skylens.domain.quotas import (
    MIB,
    LimitSource,
    QuotaClaim,
    Resource,
    ResourceUsage,
    exceeded,
    reported,
)


class QuotaService:
    def __init__(self, repository: ImageRepository, limits: LimitSource) -> None:
        self._repository = repository
        self._limits = limits

    def claims(self, project_id: str | None, deltas: Mapping[Resource, int]) -> list[QuotaClaim]:
        """The claims `deltas` make on the project's limited resources (none for an
        image without owner, or without a quota system, so nothing is locked)."""
        if project_id is None or not self._limits.enabled:
            return []
        limits = self._limits.limits(project_id)
        return [
            QuotaClaim(resource, limits.of(resource), delta)
            for resource, delta in deltas.items()
            if limits.limits(resource)
        ]

    def size_budget(self, project_id: str | None) -> int | None:
        """Bytes of image data the project may still store, or None for no limit.

        Read without a lock: it lets an upload stop as soon as it cannot fit, while
        the check when the upload commits is the one that holds under concurrency.
        """
        claims = self.claims(project_id, {Resource.IMAGE_SIZE_TOTAL: 0})
        if project_id is None or not claims:
            return None
        size = Resource.IMAGE_SIZE_TOTAL
        used = self._repository.usage(project_id, (size,))[size]
        return claims[0].limit * MIB - used

    def over_budget(self, project_id: str, budget: int, delta: int) -> Exception:
        """The refusal of an upload of `delta` bytes that does not fit in `budget`."""
        claim = self.claims(project_id, {Resource.IMAGE_SIZE_TOTAL: delta})[0]
        return exceeded(project_id, claim, claim.limit * MIB - budget)

    def usage(self, context: RequestContext) -> list[ResourceUsage]:
        """The caller's project's limits and usage (`GET /v2/info/usage`); empty
        without a quota system, as Glance without `use_keystone_limits`."""
        if not self._limits.enabled or context.project_id is None:
            return []
        limits = self._limits.limits(context.project_id)
        used = self._repository.usage(context.project_id)
        return [
            ResourceUsage(resource, limits.of(resource), reported(resource, used[resource]))
            for resource in Resource
        ]
