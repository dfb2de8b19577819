"""`GET /v2/info/usage` (API 2.13): the caller's project's limits and usage."""

from __future__ import annotations

import dataclasses

from starlette.requests import Request
from starlette.responses import Response

from skylens.api.offload import Offload
from skylens.api.responses import json_response
from skylens.api.routing import Operation, Resource
from skylens.domain.access import RequestContext
from skylens.services.quotas import QuotaService


@dataclasses.dataclass(frozen=True)
class UsageHandlers:
    service: QuotaService
    reads: Offload

    async def usage(self, request: Request, context: RequestContext) -> Response:
        rows = await self.reads(self.service.usage, context)
        usage = {row.resource.value: {"limit": row.limit, "usage": row.usage} for row in rows}
        return json_response({"usage": usage})


def usage_resources(handlers: UsageHandlers) -> list[Resource]:
    return [
        Resource(
            "/v2/info/usage",
            [
                Operation(
                    "GET",
                    handlers.usage,
                    "Show the project's quota limits and usage (empty without quotas)",
                    errors=(401, 503),
                )
            ],
            tag="usage",
        )
    ]
