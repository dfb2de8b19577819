"""What the API surfaces serve: the services, and where their blocking calls run.

Built once by the composition root (`skylens.api.components`) and handed to each
surface's factory, which builds its handlers and route table from it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from skylens.api.offload import Offload
from skylens.services.image_cache import CacheApi, ImageCache
from skylens.services.image_data import ImageDataService
from skylens.services.images import ImageService
from skylens.services.imports import ImportService
from skylens.services.locations import LocationService
from skylens.services.members import MemberService
from skylens.services.metadefs import MetadefService
from skylens.services.quotas import QuotaService
from skylens.services.staging import StagingService
from skylens.services.tasks import TaskService


@dataclasses.dataclass(frozen=True)
class UseCases:
    images: ImageService
    data: ImageDataService
    members: MemberService
    quotas: QuotaService
    imports: ImportService
    staging: StagingService
    tasks: TaskService
    locations: LocationService
    wake_runner: Callable[[], None]  # a task was created: this process's runner looks now
    metadefs: MetadefService
    # On two sets of threads that share the database pool (`database_threads`), so
    # that a queue of writes never holds up a read.
    reads: Offload  # the services' reads
    writes: Offload  # everything else
    cache_api: CacheApi  # the cache API: `cache`, or `NoCache` (Glance's 404s)
    cache: ImageCache | None = None  # the node's image cache, if configured
