"""Image import, the work: what a runner does with an `api_image_import` task.

The method's data streams once through the upload's ingest (size cap, md5 and the
secure hash, format inspection) into every target store at once. Then each store
commits; the image records the stores that hold the data, and goes active (or, for
copy-image, stays active with more stores), its import lock dropped, all in one
atomic change. A failure removes every copy this import committed, and the image
goes back to `queued` (copy-image: stays active), its failed stores listed in
`os_glance_failed_import`.

With data plugins configured (decompression, conversion: services.import_plugins),
the data first goes to a work file the plugins change, and the ingest reads that.

Run again from its start when a worker died mid-way: the staged or source data is
still there (it goes only once the import ended), and writes replace atomically.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from skylens.domain.data import DataDigest
from skylens.domain.errors import Conflict, ImageNotFound
from skylens.domain.images import Image, ImageStatus, utc_now
from skylens.domain.ports import BlobWriter, BodySource, FormatInspector, ImageRepository, Offload
from skylens.domain.quotas import MIB, QuotaClaim, Resource
from skylens.domain.stores import ConfiguredStore
from skylens.domain.tasks import ImportRequest, Task
from skylens.services.image_data import UploadLimits, activated, check_format
from skylens.services.import_methods import COPY_IMAGE, BlobSource, ImportMethod, ImportSource
from skylens.services.import_plugins import FormatChange, ImportFailed, ImportPlugins
from skylens.services.imports import FAILED_IMPORT, IMPORT_LOCK, IMPORTING_TO, with_stores
from skylens.services.ingest import ingest
from skylens.services.quotas import QuotaService
from skylens.services.tasks import Progress

log = logging.getLogger(__name__)

_FILE_CHUNK = 1 << 20


class ImportHandler:
    """The `TaskHandler` of `api_image_import` tasks."""

    def __init__(
        self,
        repository: ImageRepository,
        methods: Mapping[str, ImportMethod],
        stores: Mapping[str, ConfiguredStore],
        key_of: Callable[[str], str],
        inspector: Callable[[], FormatInspector],
        limits: UploadLimits,
        quotas: QuotaService,
        *,
        database: Offload,
        storage: Offload,
        ingest_jobs: Offload,
        clock: Callable[[], Any] = utc_now,
        plugins: ImportPlugins | None = None,
    ) -> None:
        self._plugins = plugins or ImportPlugins()
        self._repository = repository
        self._methods = methods
        self._stores = stores
        self._key_of = key_of
        self._inspector = inspector
        self._limits = limits
        self._quotas = quotas
        self._database = database
        self._storage = storage
        self._ingest_jobs = ingest_jobs
        self._clock = clock

    async def run(self, task: Task, attempt: int, progress: Progress) -> Mapping[str, Any]:
        request = ImportRequest.of_task(task)
        assert task.image_id is not None
        image = await self._database(self._repository.get, task.image_id)
        if image is None:
            raise ImportFailed("Image has been deleted, aborting import.")
        if image.properties.get(IMPORT_LOCK) != task.id:
            # A worker that died after recording the outcome on the image (which
            # drops the lock), or a creator that died before taking it.
            if image.status is ImageStatus.ACTIVE and set(request.stores) & set(image.stores):
                return {"image_id": image.id}
            raise ImportFailed("The image is not locked to this import task")
        method = self._methods.get(request.method)
        if method is None:
            raise ImportFailed(f"Import method {request.method} is not enabled")
        targets = [name for name in request.stores if name not in image.stores]
        source = await method.open(image, request, self._storage)
        change = source.change
        try:
            if self._plugins.data and request.method != COPY_IMAGE:  # as Glance
                opened, source = source, ImportSource(BlobSource(iter(())), 0)
                counting = _Counting(opened.body, progress)
                try:
                    prepared = await self._plugins.prepare(
                        change.applied(image),
                        counting,
                        task.id,
                        self._limits.size_cap,
                        self._storage,
                    )
                finally:
                    await opened.close()
                if opened.size is not None and counting.read != opened.size:  # as the ingest
                    raise ImportFailed(
                        f"Size mismatch: expected {opened.size} bytes, got {counting.read} bytes"
                    )
                change = change.then(prepared.change)
                source = await self._file_source(prepared.path, prepared.size)
            digest, committed, failed = await self._copy(
                change.applied(image), source, targets, request, progress
            )
        finally:
            await source.close()
            await self._storage(self._plugins.clear, task.id)
        try:
            await self._database(self._finish, task, image, digest, committed, failed, change)
        except BaseException:
            await self._remove(image.id, committed)
            raise
        await self._storage(_quietly(method.finish), image.id)
        return {"image_id": image.id}

    async def _copy(
        self,
        image: Image,
        source: ImportSource,
        targets: list[str],
        request: ImportRequest,
        progress: Progress,
    ) -> tuple[DataDigest, list[str], list[str]]:
        writers: dict[str, BlobWriter] = {}
        fan_out = _FanOut(writers, tolerant=not request.all_stores_must_succeed)
        committed: list[str] = []
        try:
            for name in targets:
                writers[name] = await self._storage(
                    self._stores[name].blob.writer, self._key_of(image.id)
                )
            digest = await ingest(
                _Counting(source.body, progress),
                fan_out,
                self._inspector(),
                hash_algo=self._limits.hash_algo,
                size_cap=self._limits.size_cap,
                threads=self._ingest_jobs,
                expected_size=source.size,
            )
            self._verify(image, request, digest)
            if source.verify is not None:
                source.verify(digest)
            for name, writer in writers.items():
                if name in fan_out.failed:
                    continue
                try:
                    await self._storage(writer.commit)
                    committed.append(name)
                except Exception:
                    if not fan_out.tolerant:
                        raise
                    log.exception("import of image %s to store %s failed", image.id, name)
                    fan_out.failed.append(name)
            if not committed:
                raise ImportFailed("None of the uploads finished!")
        except BaseException:
            for writer in writers.values():
                await self._storage(_quietly(writer.abort))
            await self._remove(image.id, committed)
            raise
        return digest, committed, list(fan_out.failed)

    async def _file_source(self, path: Path, size: int) -> ImportSource:
        """The work file the data plugins left, read as the import's data."""
        handle = await self._storage(open, path, "rb")
        chunks = iter(lambda: handle.read(_FILE_CHUNK), b"")
        return ImportSource(BlobSource(chunks), size, lambda: self._storage(handle.close))

    def _verify(self, image: Image, request: ImportRequest, digest: DataDigest) -> None:
        if request.method != COPY_IMAGE:
            check_format(image.disk_format, digest, self._limits.verify_disk_format)
            return
        if image.checksum is not None and digest.checksum != image.checksum:
            raise ImportFailed("The image data read does not match its checksum")
        if image.os_hash_value is not None and (
            digest.hash_algo != image.os_hash_algo or digest.hash_value != image.os_hash_value
        ):
            raise ImportFailed("The image data read does not match its hash")

    async def _remove(self, image_id: str, stores: list[str]) -> None:
        for name in stores:
            await self._storage(_quietly(self._stores[name].blob.delete), self._key_of(image_id))

    def _finish(
        self,
        task: Task,
        image: Image,
        digest: DataDigest,
        committed: list[str],
        failed: list[str],
        change: FormatChange,
    ) -> None:
        def finished(current: Image) -> Image:
            if current.properties.get(IMPORT_LOCK) != task.id:
                raise Conflict("The image's import lock was taken from this task")
            current = change.applied(current)
            stores = (*current.stores, *(name for name in committed if name not in current.stores))
            done = dataclasses.replace(
                current, properties=with_stores(current, IMPORTING_TO, remove=[*committed, *failed])
            )
            properties = with_stores(done, FAILED_IMPORT, add=failed)
            properties.pop(IMPORT_LOCK, None)
            done = dataclasses.replace(done, properties=properties, stores=stores)
            if current.status is ImageStatus.ACTIVE:  # copy-image
                return done.with_changes(self._clock())
            active = activated(done, digest, self._clock())
            if change.virtual_size is not None:  # what `qemu-img info` said of the source
                active = dataclasses.replace(active, virtual_size=change.virtual_size)
            return active

        def claims(current: Image) -> list[QuotaClaim]:
            new_copies = len([name for name in committed if name not in current.stores])
            return self._quotas.claims(
                current.owner, {Resource.IMAGE_SIZE_TOTAL: digest.size * new_copies}
            )

        assert task.image_id is not None
        self._repository.update(task.image_id, finished, claims)

    async def fail(self, task: Task, message: str) -> None:
        request = ImportRequest.of_task(task)
        assert task.image_id is not None

        def failed(current: Image) -> Image:
            if current.properties.get(IMPORT_LOCK) != task.id:
                return current  # not this task's to undo
            stores = list(request.stores)
            done = dataclasses.replace(
                current, properties=with_stores(current, IMPORTING_TO, remove=stores)
            )
            properties = with_stores(done, FAILED_IMPORT, add=stores)
            properties.pop(IMPORT_LOCK, None)
            done = dataclasses.replace(done, properties=properties)
            if current.status is ImageStatus.IMPORTING:
                return dataclasses.replace(
                    done.with_status(ImageStatus.QUEUED, self._clock()), size=None
                )
            return done.with_changes(self._clock())

        with contextlib.suppress(ImageNotFound):
            await self._database(self._repository.update, task.image_id, failed)
        method = self._methods.get(request.method)
        if method is not None:
            await self._storage(_quietly(method.finish), task.image_id)


