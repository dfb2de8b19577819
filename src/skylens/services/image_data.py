"""Image data use cases: upload (stream, verify, commit) and download."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from skylens.domain.access import Action, RequestContext
from skylens.domain.data import DataDigest
from skylens.domain.errors import (
    Conflict,
    DataFormatMismatch,
    Forbidden,
    ImageNotFound,
    ImageTooLarge,
    InvalidRequest,
    InvalidStatusTransition,
    NotFound,
    QuotaExceeded,
    StorageUnavailable,
    TooManyUploads,
    UnknownStore,
    UnsafeImageData,
)
from skylens.domain.images import Image, ImageStatus, utc_now
from skylens.domain.policy import authorize
from skylens.domain.ports import (
    BlobStore,
    BlobWriter,
    BodySource,
    FormatInspector,
    ImageRepository,
    Offload,
    Policy,
)
from skylens.domain.quotas import QuotaClaim, Resource
from skylens.domain.stores import ConfiguredStore, StagingArea, StoreInfo
from skylens.services.images import ImageService
from skylens.services.ingest import ingest
from skylens.services.quotas import QuotaService

log = logging.getLogger(__name__)

_FORMATS_REQUIRED = ("disk_format", "container_format")
# Disk formats no inspector recognises (they have no header of their own): data
# declared so must not be recognisable as anything else either, as in Glance 33.
_UNINSPECTABLE_FORMATS = frozenset({"ami", "ari", "aki", "ploop"})
# What data declared raw may turn out to be: a partitioned disk, or a bootable ISO.
_RAW_LIKE = frozenset({"raw", "iso", "gpt"})


@dataclasses.dataclass(frozen=True)
class UploadLimits:
    """What an upload may be: its size, how it is hashed and checked."""

    size_cap: int = 1 << 40
    hash_algo: str = "sha512"
    verify_disk_format: bool = True
    # How often an upload renews its lease; well inside the sweep's grace period.
    lease_renewal_seconds: float = 60.0
    # Uploads this process receives at once (each holds up to three 8 MiB blocks).
    max_uploads: int = 32


@dataclasses.dataclass(frozen=True)
class Download:
    image: Image
    store: BlobStore
    key: str


class ImageDataService:
    """Uploads run their blocking calls through three offload strategies, one per kind
    of work: `database` for the repository's (sized like the connection pool, so no
    call waits for a connection), `storage` for the stores' (network or disk I/O), and
    `ingest_jobs` for the ingest's hashing, inspection and block writes."""

    def __init__(
        self,
        images: ImageService,
        repository: ImageRepository,
        stores: Mapping[str, ConfiguredStore],
        default_store: str,
        key_of: Callable[[str], str],
        inspector: Callable[[], FormatInspector],
        limits: UploadLimits,
        access: Policy,
        quotas: QuotaService,
        *,
        database: Offload,
        storage: Offload,
        ingest_jobs: Offload,
        staging: StagingArea | None = None,
        clock: Callable[[], Any] = utc_now,
        uploads_under_way: Callable[[int], None] = lambda _count: None,
        holder: str | None = None,
    ) -> None:
        if default_store not in stores:
            raise ValueError(f"the default store {default_store!r} is not a configured store")
        self._images = images
        self._repository = repository
        self._stores = stores
        self._default_store = default_store
        self._key_of = key_of
        self._inspector = inspector
        self._limits = limits
        self._access = access
        self._quotas = quotas
        self._database = database
        self._storage = storage
        self._ingest_jobs = ingest_jobs
        self._staging = staging
        self._clock = clock
        self._uploading = 0  # uploads of this process under way
        self._report_uploading = uploads_under_way  # told the count at each change
        self._holder = holder  # this process, as upload leases name it

    def stores_info(self, context: RequestContext, detail: bool = False) -> list[StoreInfo]:
        """The stores users may choose from; with `detail` (admins) their kind,
        weight and non-secret settings too."""
        if detail:
            authorize(self._access, context, Action.STORES_INFO_DETAIL)
        return [
            StoreInfo(
                id=store.id,
                description=store.description,
                is_default=store.id == self._default_store,
                kind=store.kind if detail else None,
                weight=store.weight if detail else None,
                properties=dict(store.blob.details()) if detail else None,
            )
            for store in self._stores.values()
        ]

    def configured_store(self, name: str | None) -> str | None:
        """The id of the store an upload naming `name` (or none) goes to; None when
        no configured store has that name."""
        chosen = self._default_store if name is None else name
        return chosen if chosen in self._stores else None

    async def upload(
        self,
        context: RequestContext,
        image_id: str,
        body: BodySource,
        store_name: str | None = None,
        expected_size: int | None = None,
    ) -> Image:
        """Stream the data into the store and activate the image; `expected_size` is
        the size the client announced, if any (0 means unknown, as in Glance)."""
        store = self._store(store_name).blob
        if expected_size is not None and expected_size > self._limits.size_cap:
            raise ImageTooLarge()  # refused before a byte is read
        # Counted on the event loop's thread: no lock needed. Per project, the
        # image_count_uploading quota (checked by the claim) limits uploads too.
        if self._uploading >= self._limits.max_uploads:
            log.warning(
                "upload of image %s refused: %d uploads under way (server.max_uploads)",
                image_id,
                self._uploading,
            )
            raise TooManyUploads()
        self._uploading += 1
        self._report_uploading(self._uploading)
        try:
            claimed = await self._database(self._claim, context, image_id)
            lease = asyncio.create_task(self._hold_lease(image_id))
            try:
                return await self._stream(claimed, store, body, expected_size or None)
            finally:
                lease.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await lease
                await self._database(self._repository.end_upload, image_id)
        finally:
            self._uploading -= 1
            self._report_uploading(self._uploading)

    async def _stream(
        self,
        claimed: Image,
        store: BlobStore,
        body: BodySource,
        expected_size: int | None,
    ) -> Image:
        key = self._key_of(claimed.id)
        writer: BlobWriter | None = None
        try:
            budget = await self._database(self._quotas.size_budget, claimed.owner)
            size_cap = self._limits.size_cap
            if budget is not None and budget < size_cap:
                # The quota is the tighter limit: it stops the stream, as early as the
                # client's announced size tells it cannot fit.
                if expected_size is not None and expected_size > budget:
                    raise self._over_budget(claimed, budget, expected_size)
                size_cap = max(budget, 0)
            writer = await self._storage(store.writer, key)
            try:
                digest = await ingest(
                    body,
                    writer,
                    self._inspector(),
                    hash_algo=self._limits.hash_algo,
                    size_cap=size_cap,
                    threads=self._ingest_jobs,
                    expected_size=expected_size,
                )
            except ImageTooLarge:
                if budget is None or size_cap == self._limits.size_cap:
                    raise
                raise self._over_budget(claimed, budget, size_cap + 1) from None
            check_format(claimed.disk_format, digest, self._limits.verify_disk_format)
            await self._database(self._check_still_saving, claimed.id)
            await self._storage(writer.commit)
        except BaseException:
            # Nothing of a failed upload stays: not the bytes, not the saving status.
            if writer is not None:
                await self._storage(writer.abort)
            await self._database(self._release, claimed.id)
            raise
        try:
            return await self._database(self._activate, claimed.id, store.name, digest)
        except ImageNotFound:
            # Deleted while uploading: its data has no image to belong to.
            await self._storage(store.delete, key)
            raise
        except QuotaExceeded:
            # Other uploads of the project took the room first: this data goes.
            await self._storage(store.delete, key)
            await self._database(self._release, claimed.id)
            raise

    def _over_budget(self, image: Image, budget: int, delta: int) -> Exception:
        assert image.owner is not None  # only owned images have a budget
        return self._quotas.over_budget(image.owner, budget, delta)

    async def _hold_lease(self, image_id: str) -> None:
        """Renew the upload's lease until cancelled, so the sweep knows it is alive."""
        while True:
            try:
                await self._database(
                    self._repository.renew_upload, image_id, self._clock(), self._holder
                )
            except Exception:
                log.exception("could not renew the upload lease of image %s", image_id)
            await asyncio.sleep(self._limits.lease_renewal_seconds)

    def delete_image(self, context: RequestContext, image_id: str) -> None:
        """Delete the image, then its data in every store that holds it.

        The record goes first so no client can reach half-deleted data; a store
        that fails now leaves an orphan for the sweep, never a broken image. An
        image that never became active may have staged data: it goes too (a stage
        or import still running finds the image gone and drops what it wrote).
        """
        deleted = self._images.delete(context, image_id)
        for name in deleted.stores:
            self._delete_data(image_id, name)
        if not deleted.stores and self._staging is not None:
            self._delete_staged(self._staging, image_id)

    def delete_from_store(self, context: RequestContext, store_id: str, image_id: str) -> None:
        """Remove one copy of an active image's data; the last copy stays (delete the
        image instead). Glance's checks, in Glance's order."""
        if store_id not in self._stores:
            raise Conflict(f"The selected store {store_id} is not available on this node.")

        def without_copy(image: Image) -> Image:
            if image.status is not ImageStatus.ACTIVE:
                raise Conflict(
                    "It's not allowed to remove image data from store if image status is not "
                    "'active'"
                )
            if len(image.stores) + len(image.locations) == 1:
                raise Forbidden(
                    "Cannot delete image data from the only store containing it. Consider "
                    "deleting the image instead."
                )
            if store_id in image.stores:
                remaining = tuple(name for name in image.stores if name != store_id)
                return image.with_changes(self._clock(), stores=remaining)
            # A URL in a read-only store: its first location there goes (not the data).
            urls = [location.store for location in image.locations]
            if store_id not in urls:
                raise NotFound(f"Image {image_id} is not stored in store {store_id}.")
            index = urls.index(store_id)
            kept = image.locations[:index] + image.locations[index + 1 :]
            return image.with_changes(self._clock(), locations=kept)

        # Glance checks get_image_location first, then delete_image_location.
        seen = self._images.visible(context, image_id, _missing_for_store)
        authorize(self._access, context, Action.GET_IMAGE_LOCATION, seen)
        # The record first, so no download picks the copy that is going away. (An
        # http store deletes nothing: its data is not the service's.)
        self._images.change(
            context, image_id, Action.DELETE_IMAGE_LOCATION, without_copy, _missing_for_store
        )
        self._delete_data(image_id, store_id)

    def open_download(
        self, context: RequestContext, image_id: str, prefer: Sequence[str] = ()
    ) -> Download | None:
        """What to stream for the image, or None when it has no data yet. The copy
        read is the first in a `prefer`red store (`?prefer=store1,store2`, Glance's
        store selection), else the heaviest store's; a location URL's store (the http
        store) weighs as configured too."""
        image = self._images.get(context, image_id)
        authorize(self._access, context, Action.DOWNLOAD_IMAGE, image)
        if image.status is ImageStatus.DEACTIVATED and not context.is_admin:
            raise Forbidden(
                "The requested image has been deactivated. Image data download is forbidden."
            )
        if prefer:
            authorize(self._access, context, Action.DOWNLOAD_FROM_STORE, image)
        for name in prefer:
            if name not in self._stores:
                raise InvalidRequest(f"Store '{name}' is not configured.")
        return self.data_of(image, prefer)

    def data_of(self, image: Image, prefer: Sequence[str] = ()) -> Download | None:
        """Where the image's data is read from (as `open_download` picks it), or None
        when it has no data; no access check (the cache's prefetch)."""
        if not image.stores and not image.locations:
            return None
        copies = self._copies(image)
        if not copies:
            names = [*image.stores, *(location.store for location in image.locations)]
            log.error("image %s: no configured store holds its data %s", image.id, names)
            raise StorageUnavailable(
                f"Image {image.id} data is in store(s) {', '.join(names)}, "
                "which this server does not have configured."
            )
        preferred = [copy for name in prefer for copy in copies if copy[0].id == name]
        # The heaviest store first; among equals, the first that received the data.
        store, key = preferred[0] if preferred else max(copies, key=lambda copy: copy[0].weight)
        return Download(image=image, store=store.blob, key=key)

    def _copies(self, image: Image) -> list[tuple[ConfiguredStore, str]]:
        """Every copy of the image's data this server can read, and its key."""
        copies = [
            (self._stores[name], self._key_of(image.id))
            for name in image.stores
            if name in self._stores
        ]
        for location in image.locations:
            store = self._stores.get(location.store)
            key = (
                None
                if store is None or store.key_of_url is None
                else store.key_of_url(location.url)
            )
            if store is not None and key is not None:
                copies.append((store, key))
        return copies

    # -- steps -----------------------------------------------------------------

    def _store(self, name: str | None) -> ConfiguredStore:
        name = self._default_store if name is None else name
        store = self._stores.get(name)
        if store is None:
            raise UnknownStore(name)
        return store

    def _delete_data(self, image_id: str, store_id: str) -> None:
        """Best effort: what a failing store keeps, the orphan sweep removes later."""
        store = self._stores.get(store_id)
        if store is None:
            log.warning("image %s: data left in unconfigured store %s", image_id, store_id)
            return
        try:
            store.blob.delete(self._key_of(image_id))
        except Exception:
            log.exception("could not delete the data of image %s from %s", image_id, store_id)

    @staticmethod
    def _delete_staged(staging: StagingArea, image_id: str) -> None:
        """Best effort, as `_delete_data`: the sweep removes what stays."""
        try:
            staging.store.blob.delete(staging.key_of(image_id))
        except Exception:
            log.exception("could not delete the staged data of image %s", image_id)

    def _claim(self, context: RequestContext, image_id: str) -> Image:
        """queued -> saving, atomically: of two concurrent uploads one wins, and no more
        uploads than `image_count_uploading` run at once. Like Glance, refuse an owner
        already over `image_size_total` before any data is read."""

        def claims(image: Image) -> list[QuotaClaim]:
            return self._quotas.claims(
                image.owner,
                {Resource.IMAGE_SIZE_TOTAL: 0, Resource.IMAGE_COUNT_UPLOADING: 1},
            )

        return self._images.change(
            context, image_id, Action.UPLOAD_IMAGE, self._saving, claims=claims
        )

    def _saving(self, image: Image) -> Image:
        missing = [name for name in _FORMATS_REQUIRED if getattr(image, name) is None]
        if missing:
            noun = "Property" if len(missing) == 1 else "Properties"
            raise InvalidRequest(f"{noun} {', '.join(missing)} must be set prior to saving data.")
        return image.with_status(ImageStatus.SAVING, self._clock())

    def _release(self, image_id: str) -> None:
        with contextlib.suppress(ImageNotFound):
            self._repository.update(image_id, lambda image: back_to_queued(image, self._clock()))

    def _check_still_saving(self, image_id: str) -> None:
        """Before committing: has the sweep taken the image back (this upload's lease
        lapsed while the process hung)? Then its data must not replace anything."""
        image = self._repository.get(image_id)
        if image is None:
            raise ImageNotFound(image_id)
        if image.status is not ImageStatus.SAVING:
            raise InvalidStatusTransition(image.status.value, ImageStatus.ACTIVE.value)

    def _activate(self, image_id: str, store: str, digest: DataDigest) -> Image:
        def active(image: Image) -> Image:
            if image.status is not ImageStatus.SAVING:
                # The sweep took the image back from an upload whose lease expired.
                raise InvalidStatusTransition(image.status.value, ImageStatus.ACTIVE.value)
            return dataclasses.replace(activated(image, digest, self._clock()), stores=(store,))

        def claims(image: Image) -> list[QuotaClaim]:
            # Checked with the activation, under the owner's lock: however many
            # uploads finish at once, the stored total stays within the limit.
            return self._quotas.claims(image.owner, {Resource.IMAGE_SIZE_TOTAL: digest.size})

        return self._repository.update(image_id, active, claims)


