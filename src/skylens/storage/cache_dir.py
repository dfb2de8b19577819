"""A node's image cache directory (`CacheFiles`).

    <root>/<image id>              complete files, whole and synced
    <root>/incomplete/<image id>   fills under way, each held by an flock(2)

A fill takes an exclusive, non-blocking lock on its incomplete file, so of the
processes of a node (its workers) one fills an image at a time, and a lock that
nobody holds is a fill whose process died (kill -9 releases it): the stalled-fill
cleaner removes those. The data is synced, then renamed into place; a crash at any
point leaves either nothing under the image's name or the whole file.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import re
import time
from pathlib import Path
from typing import BinaryIO

from skylens.domain.errors import InvalidBlobKey

log = logging.getLogger(__name__)

_IMAGE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
INCOMPLETE = "incomplete"


def _checked(image_id: str) -> str:
    if not _IMAGE_ID.fullmatch(image_id):
        raise InvalidBlobKey(image_id)
    return image_id


def fingerprint_of(status: os.stat_result) -> str:
    """What changes when the file's bytes are written to or the file replaced."""
    return f"{status.st_ino}:{status.st_size}:{status.st_mtime_ns}"


class CacheDirectory:
    def __init__(self, root: Path) -> None:
        self._root = root
        self._incomplete = root / INCOMPLETE
        self._incomplete.mkdir(parents=True, exist_ok=True)

    @property
    def root(self) -> Path:
        return self._root

    def path(self, image_id: str) -> Path:
        return self._root / _checked(image_id)

    def fingerprint(self, image_id: str) -> str | None:
        try:
            return fingerprint_of(os.stat(self.path(image_id)))
        except FileNotFoundError:
            return None

    def start_fill(self, image_id: str) -> _Fill | None:
        path = self._incomplete / _checked(image_id)
        file = _locked(path)
        if file is None:
            return None
        file.truncate(0)
        return _Fill(file, path, self.path(image_id), self._root)

    def delete(self, image_id: str) -> bool:
        try:
            self.path(image_id).unlink()
        except FileNotFoundError:
            return False
        return True

    def sizes(self) -> dict[str, int]:
        found = {}
        with os.scandir(self._root) as entries:
            for entry in entries:
                if entry.is_file(follow_symlinks=False) and _IMAGE_ID.fullmatch(entry.name):
                    with contextlib.suppress(FileNotFoundError):
                        found[entry.name] = entry.stat().st_size
        return found

    def delete_stalled(self, older_than_seconds: float) -> int:
        deadline = time.time() - older_than_seconds
        removed = 0
        with os.scandir(self._incomplete) as entries:
            names = [entry.name for entry in entries]
        for name in names:
            path = self._incomplete / name
            file = _locked(path)
            if file is None:
                continue  # a live fill
            with file:
                if os.fstat(file.fileno()).st_mtime > deadline:
                    continue
                path.unlink(missing_ok=True)
                removed += 1
                log.info("removed the stalled cache fill %s", name)
        return removed


def _locked(path: Path) -> BinaryIO | None:
    """The file at `path` (created if need be) under our exclusive lock, or None if
    another fill holds it. The lock is on the file still at `path` (not on one a
    committing fill renamed away meanwhile)."""
    file = open(path, "ab+")  # noqa: SIM115 - the fill owns and closes it
    try:
        fcntl.flock(file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        file.close()
        return None
    try:
        same = os.stat(path).st_ino == os.fstat(file.fileno()).st_ino
    except FileNotFoundError:
        same = False
    if not same:
        file.close()
        return None
    return file


class _Fill:
    def __init__(self, file: BinaryIO, incomplete: Path, final: Path, root: Path) -> None:
        self._file = file
        self._incomplete = incomplete
        self._final = final
        self._root = root

    def write(self, data: bytes | memoryview) -> None:
        self._file.write(data)

    def seal(self) -> str:
        self._file.flush()
        os.fsync(self._file.fileno())
        return fingerprint_of(os.fstat(self._file.fileno()))

    def commit(self) -> None:
        try:
            os.rename(self._incomplete, self._final)
            directory = os.open(self._root, os.O_RDONLY | os.O_DIRECTORY)
            try:
                os.fsync(directory)
            finally:
                os.close(directory)
        finally:
            self._file.close()

    def abort(self) -> None:
        try:
            self._incomplete.unlink(missing_ok=True)
        finally:
            self._file.close()
