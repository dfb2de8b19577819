"""Import plugins, configured per deployment as Glance's ([image_import] plugins).

Metadata injection (Glance's inject_image_metadata) sets configured properties on
the images a user without any of the ignored roles imports; it needs the importing
user's roles, which only the import request has, so it happens when the import
starts (Glance's flow runs it moments later; either way the properties stay when
the import then fails).

The data plugins (image_decompression, image_conversion) work on a file, as Glance's
do, because `qemu-img` cannot read a stream: the import writes its source to a
work file under `<data_dir>/import-work/<task id>`, runs the plugins in their
configured order, and then streams the file into the target stores through the
usual ingest. Memory stays flat; the work directory goes when the import ends, and
a run taken over clears what an earlier run of the same task left.
"""

from __future__ import annotations

import dataclasses
import gzip
import logging
import os
import shutil
import zipfile
from collections.abc import Callable, Collection, Mapping
from pathlib import Path
from typing import IO, Protocol

from skylens.domain.data import DiskImageToolFailed
from skylens.domain.images import Image
from skylens.domain.ports import BodySource, DiskImageTool, FormatInspector, Offload

log = logging.getLogger(__name__)

GLANCE_RESERVED = "os_glance"
_CHUNK = 1 << 20


class ImportFailed(Exception):
    """An import could not finish: the task's message says why (no client request
    sees it, so it is no `SkylensError`)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclasses.dataclass(frozen=True)
class MetadataInjection:
    """inject_image_metadata: `properties` for users with none of `ignore_roles`."""

    properties: Mapping[str, str]
    ignore_roles: frozenset[str]

    def for_roles(self, roles: Collection[str]) -> Mapping[str, str]:
        if self.ignore_roles & set(roles):
            return {}
        return {k: v for k, v in self.properties.items() if not k.startswith(GLANCE_RESERVED)}


@dataclasses.dataclass(frozen=True)
class FormatChange:
    """What an import changes of the image besides its data: what a data plugin
    changed (Glance lets plugins set the formats only), or what glance-download
    takes from the source image (its formats and some of its properties)."""

    disk_format: str | None = None
    container_format: str | None = None
    virtual_size: int | None = None
    properties: Mapping[str, str] = dataclasses.field(default_factory=dict)

    def then(self, later: FormatChange) -> FormatChange:
        return FormatChange(
            later.disk_format or self.disk_format,
            later.container_format or self.container_format,
            later.virtual_size if later.virtual_size is not None else self.virtual_size,
            {**self.properties, **later.properties},
        )

    def applied(self, image: Image) -> Image:
        return dataclasses.replace(
            image,
            disk_format=self.disk_format or image.disk_format,
            container_format=self.container_format or image.container_format,
            properties={**image.properties, **self.properties},
        )


class DataPlugin(Protocol):
    """One step over the work file at `path` (blocking); it leaves its result there."""

    def apply(self, image: Image, path: Path) -> FormatChange: ...


@dataclasses.dataclass(frozen=True)
class Prepared:
    """The import's data after the data plugins: a file, and what they changed."""

    path: Path
    size: int
    change: FormatChange


@dataclasses.dataclass(frozen=True)
class ImportPlugins:
    data: tuple[DataPlugin, ...] = ()
    injection: MetadataInjection | None = None
    work_root: Path | None = None

    def injected(self, roles: Collection[str]) -> Mapping[str, str]:
        return {} if self.injection is None else self.injection.for_roles(roles)

    def work_dir(self, task_id: str) -> Path:
        assert self.work_root is not None
        return self.work_root / task_id

    async def prepare(
        self, image: Image, body: BodySource, task_id: str, size_cap: int, files: Offload
    ) -> Prepared:
        """Write `body` to the task's work file, then run the data plugins on it."""
        work = self.work_dir(task_id)
        await files(self.clear, task_id)
        await files(work.mkdir, 0o700, True, True)
        path = work / "data"
        handle = await files(open, path, "wb")
        try:
            await _copy(body, handle, size_cap, files)
        finally:
            await files(handle.close)
        change = FormatChange()
        for plugin in self.data:
            step = await files(plugin.apply, change.applied(image), path)
            change = change.then(step)
            if (await files(path.stat)).st_size > size_cap:
                raise ImportFailed("The image data is larger than this site accepts")
        return Prepared(path, (await files(path.stat)).st_size, change)

    def clear(self, task_id: str) -> None:
        if self.work_root is not None:
            shutil.rmtree(self.work_dir(task_id), ignore_errors=True)


async def _copy(body: BodySource, handle: IO[bytes], size_cap: int, files: Offload) -> None:
    buffer = bytearray(_CHUNK)
    view = memoryview(buffer)
    written = 0
    while count := await body.readinto(view):
        written += count
        if written > size_cap:
            raise ImportFailed("The image data is larger than this site accepts")
        await files(handle.write, view[:count])


