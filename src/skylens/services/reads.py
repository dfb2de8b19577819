"""`ImageReads` on a synchronous `ImageRepository`, run where an `Offload` runs calls
(on threads sized to the database pool): SQLite's, which has no asynchronous
driver and must not block the event loop."""

from __future__ import annotations

import dataclasses

from skylens.domain.access import RequestContext
from skylens.domain.images import Image, MemberStatus
from skylens.domain.listing import ImagePage, ListQuery
from skylens.domain.ports import ImageRepository, Offload


@dataclasses.dataclass(frozen=True)
class OffloadedReads:
    repository: ImageRepository
    offload: Offload

    async def get(self, image_id: str) -> Image | None:
        return await self.offload(self.repository.get, image_id)

    async def membership(self, image_id: str, project_id: str) -> MemberStatus | None:
        return await self.offload(self.repository.membership, image_id, project_id)

    async def list(self, context: RequestContext, query: ListQuery) -> ImagePage:
        return await self.offload(self.repository.list, context, query)
