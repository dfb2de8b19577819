"""What the API surfaces serve: the services, and where their blocking calls run.

Built once by the composition root (`skylens.api.components`) and handed to each
surface's factory, which builds its handlers and route table from it.
"""

from __future__ import annotations

import dataclasses

from skylens.api.offload import Offload
from skylens.services.image_data import ImageDataService
from skylens.services.images import ImageService
from skylens.services.members import MemberService
from skylens.services.metadefs import MetadefService
from skylens.services.quotas import QuotaService


@dataclasses.dataclass(frozen=True)
class UseCases:
    images: ImageService
    data: ImageDataService
    members: MemberService
    quotas: QuotaService
    metadefs: MetadefService
    reads: Offload  # the services' reads: on the loop when the database never waits
    writes: Offload  # everything else: on threads sized to the database pool
