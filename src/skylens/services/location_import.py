"""The work of `POST /v2/images/{id}/locations`: a `location_import` task.

The runner (`services/tasks.py`) claims the task under a lease, so a worker killed
mid-way leaves it to another, which runs it again from the start: nothing is written
before the last step, one atomic image change that adds the location, records what
the data is and activates the image, under the image's lock (`os_glance_import_task`
= the task's id). With `images.do_secure_hash` the data is read once from its store
(through the same `ingest` as an upload, into no store): its checksum, secure hash
and size are computed, its format inspected (unsafe data, or data not of the image's
`disk_format`, fails the task), and `validation_data`'s hash must match: one of those
digests, unless it names another algorithm, hashed besides in the same pass. Without it,
`validation_data` is taken at its word, as Glance does.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
from collections.abc import Callable, Mapping
from typing import Any

from skylens.domain.data import DataDigest
from skylens.domain.errors import SkylensError
from skylens.domain.images import Image, ImageStatus, utc_now
from skylens.domain.locations import ExpectedHash, NewLocation, expected_hash
from skylens.domain.ports import FormatInspector, ImageRepository, Offload
from skylens.domain.stores import ConfiguredStore
from skylens.domain.tasks import Task
from skylens.services.image_data import UploadLimits, activated, check_format
from skylens.services.import_methods import BlobSource
from skylens.services.imports import IMPORT_LOCK
from skylens.services.ingest import ingest
from skylens.services.locations import LocationService
from skylens.services.tasks import Progress

log = logging.getLogger(__name__)


class LocationImportFailed(Exception):
    """Why a location import failed, as its task's message says."""


class _Hashing:
    """A `BlobWriter` that keeps nothing: it hashes what passes with `algorithm`, if
    one is given (the hash `validation_data` names when the ingest computes another)."""

    def __init__(self, algorithm: str | None) -> None:
        self.hash = None if algorithm is None else hashlib.new(algorithm)

    def write(self, data: bytes | memoryview) -> None:
        if self.hash is not None:
            self.hash.update(data)

    def commit(self) -> None:
        return None

    def abort(self) -> None:
        return None


class LocationImport:
    """The `TaskHandler` of `location_import` tasks."""

    def __init__(
        self,
        repository: ImageRepository,
        locations: LocationService,
        stores: Mapping[str, ConfiguredStore],
        inspector: Callable[[], FormatInspector],
        limits: UploadLimits,
        *,
        do_secure_hash: bool,
        database: Offload,
        storage: Offload,
        ingest_jobs: Offload,
        clock: Callable[[], Any] = utc_now,
    ) -> None:
        self._repository = repository
        self._locations = locations
        self._stores = stores
        self._inspector = inspector
        self._limits = limits
        self._secure_hash = do_secure_hash
        self._database = database
        self._storage = storage
        self._ingest_jobs = ingest_jobs
        self._clock = clock

    async def run(self, task: Task, attempt: int, progress: Progress) -> Mapping[str, Any]:
        url = str(task.input["loc_url"])
        expected = expected_hash(task.input.get("validation_data") or {}, self._limits.hash_algo)
        assert task.image_id is not None
        image = await self._database(self._repository.get, task.image_id)
        if image is None:
            raise LocationImportFailed("Image has been deleted, aborting location import.")
        if image.properties.get(IMPORT_LOCK) != task.id:
            # A worker that died after activating the image (which drops the lock).
            if image.status is ImageStatus.ACTIVE and url in {loc.url for loc in image.locations}:
                return {"image_id": image.id}
            raise LocationImportFailed("The image is not locked to this task")
        try:
            new = await self._locations.resolve(image.id, {"url": url})
        except SkylensError as error:
            raise LocationImportFailed(f"{error.message}: {url}") from error
        digest = None
        if self._secure_hash:
            progress("Computing the hash of the location's data")
            digest = await self._digest(image, new, expected)
        active = self._active(task, new, expected, digest)
        await self._database(self._repository.update, image.id, active)
        return {"image_id": image.id}

    async def _digest(
        self, image: Image, new: NewLocation, expected: ExpectedHash | None
    ) -> DataDigest:
        store = self._stores[new.location.store]
        assert store.key_of_url is not None  # only URL stores resolve a new location
        key = store.key_of_url(new.location.url)
        assert key is not None
        chunks = await self._storage(store.blob.read, key)
        # The ingest computes md5 and the service's secure hash: a second hash only
        # for another algorithm.
        computed = ("md5", self._limits.hash_algo)
        writer = _Hashing(None if expected is None or expected.algo in computed else expected.algo)
        body = BlobSource(chunks)
        try:
            digest = await ingest(
                body,
                writer,
                self._inspector(),
                hash_algo=self._limits.hash_algo,
                size_cap=self._limits.size_cap,
                threads=self._ingest_jobs,
            )
        finally:
            await self._storage(body.close)
        try:
            check_format(image.disk_format, digest, self._limits.verify_disk_format)
        except SkylensError as error:
            raise LocationImportFailed(error.message) from error
        if expected is not None:
            if writer.hash is not None:
                actual = writer.hash.hexdigest()
            else:
                actual = digest.checksum if expected.algo == "md5" else digest.hash_value
            if not expected.matches(actual):
                raise LocationImportFailed(
                    "os_hash_value: the data at the location does not match validation_data"
                )
        return digest

    def _active(
        self,
        task: Task,
        new: NewLocation,
        expected: ExpectedHash | None,
        digest: DataDigest | None,
    ) -> Callable[[Image], Image]:
        def change(image: Image) -> Image:
            if image.properties.get(IMPORT_LOCK) != task.id:
                raise LocationImportFailed("The image is not locked to this task")
            now = self._clock()
            properties = {k: v for k, v in image.properties.items() if k != IMPORT_LOCK}
            unlocked = image.with_changes(now, properties=properties)
            if digest is not None:
                located = self._locations.editor.add(unlocked, "-", _bare(new), now)
                return activated(dataclasses.replace(located, status=image.status), digest, now)
            validation = expected.validation_data() if expected else {}
            given = NewLocation(new.location, new.size, validation)
            return self._locations.editor.add(unlocked, "-", given, now)

        return change

    async def fail(self, task: Task, message: str) -> None:
        """Drop the image's lock (the image stays queued, ready for another try)."""
        if task.image_id is None:
            return

        def unlock(image: Image) -> Image:
            if image.properties.get(IMPORT_LOCK) != task.id:
                return image
            properties = {k: v for k, v in image.properties.items() if k != IMPORT_LOCK}
            return image.with_changes(self._clock(), properties=properties)

        try:
            await self._database(self._repository.update, task.image_id, unlock)
        except SkylensError:
            log.info("location import %s: image %s is gone", task.id, task.image_id)


def _bare(new: NewLocation) -> NewLocation:
    """The location without validation data: the computed digest is the truth."""
    return NewLocation(new.location, new.size)
