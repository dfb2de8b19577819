"""The services in-process, wired as `skylens.api.components` wires them: a real
SQLite file brought to the latest schema, real file stores in the test's own
directory, the real format inspector and Glance's default policy. No server, no
Swift: the tests of one service run in seconds.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
from collections.abc import Mapping
from pathlib import Path
from typing import Protocol

import anyio
import sqlalchemy as sa

from skylens.api.offload import InThreads
from skylens.db.engine import create_engine, upgrade
from skylens.db.repository import SqlImageRepository
from skylens.domain.access import RequestContext
from skylens.domain.changes import ImageLimits
from skylens.domain.images import Image, utc_now
from skylens.domain.policy import BuiltinPolicy
from skylens.domain.quotas import ConfiguredLimits, LimitSource, NoLimits, Resource
from skylens.domain.stores import ConfiguredStore, StagingArea
from skylens.inspection.formats import OsloFormatInspector
from skylens.services.image_data import ImageDataService, UploadLimits
from skylens.services.images import ImageService, NewImage
from skylens.services.members import MemberService
from skylens.services.quotas import QuotaService
from skylens.services.reads import OffloadedReads
from skylens.services.sweep import OrphanSweep
from skylens.storage.keys import (
    image_data_key,
    image_id_of_key,
    image_id_of_staging_key,
    staging_key,
)
from skylens.storage.registry import build_store, build_stores

GRACE_SECONDS = 600.0


class Clock:
    """The services' clock, set by the test: `clock.now`, moved on by `advance`."""

    def __init__(self) -> None:
        self.now = utc_now()

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += dt.timedelta(seconds=seconds)


class BytesBody:
    """A request body held in memory, read as a server's `readinto` reads one;
    counts what it handed out."""

    def __init__(self, data: bytes) -> None:
        self._data = memoryview(data)
        self.handed_out = 0

    async def readinto(self, buffer: memoryview) -> int:
        count = min(len(buffer), len(self._data) - self.handed_out)
        buffer[:count] = self._data[self.handed_out : self.handed_out + count]
        self.handed_out += count
        await asyncio.sleep(0)  # as a socket would, let the other tasks run in between
        return count


@dataclasses.dataclass(frozen=True)
class Services:
    engine: sa.Engine
    repository: SqlImageRepository
    stores: dict[str, ConfiguredStore]
    staging: StagingArea
    images: ImageService
    members: MemberService
    quotas: QuotaService
    data: ImageDataService
    sweep: OrphanSweep
    clock: Clock

    def create(self, context: RequestContext, **attributes: object) -> Image:
        """A new image of the caller's project (raw/bare unless told otherwise)."""
        attributes = {"disk_format": "raw", "container_format": "bare", **attributes}
        return self.images.create(context, NewImage(attributes=attributes))

    def upload(
        self, context: RequestContext, image_id: str, data: bytes, store: str | None = None
    ) -> Image:
        return asyncio.run(self.data.upload(context, image_id, BytesBody(data), store))

    def active(
        self, context: RequestContext, data: bytes = b"x" * 1024, **attributes: object
    ) -> Image:
        """A new image of the caller's project, with `data` uploaded."""
        return self.upload(context, self.create(context, **attributes).id, data)

    def stored(self, store: str) -> list[str]:
        """The keys committed to `store`."""
        return sorted(self.stores[store].blob.keys())


class ServicesFactory(Protocol):
    def __call__(
        self,
        *,
        quotas: Mapping[Resource, int] | None = None,
        project_quotas: Mapping[str, Mapping[Resource, int]] | None = None,
        limits: ImageLimits | None = None,
        upload: UploadLimits | None = None,
    ) -> Services:
        """`build_services`, in a directory of the test's own (`make_services`)."""


def build_services(
    directory: Path,
    *,
    quotas: Mapping[Resource, int] | None = None,
    project_quotas: Mapping[str, Mapping[Resource, int]] | None = None,
    limits: ImageLimits | None = None,
    upload: UploadLimits | None = None,
) -> Services:
    """Services on a fresh SQLite file in `directory`, with the shared servers' stores:
    `local` (the default) and `cheap`, both files, and a staging file store. `quotas`
    (with `project_quotas`) turns on the configured quota source, as
    `quotas.source = "config"` does."""
    limits = ImageLimits() if limits is None else limits
    engine = create_engine(f"sqlite:///{directory / 'skylens.db'}", pool_size=2)
    upgrade(engine)
    repository = SqlImageRepository(engine)
    stores = build_stores(
        {
            "local": {"kind": "file", "root": str(directory / "local"), "fsync": False},
            "cheap": {
                "kind": "file",
                "root": str(directory / "cheap"),
                "fsync": False,
                "weight": 5,
            },
        }
    )
    staging = StagingArea(
        build_store(
            "os_glance_staging_store",
            {"kind": "file", "root": str(directory / "staging"), "fsync": False},
        ),
        staging_key,
        image_id_of_staging_key,
    )
    source: LimitSource = (
        NoLimits() if quotas is None else ConfiguredLimits(quotas, project_quotas or {})
    )
    policy = BuiltinPolicy()
    clock = Clock()
    quota_service = QuotaService(repository, source)
    threads = InThreads(anyio.CapacityLimiter(2))
    reads = OffloadedReads(repository, threads)
    images = ImageService(repository, limits, policy, quota_service, clock=clock, reads=reads)
    data = ImageDataService(
        images=images,
        repository=repository,
        stores=stores,
        default_store="local",
        key_of=image_data_key,
        inspector=OsloFormatInspector,
        limits=UploadLimits() if upload is None else upload,
        access=policy,
        quotas=quota_service,
        database=threads,
        storage=threads,
        ingest_jobs=InThreads(anyio.CapacityLimiter(2)),
        staging=staging,
        clock=clock,
    )
    return Services(
        engine=engine,
        repository=repository,
        stores=stores,
        staging=staging,
        images=images,
        members=MemberService(images, repository, limits.members, policy, clock=clock),
        quotas=quota_service,
        data=data,
        sweep=OrphanSweep(
            repository,
            stores,
            image_data_key,
            image_id_of_key,
            GRACE_SECONDS,
            clock=clock,
            staging=staging,
        ),
        clock=clock,
    )


def member_of(project: str) -> RequestContext:
    return RequestContext.create(project, f"user-{project[:8]}", ("member", "reader"))


def reader_of(project: str) -> RequestContext:
    return RequestContext.create(project, f"reader-{project[:8]}", ("reader",))


def admin_of(project: str) -> RequestContext:
    return RequestContext.create(project, f"admin-{project[:8]}", ("admin", "member", "reader"))
