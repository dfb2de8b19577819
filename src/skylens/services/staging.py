"""Staging: `PUT /v2/images/{id}/stage`, the first half of a glance-direct import.

The same one-pass ingest as an upload (size cap, announced size, hashes, format
inspection) writes the data to the staging store, which any worker can read (a
directory on one host; an S3 or Swift store across hosts). The image goes queued ->
uploading when staging starts and records the staged size when it ends; a failed or
abandoned stage (its lease lapsed: the sweep) sends it back to queued.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import Callable
from typing import Any

from skylens.domain.access import Action, RequestContext
from skylens.domain.errors import ImageNotFound, ImageTooLarge, InvalidStatusTransition
from skylens.domain.images import Image, ImageStatus, utc_now
from skylens.domain.ports import (
    BlobStore,
    BlobWriter,
    BodySource,
    FormatInspector,
    ImageRepository,
    Offload,
)
from skylens.domain.quotas import QuotaClaim, Resource
from skylens.services.image_data import UploadLimits, back_to_queued
from skylens.services.images import ImageService
from skylens.services.imports import STAGE_HOST
from skylens.services.ingest import ingest
from skylens.services.quotas import QuotaService


class StagingService:
    def __init__(
        self,
        images: ImageService,
        repository: ImageRepository,
        staging: BlobStore,
        key_of: Callable[[str], str],
        inspector: Callable[[], FormatInspector],
        limits: UploadLimits,
        quotas: QuotaService,
        *,
        host: str,
        database: Offload,
        storage: Offload,
        ingest_jobs: Offload,
        clock: Callable[[], Any] = utc_now,
        holder: str | None = None,
    ) -> None:
        self._holder = holder  # this process, as upload leases name it
        self._images = images
        self._repository = repository
        self._staging = staging
        self._key_of = key_of
        self._inspector = inspector
        self._limits = limits
        self._quotas = quotas
        self._host = host
        self._database = database
        self._storage = storage
        self._ingest_jobs = ingest_jobs
        self._clock = clock

    @property
    def store_id(self) -> str:
        """The staging store's id (the metrics count staged bytes under it)."""
        return self._staging.name

    async def stage(
        self,
        context: RequestContext,
        image_id: str,
        body: BodySource,
        expected_size: int | None = None,
    ) -> None:
        if expected_size is not None and expected_size > self._limits.size_cap:
            raise ImageTooLarge()
        await self._database(self._claim, context, image_id)
        lease = asyncio.create_task(self._hold_lease(image_id))
        try:
            await self._stream(image_id, body, expected_size or None)
        finally:
            lease.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await lease
            await self._database(self._repository.end_upload, image_id)

    def _claim(self, context: RequestContext, image_id: str) -> Image:
        def claims(image: Image) -> list[QuotaClaim]:
            return self._quotas.claims(
                image.owner,
                {Resource.IMAGE_STAGE_TOTAL: 0, Resource.IMAGE_COUNT_UPLOADING: 1},
            )

        def uploading(image: Image) -> Image:
            # Staging again what is already staged (or being staged) is refused as in
            # Glance: uploading -> uploading is no transition.
            return image.with_status(ImageStatus.UPLOADING, self._clock())

        return self._images.change(context, image_id, Action.MODIFY_IMAGE, uploading, claims=claims)

    async def _stream(self, image_id: str, body: BodySource, expected_size: int | None) -> None:
        key = self._key_of(image_id)
        writer: BlobWriter | None = None
        try:
            writer = await self._storage(self._staging.writer, key)
            digest = await ingest(
                body,
                writer,
                self._inspector(),
                hash_algo=self._limits.hash_algo,
                size_cap=self._limits.size_cap,
                threads=self._ingest_jobs,
                expected_size=expected_size,
            )
            await self._storage(writer.commit)
            await self._database(self._staged, image_id, digest.size)
        except BaseException:
            if writer is not None:
                await self._storage(writer.abort)
                with contextlib.suppress(Exception):
                    await self._storage(self._staging.delete, key)
            await self._database(self._release, image_id)
            raise

    def _staged(self, image_id: str, size: int) -> None:
        def staged(image: Image) -> Image:
            if image.status is not ImageStatus.UPLOADING or image.size is not None:
                # The sweep took the image back from a stage whose lease lapsed.
                raise InvalidStatusTransition(image.status.value, ImageStatus.UPLOADING.value)
            properties = {**image.properties, STAGE_HOST: self._host}
            return dataclasses.replace(
                image.with_changes(self._clock()), size=size, properties=properties
            )

        def claims(image: Image) -> list[QuotaClaim]:
            return self._quotas.claims(image.owner, {Resource.IMAGE_STAGE_TOTAL: size})

        self._repository.update(image_id, staged, claims)

    def _release(self, image_id: str) -> None:
        with contextlib.suppress(ImageNotFound):
            self._repository.update(image_id, lambda image: back_to_queued(image, self._clock()))

    async def _hold_lease(self, image_id: str) -> None:
        while True:
            with contextlib.suppress(Exception):
                await self._database(
                    self._repository.renew_upload, image_id, self._clock(), self._holder
                )
            await asyncio.sleep(self._limits.lease_renewal_seconds)
