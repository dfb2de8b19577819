"""A directory as a blob store: temp file, fsync, rename; path-traversal proof.

An uncommitted write is a file in `<root>/.partial/` named after its key (slashes as
`~`, which no key contains) and a random suffix, so the sweep can tell which key a
leftover was for and leave alone those of uploads that are still alive.
"""

from __future__ import annotations

import contextlib
import os
import time
import uuid
from collections.abc import Collection, Iterator
from pathlib import Path
from typing import BinaryIO

from skylens.domain.errors import BlobNotFound

_PARTIAL_DIR = ".partial"
_SLASH = "~"  # stands for "/" in a partial file's name
_NAME_MAX = 255  # bytes in a file name, on every filesystem we run on
READ_CHUNK = 1 << 20


class FilesystemStore:
    def __init__(self, name: str, root: Path, *, fsync: bool = True) -> None:
        self._name = name
        self._root = root.resolve()
        self._partial = self._root / _PARTIAL_DIR
        self._fsync = fsync
        self._partial.mkdir(parents=True, exist_ok=True)

    @property
    def name(self) -> str:
        return self._name

    def _path(self, key: str) -> Path:
        path = (self._root / key).resolve()
        if not path.is_relative_to(self._root) or path.is_relative_to(self._partial):
            raise BlobNotFound(key)  # unreachable with a checked key; belt and braces
        return path

    def prepare(self) -> None:
        """Nothing to do: the directories are made when the store is."""

    def writer(self, key: str) -> FileWriter:
        final = self._path(key)
        name = f"{key.replace('/', _SLASH)}.{uuid.uuid4().hex}"
        if len(name.encode()) > _NAME_MAX:
            name = uuid.uuid4().hex  # a key this long: its leftover is judged by age alone
        return FileWriter(final, self._partial / name, self._fsync)

    def read(self, key: str, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        try:
            handle = open(self._path(key), "rb")  # noqa: SIM115 - closed by the generator
        except FileNotFoundError:
            raise BlobNotFound(key) from None
        return _read_range(handle, start, end)

    def size(self, key: str) -> int | None:
        try:
            return self._path(key).stat().st_size
        except FileNotFoundError:
            return None

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def keys(self, older_than: float = 0.0) -> Iterator[str]:
        cutoff = time.time() - older_than
        for directory, subdirectories, files in os.walk(self._root):
            if Path(directory) == self._root:
                subdirectories[:] = [d for d in subdirectories if d != _PARTIAL_DIR]
            for file_name in files:
                path = Path(directory) / file_name
                if older_than > 0:
                    try:
                        if path.stat().st_mtime >= cutoff:
                            continue
                    except FileNotFoundError:
                        continue
                yield str(path.relative_to(self._root))

    def sweep_uncommitted(self, older_than: float, live: Collection[str] = ()) -> int:
        cutoff = time.time() - older_than
        live_names = {key.replace("/", _SLASH) for key in live}
        removed = 0
        for entry in os.scandir(self._partial):
            if entry.name.rpartition(".")[0] in live_names:
                continue  # its upload is alive, however slow
            with contextlib.suppress(FileNotFoundError):
                if entry.stat().st_mtime < cutoff:
                    os.unlink(entry.path)
                    removed += 1
        return removed

    def local_path(self, key: str) -> Path | None:
        path = self._path(key)
        return path if path.exists() else None

    def details(self) -> dict[str, object]:
        return {"data_dir": str(self._root), "fsync": self._fsync}


def _read_range(file: BinaryIO, start: int, end: int | None) -> Iterator[bytes]:
    with file:
        file.seek(start)
        remaining = None if end is None else max(0, end - start)
        while remaining is None or remaining > 0:
            size = READ_CHUNK if remaining is None else min(READ_CHUNK, remaining)
            chunk = file.read(size)
            if not chunk:
                return
            if remaining is not None:
                remaining -= len(chunk)
            yield chunk


class FileWriter:
    """Writes to `<root>/.partial/<random>`; commit is fsync + rename + dir fsync."""

    def __init__(self, final: Path, partial: Path, fsync: bool) -> None:
        self._final = final
        self._partial = partial
        self._fsync = fsync
        self._fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640)

    def write(self, data: bytes | memoryview) -> None:
        view = memoryview(data)
        while view:
            written = os.write(self._fd, view)
            view = view[written:]

    def commit(self) -> None:
        try:
            if self._fsync:
                os.fsync(self._fd)
        finally:
            os.close(self._fd)
        self._final.parent.mkdir(parents=True, exist_ok=True)
        os.replace(self._partial, self._final)
        if self._fsync:
            _fsync_directory(self._final.parent)

    def abort(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self._fd)
        self._partial.unlink(missing_ok=True)


def _fsync_directory(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