def activated(image: Image, digest: DataDigest, now: dt.datetime) -> Image:
    """The image active with the data `digest` describes (raw data: its virtual size
    is its size)."""
    virtual_size = digest.format.virtual_size
    if virtual_size is None and (digest.format.name or "raw") == "raw":
        virtual_size = digest.size
    return dataclasses.replace(
        image.with_status(ImageStatus.ACTIVE, now),
        size=digest.size,
        virtual_size=virtual_size,
        checksum=digest.checksum,
        os_hash_algo=digest.hash_algo,
        os_hash_value=digest.hash_value,
    )


def check_format(declared: str | None, digest: DataDigest, verify_disk_format: bool) -> None:
    """Refuse data the inspector found unsafe, or (with `verify_disk_format`) of
    another format than the image declares."""
    verdict = digest.format
    if verdict.unsafe_reason is not None:
        # Glance's fixed text: the reason helps an attacker more than a user.
        log.info("data refused, unsafe %s data: %s", verdict.name, verdict.unsafe_reason)
        raise UnsafeImageData()
    if not verify_disk_format:
        return
    detected = verdict.name or "raw"
    if declared is None or detected == declared:
        return
    if declared in _UNINSPECTABLE_FORMATS and detected == "raw":
        return
    if declared == "raw" and detected in _RAW_LIKE:
        return
    raise DataFormatMismatch(declared, detected)


def back_to_queued(image: Image, now: dt.datetime) -> Image:
    """A saving image whose upload ended without data, or an image whose staging
    ended without data, ready for another try."""
    if image.status is ImageStatus.UPLOADING and image.size is None:
        return image.with_status(ImageStatus.QUEUED, now)
    if image.status is not ImageStatus.SAVING:
        return image
    return image.with_status(ImageStatus.QUEUED, now)


def _missing_for_store(image_id: str) -> NotFound:
    return NotFound(f"Failed to find image {image_id}")