class _Readable(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


# Glance's magic numbers (image_decompression): offset, bytes.
_GZIP = (0, b"\x1f\x8b\x08")
_ZIP = (0, b"PK\x03\x04")


@dataclasses.dataclass(frozen=True)
class Decompression:
    """image_decompression: gzip and zip (one member) data is replaced by what it
    holds, unless the image's container_format is `compressed`. What it holds may
    be no larger than `size_cap` (a small bomb does not fill the disk)."""

    size_cap: int

    def apply(self, image: Image, path: Path) -> FormatChange:
        if image.container_format == "compressed":
            return FormatChange()
        with open(path, "rb") as handle:
            head = handle.read(8)
        target = path.with_name(path.name + ".uc")
        try:
            if head.startswith(_GZIP[1]):
                with gzip.open(path, "rb") as packed:
                    self._unpack(packed, target)
            elif head.startswith(_ZIP[1]):
                with zipfile.ZipFile(path) as archive:
                    names = archive.namelist()
                    if len(names) != 1:
                        raise ImportFailed("Archive contains more than one file.")
                    with archive.open(names[0]) as packed:
                        self._unpack(packed, target)
            else:
                return FormatChange()
        except (OSError, EOFError, zipfile.BadZipFile) as error:
            log.info("decompressing image %s failed: %s", image.id, error)
            raise ImportFailed("Image decompression failed") from error
        os.replace(target, path)
        return FormatChange()

    def _unpack(self, packed: _Readable, target: Path) -> None:
        written = 0
        with open(target, "wb") as out:
            while chunk := packed.read(_CHUNK):
                written += len(chunk)
                if written > self.size_cap:
                    raise ImportFailed("The image data is larger than this site accepts")
                out.write(chunk)


@dataclasses.dataclass(frozen=True)
class Conversion:
    """image_conversion: the data, once the format inspector found it safe and of the
    image's disk_format, and `qemu-img info` agrees, converted to `output_format`."""

    output_format: str
    inspector: Callable[[], FormatInspector]
    tool: DiskImageTool
    size_cap: int
    vmdk_allowed_types: frozenset[str] = frozenset({"streamOptimized", "monolithicSparse"})

    def apply(self, image: Image, path: Path) -> FormatChange:
        declared = image.disk_format
        detected = self._inspected(path)
        if detected == "iso":
            if declared == "iso":
                return FormatChange()  # Glance keeps ISOs as they are
            raise ImportFailed("Image has disallowed configuration")
        if declared is None or detected != declared:
            log.info("image %s claimed %s, inspected as %s", image.id, declared, detected)
            raise ImportFailed("Image format mismatch")
        try:
            info = self.tool.info(path, declared)
        except DiskImageToolFailed as error:
            log.info("qemu-img info of image %s failed: %s", image.id, error)
            raise ImportFailed("Image format detection failed") from error
        if info.format != declared:
            raise ImportFailed("Image metadata disagrees about format")
        if info.has_backing_file:
            raise ImportFailed("QCOW images with backing files are not allowed")
        if info.has_data_file:
            raise ImportFailed("QCOW images with data-file set are not allowed")
        if info.format == "vmdk" and info.vmdk_create_type not in self.vmdk_allowed_types:
            raise ImportFailed("Invalid VMDK create-type specified")
        if declared == self.output_format:
            return FormatChange(virtual_size=info.virtual_size)
        if self.output_format == "raw" and (info.virtual_size or 0) > self.size_cap:
            # Raw data is as large as the disk: refused before qemu-img writes it.
            raise ImportFailed("The image data is larger than this site accepts")
        target = path.with_name(f"{path.name}.{self.output_format}")
        try:
            self.tool.convert(path, declared, target, self.output_format)
        except DiskImageToolFailed as error:
            log.info("converting image %s failed: %s", image.id, error)
            raise ImportFailed("Image conversion failed") from error
        if self._inspected(target) != self.output_format:
            raise ImportFailed("Converted image in unexpected format")
        os.replace(target, path)
        return FormatChange(self.output_format, "bare", info.virtual_size)

    def _inspected(self, path: Path) -> str:
        """The format the inspector finds (gpt counted as raw, as Glance does); refuse
        data it finds unsafe before `qemu-img` ever reads it."""
        inspector = self.inspector()
        with open(path, "rb") as handle:
            while chunk := handle.read(8 * _CHUNK):
                inspector.feed(chunk)
        verdict = inspector.verdict()
        if verdict.unsafe_reason is not None:
            log.info("unsafe %s data: %s", verdict.name, verdict.unsafe_reason)
            raise ImportFailed("Image has disallowed configuration")
        name = verdict.name or "raw"
        return "raw" if name == "gpt" else name
