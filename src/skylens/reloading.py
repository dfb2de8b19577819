"""What an operator's file says, read at start-up and again whenever the file changes.

The token file, the policy file and the property-protection file all work this way.
A file that is broken at start-up stops the service (the reader's error propagates);
a file broken by a later edit keeps what the last good version said, and the error
is logged. A file deleted later keeps it too, unless the reader gives a value for
"no file" (`when_missing`: for the token file, no tokens). The file's metadata is
looked at no more than once a `recheck_seconds`, so a busy server does not stat it
on every request.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Generic, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")
Stamp = tuple[int, int, int]


class ReloadingFile(Generic[T]):
    def __init__(
        self,
        path: Path,
        read: Callable[[Path], T],
        *,
        what: str,
        invalid: tuple[type[Exception], ...],
        recheck_seconds: float = 1.0,
        when_missing: Callable[[], T] | None = None,
    ) -> None:
        """`read` parses the file; `invalid` are its errors for a broken file, and
        `what` names the file in logs ("token file"). `when_missing` gives the value
        in force while the file is deleted; without it, the last value stays."""
        self.path = path
        self._read = read
        self._when_missing = when_missing
        self._what = what
        self._failures: tuple[type[Exception], ...] = (OSError, *invalid)
        self._recheck_seconds = recheck_seconds
        self._lock = threading.Lock()
        # Stamp first: an edit made while reading is seen at the next check.
        self._stamp: Stamp | None = _stamp(path)
        self._value = read(path)
        self._checked = time.monotonic()

    def current(self) -> T:
        now = time.monotonic()
        if now - self._checked < self._recheck_seconds:
            return self._value
        with self._lock:
            if now - self._checked >= self._recheck_seconds:
                self._checked = now
                self._reload_if_changed()
        return self._value

    def _reload_if_changed(self) -> None:
        try:
            try:
                stamp = _stamp(self.path)
            except FileNotFoundError:
                if self._when_missing is None:
                    raise
                self._gone()
                return
            if stamp == self._stamp:
                return
            self._value, self._stamp = self._read(self.path), stamp
            log.info("%s %s reloaded", self._what, self.path)
        except self._failures as error:
            log.error(
                "%s %s not reloaded, its previous version stays in force: %s",
                self._what,
                self.path,
                error,
            )

    def _gone(self) -> None:
        if self._stamp is None:
            return
        assert self._when_missing is not None
        self._value, self._stamp = self._when_missing(), None
        log.warning(
            "%s %s is gone: nothing it said is in force until it is back", self._what, self.path
        )


def _stamp(path: Path) -> Stamp:
    status = path.stat()
    return status.st_mtime_ns, status.st_size, status.st_ino
