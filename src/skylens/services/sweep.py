"""The orphan sweep: what uploads and deletions could not clean up, cleaned later.

A process killed mid-upload leaves its image `saving`; once the upload's lease has
not been renewed for the grace period, the sweep puts the image back to `queued`
so that it can be uploaded again.

Two kinds of leftover data exist. A process killed mid-upload leaves an uncommitted
write (a partial file, multipart upload or segments); each store removes those idle
for longer than the grace period, except the writes of uploads whose lease is live:
a slow client's write may sit idle for long, and its lease, not the write's age,
says whether it is alive.

A store that failed during a delete, or a process killed (or a database lost)
between committing data and recording it, leaves committed data no image record
points to; the sweep removes those keys when no image may still claim them:

- the image is gone for good (ids are never reused);
- it is active or deactivated, which no upload can change, and does not list the
  store;
- it is queued: no upload is running (one would hold the image `saving`), so the
  data is what a dead upload committed. An upload may start at any moment, though,
  and commit to that very key; so the sweep first takes the image itself, queued ->
  saving, as an upload would, deletes the data and gives the image back. An upload
  that tries meanwhile is refused (409) as if another upload ran; a sweep that dies
  meanwhile leaves a `saving` image without a lease, which the next sweep releases.

A saving image's data is left alone: its upload is alive, or the sweep's first step
releases it and the next run judges it queued. Keys younger than the grace period
are left alone too, so a commit racing the sweep is never mistaken for an orphan.

The staging store is swept the same way, judged by what staged data is for: it
waits for an import while its image is `uploading` (staged, or being staged) or
`importing`, and nothing else may claim it. So staged data of an image gone, or in
any other status, goes; for a queued image (a stage that died after committing,
whose lease lapsed) the sweep first takes the image queued -> uploading, as a stage
would, so that no stage commits to the key meanwhile. Unfinished staging writes go
once idle for the grace period, unless their stage's lease is live.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import itertools
import logging
from collections.abc import Callable, Iterable, Mapping

from skylens.domain.errors import ImageNotFound, InvalidStatusTransition
from skylens.domain.images import Image, ImageStatus, utc_now
from skylens.domain.ports import ImageRepository
from skylens.domain.stores import ConfiguredStore, StagingArea
from skylens.services.image_data import back_to_queued

log = logging.getLogger(__name__)

_BATCH = 500
# Statuses in which an image's set of stores can no longer grow.
_SETTLED = frozenset({ImageStatus.ACTIVE, ImageStatus.DEACTIVATED})
# Statuses in which an image's staged data waits for (or feeds) its import.
_STAGED = frozenset({ImageStatus.UPLOADING, ImageStatus.IMPORTING})


def _image_data_claimed(store: str, status: ImageStatus, stores: tuple[str, ...]) -> bool:
    """Whether an image (not queued) may still claim its data in `store`."""
    return status not in _SETTLED or store in stores


def _staged_data_claimed(store: str, status: ImageStatus, stores: tuple[str, ...]) -> bool:
    """Whether an image (not queued) may still claim its staged data."""
    return status in _STAGED


@dataclasses.dataclass(frozen=True)
class _Space:
    """A store as the sweep judges it: how its keys name images, whether an image
    claims its data, and the status the sweep takes a queued image to meanwhile."""

    store: ConfiguredStore
    key_of: Callable[[str], str]
    image_id_of_key: Callable[[str], str | None]
    claimed: Callable[[str, ImageStatus, tuple[str, ...]], bool]
    taken_as: ImageStatus


@dataclasses.dataclass(frozen=True)
class SweepReport:
    store: str
    uncommitted: int = 0
    orphans: int = 0
    failed: bool = False


@dataclasses.dataclass(frozen=True)
class SweepResult:
    released: int  # abandoned uploads whose image went back to queued
    stores: list[SweepReport]
    released_failed: bool = False

    @property
    def failed(self) -> bool:
        return self.released_failed or any(report.failed for report in self.stores)


class OrphanSweep:
    def __init__(
        self,
        repository: ImageRepository,
        stores: Mapping[str, ConfiguredStore],
        key_of: Callable[[str], str],
        image_id_of_key: Callable[[str], str | None],
        grace_seconds: float,
        clock: Callable[[], dt.datetime] = utc_now,
        staging: StagingArea | None = None,
    ) -> None:
        self._repository = repository
        self._stores = stores
        self._key_of = key_of
        self._image_id_of_key = image_id_of_key
        self._grace = grace_seconds
        self._clock = clock
        self._staging = staging

    def run(self) -> SweepResult:
        """Release abandoned uploads, then sweep every store; whatever fails is
        reported and the rest still done."""
        try:
            released, released_failed = self._release_abandoned_uploads(), False
        except Exception:
            log.exception("orphan sweep: releasing abandoned uploads failed")
            released, released_failed = 0, True
        return SweepResult(released, self._sweep_stores(), released_failed)

    def _release_abandoned_uploads(self) -> int:
        now = self._clock()
        released = 0
        for image_id in self._repository.stale_uploads(now - dt.timedelta(seconds=self._grace)):
            with contextlib.suppress(ImageNotFound):
                image = self._repository.update(image_id, lambda i: back_to_queued(i, now))
                if image.status is ImageStatus.QUEUED:
                    released += 1
                    log.info("image %s: its upload was abandoned; back to queued", image_id)
            self._repository.end_upload(image_id)
        return released

    def _sweep_stores(self) -> list[SweepReport]:
        spaces = [
            _Space(
                store,
                self._key_of,
                self._image_id_of_key,
                _image_data_claimed,
                ImageStatus.SAVING,  # as an upload holds it
            )
            for store in self._stores.values()
        ]
        if self._staging is not None:
            staging = self._staging
            spaces.append(
                _Space(
                    staging.store,
                    staging.key_of,
                    staging.image_id_of_key,
                    _staged_data_claimed,
                    ImageStatus.UPLOADING,  # as a stage holds it
                )
            )
        reports = []
        for space in spaces:
            try:
                report = self._sweep(space)
            except Exception:
                log.exception("orphan sweep of store %s failed", space.store.id)
                report = SweepReport(space.store.id, failed=True)
            if report.uncommitted or report.orphans:
                log.info(
                    "orphan sweep of store %s: %d unfinished upload(s), %d orphaned blob(s) "
                    "removed",
                    space.store.id,
                    report.uncommitted,
                    report.orphans,
                )
            reports.append(report)
        return reports

    def _sweep(self, space: _Space) -> SweepReport:
        blob = space.store.blob
        renewed_since = self._clock() - dt.timedelta(seconds=self._grace)
        live = {space.key_of(image_id) for image_id in self._repository.live_uploads(renewed_since)}
        uncommitted = blob.sweep_uncommitted(older_than=self._grace, live=live)
        orphans = 0
        for batch in _batched(blob.keys(older_than=self._grace), _BATCH):
            owners = {key: space.image_id_of_key(key) for key in batch}
            held = self._repository.data_locations([i for i in owners.values() if i is not None])
            for key, image_id in owners.items():
                if image_id is None:
                    continue  # not a key this service writes: not ours to judge
                located = held.get(image_id)
                if located is None:
                    blob.delete(key)
                    orphans += 1
                elif located[0] is ImageStatus.QUEUED:
                    if self._take(image_id, space.taken_as):
                        try:  # the image is the sweep's: see the module docstring
                            blob.delete(key)
                        finally:
                            self._give_back(image_id)
                        orphans += 1
                elif not space.claimed(space.store.id, *located):
                    blob.delete(key)
                    orphans += 1
        return SweepReport(space.store.id, uncommitted=uncommitted, orphans=orphans)

    def _take(self, image_id: str, status: ImageStatus) -> bool:
        """Take a queued image (queued -> saving, or uploading for staged data) so
        that no upload (or stage) can commit to its key while the sweep deletes what
        a dead one left there; False when it is no longer queued (an upload took it
        first) or gone (the deletion removed it)."""

        def taken(image: Image) -> Image:
            if image.status is not ImageStatus.QUEUED:
                raise InvalidStatusTransition(image.status.value, status.value)
            return image.with_status(status, self._clock())

        try:
            self._repository.update(image_id, taken)
        except (ImageNotFound, InvalidStatusTransition):
            return False
        return True

    def _give_back(self, image_id: str) -> None:
        now = self._clock()
        with contextlib.suppress(ImageNotFound):
            self._repository.update(image_id, lambda image: back_to_queued(image, now))


def _batched(keys: Iterable[str], size: int) -> Iterable[list[str]]:
    iterator = iter(keys)
    while batch := list(itertools.islice(iterator, size)):
        yield batch
