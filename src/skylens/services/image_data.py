"""Image data use cases: upload (stream, verify, commit) and download."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

from skylens.domain.access import Action, RequestContext, authorize
from skylens.domain.data import DataDigest
from skylens.domain.errors import (
    Forbidden,
    ImageNotFound,
    InvalidRequest,
    UnsupportedMediaType,
)
from skylens.domain.images import Image, ImageStatus, utc_now
from skylens.domain.ports import BlobStore, FormatInspector, ImageRepository
from skylens.services.images import ImageService
from skylens.services.ingest import ingest

log = logging.getLogger(__name__)

_FORMATS_REQUIRED = ("disk_format", "container_format")
# Formats an inspector cannot recognise (they have no header) or need not.
_UNINSPECTED_FORMATS = frozenset({"raw", "ami", "ari", "aki", "ploop"})


class DataFormatMismatch(UnsupportedMediaType):
    def __init__(self, declared: str, detected: str) -> None:
        super().__init__(f"Image disk_format {declared} does not match stream data {detected}")


@dataclasses.dataclass(frozen=True)
class DataPolicy:
    size_cap: int = 1 << 40
    hash_algo: str = "sha512"
    verify_disk_format: bool = True


@dataclasses.dataclass(frozen=True)
class Download:
    image: Image
    store: BlobStore
    key: str


class ImageDataService:
    def __init__(
        self,
        images: ImageService,
        repository: ImageRepository,
        stores: Mapping[str, BlobStore],
        default_store: str,
        key_of: Callable[[str], str],
        inspector: Callable[[], FormatInspector],
        policy: DataPolicy,
        clock: Callable[[], Any] = utc_now,
    ) -> None:
        self._images = images
        self._repository = repository
        self._stores = stores
        self._default_store = default_store
        self._key_of = key_of
        self._inspector = inspector
        self._policy = policy
        self._clock = clock

    def store_names(self) -> tuple[str, ...]:
        return tuple(self._stores)

    async def upload(
        self,
        context: RequestContext,
        image_id: str,
        chunks: AsyncIterator[bytes],
        store_name: str | None = None,
    ) -> Image:
        store = self._store(store_name)
        claimed = await asyncio.to_thread(self._claim, context, image_id)
        key = self._key_of(image_id)
        writer = await asyncio.to_thread(store.writer, key)
        try:
            digest = await ingest(
                chunks,
                writer,
                self._inspector(),
                hash_algo=self._policy.hash_algo,
                size_cap=self._policy.size_cap,
            )
            self._check_format(claimed.disk_format, digest)
            await asyncio.to_thread(writer.commit)
        except BaseException:
            # Nothing of a failed upload stays: not the bytes, not the saving status.
            await asyncio.to_thread(writer.abort)
            await asyncio.to_thread(self._release, image_id)
            raise
        try:
            return await asyncio.to_thread(self._activate, image_id, store.name, digest)
        except ImageNotFound:
            # Deleted while uploading: its data has no image to belong to.
            await asyncio.to_thread(store.delete, key)
            raise

    def delete_image(self, context: RequestContext, image_id: str) -> None:
        """Delete the image, then its data in every store that holds it.

        The record goes first so no client can reach half-deleted data; a store
        that fails now leaves an orphan for the sweep, never a broken image.
        """
        deleted = self._images.delete(context, image_id)
        for name in deleted.stores:
            store = self._stores.get(name)
            if store is None:
                continue
            try:
                store.delete(self._key_of(image_id))
            except Exception:
                log.exception("could not delete the data of image %s from %s", image_id, name)

    def open_download(self, context: RequestContext, image_id: str) -> Download | None:
        """What to stream for the image, or None when it has no data yet."""
        image = self._images.get(context, image_id)
        authorize(context, Action.DOWNLOAD_IMAGE, image)
        if image.status is ImageStatus.DEACTIVATED and not context.is_admin:
            raise Forbidden(
                "The requested image has been deactivated. Image data download is forbidden."
            )
        if not image.stores:
            return None
        store = self._stores.get(image.stores[0])
        if store is None:
            raise InvalidRequest(f"Image data lives in unknown store {image.stores[0]}")
        return Download(image=image, store=store, key=self._key_of(image.id))

    # -- steps -----------------------------------------------------------------

    def _store(self, name: str | None) -> BlobStore:
        name = name or self._default_store
        store = self._stores.get(name)
        if store is None:
            raise InvalidRequest(f"Store for identifier {name} not found")
        return store

    def _claim(self, context: RequestContext, image_id: str) -> Image:
        """queued -> saving, atomically: of two concurrent uploads one wins."""
        return self._images.change(context, image_id, Action.UPLOAD_IMAGE, self._saving)

    def _saving(self, image: Image) -> Image:
        missing = [name for name in _FORMATS_REQUIRED if getattr(image, name) is None]
        if missing:
            noun = "Property" if len(missing) == 1 else "Properties"
            raise InvalidRequest(f"{noun} {', '.join(missing)} must be set prior to saving data.")
        return image.with_status(ImageStatus.SAVING, self._clock())

    def _check_format(self, declared: str | None, digest: DataDigest) -> None:
        verdict = digest.format
        if verdict.unsafe_reason is not None:
            raise InvalidRequest(f"Image data failed the safety check: {verdict.unsafe_reason}")
        if not self._policy.verify_disk_format:
            return
        detected = verdict.name or "raw"
        if declared in _UNINSPECTED_FORMATS:
            if declared == "raw" and detected not in ("raw", "iso", "gpt"):
                raise DataFormatMismatch(declared, detected)
            return
        if declared is not None and detected != declared:
            raise DataFormatMismatch(declared, detected)

    def _release(self, image_id: str) -> None:
        def back_to_queued(image: Image) -> Image:
            if image.status is not ImageStatus.SAVING:
                return image
            return image.with_status(ImageStatus.QUEUED, self._clock())

        with contextlib.suppress(ImageNotFound):
            self._repository.update(image_id, back_to_queued)

    def _activate(self, image_id: str, store: str, digest: DataDigest) -> Image:
        def active(image: Image) -> Image:
            virtual_size = digest.format.virtual_size
            if virtual_size is None and (digest.format.name or "raw") == "raw":
                virtual_size = digest.size
            return dataclasses.replace(
                image.with_status(ImageStatus.ACTIVE, self._clock()),
                size=digest.size,
                virtual_size=virtual_size,
                checksum=digest.checksum,
                os_hash_algo=digest.hash_algo,
                os_hash_value=digest.hash_value,
                stores=(store,),
            )

        return self._repository.update(image_id, active)