class _FanOut:
    """One writer over several stores' writers. `tolerant`: a store that fails is
    dropped (and listed in `failed`) while the others go on."""

    def __init__(self, writers: dict[str, BlobWriter], tolerant: bool) -> None:
        self._writers = writers
        self.tolerant = tolerant
        self.failed: list[str] = []

    def write(self, data: bytes | memoryview) -> None:
        for name, writer in self._writers.items():
            if name in self.failed:
                continue
            try:
                writer.write(data)
            except Exception:
                if not self.tolerant:
                    raise
                log.exception("writing to store %s failed", name)
                self.failed.append(name)
                _quietly(writer.abort)()
        if len(self.failed) == len(self._writers):
            raise ImportFailed("None of the uploads finished!")

    def commit(self) -> None:  # the import commits each store itself
        raise NotImplementedError

    def abort(self) -> None:
        raise NotImplementedError


class _Counting:
    """A body that reports how much has been read as the task's progress."""

    def __init__(self, body: BodySource, progress: Progress) -> None:
        self._body = body
        self._progress = progress
        self.read = 0

    async def readinto(self, buffer: memoryview) -> int:
        count = await self._body.readinto(buffer)
        self.read += count
        self._progress(f"Copied {self.read // MIB} MiB")
        return count


def _quietly(function: Callable[..., None]) -> Callable[..., None]:
    """`function`, whose failure is logged: cleanup must not hide the first error."""

    def call(*args: Any) -> None:
        try:
            function(*args)
        except Exception:
            log.exception("cleanup step %s failed", getattr(function, "__qualname__", function))

    return call
