"""The cap on client connections a worker holds at once.

uvicorn's own `limit_concurrency` answers 503 to requests made while too many
connections are open, but accepts every connection and waits for its request
forever: idle connections past the file descriptor limit then make every accept
fail, silently. Here, when a new connection would pass the cap, the connection
that has waited longest for a request head (idle, or trickling one in: a slowloris)
is closed to make room, so a flood of idle connections cannot lock clients out. Only
when every connection is busy with a request is the new one refused: answered 503
as soon as its request head is read (or closed when it sends none within a short
grace), or, past the cap and ANSWERED_PAST_CAP more, closed at once. The first
eviction or refusal in a minute logs one warning line.
"""

from __future__ import annotations

import enum
import logging
import time

from skylens.server.options import ANSWERED_PAST_CAP

REFUSED_GRACE_SECONDS = 2.0  # how long a refused connection may take to send its head
WARN_EVERY_SECONDS = 60.0
RETRY_AFTER_SECONDS = 5  # what a refused client is told to wait


class Admission(enum.Enum):
    SERVE = "serve"
    ANSWER_BUSY = "answer 503, then close"
    DROP = "close at once"


class ConnectionCap:
    """One worker's cap; its protocols share it (and its warning's throttle)."""

    def __init__(self, cap: int, warn_every: float = WARN_EVERY_SECONDS) -> None:
        self.cap = cap
        self._warn_every = warn_every
        self._warned_at: float | None = None
        self._refused = 0  # since the last warning
        self._evicted = 0  # since the last warning
        # The worker's connections waiting for a request head, longest-waiting first
        # (a dict keeps insertion order), and how many evicted ones are still closing.
        self.waiting: dict[object, None] = {}
        self.closing = 0

    def wait_for_head(self, connection: object) -> None:
        """`connection` (re)starts waiting for a request head: it goes last."""
        self.waiting.pop(connection, None)
        self.waiting[connection] = None

    def serving(self, connection: object) -> None:
        """`connection` has a request head, or is gone: it waits no more."""
        self.waiting.pop(connection, None)

    def longest_waiting(self, besides: object) -> object | None:
        """The connection waiting longest for a head, other than `besides`."""
        return next((other for other in self.waiting if other is not besides), None)

    def admit(self, open_connections: int, logger: logging.Logger) -> Admission:
        """What to do with a new connection, `open_connections` counting it (and no
        connection that could be evicted for it)."""
        if open_connections <= self.cap:
            return Admission.SERVE
        self._refused += 1
        self._warn(open_connections, logger)
        if open_connections > self.cap + ANSWERED_PAST_CAP:
            return Admission.DROP
        return Admission.ANSWER_BUSY

    def evicted(self, open_connections: int, logger: logging.Logger) -> None:
        """A connection waiting for a request head was closed to make room."""
        self._evicted += 1
        self._warn(open_connections, logger)

    def _warn(self, open_connections: int, logger: logging.Logger) -> None:
        now = time.monotonic()
        if self._warned_at is None or now - self._warned_at >= self._warn_every:
            logger.warning(
                "connection limit reached: %d open, server.max_connections = %d; since the "
                "last warning, closed %d connection(s) waiting for a request to make room "
                "and refused %d",
                open_connections - 1,
                self.cap,
                self._evicted,
                self._refused,
            )
            self._warned_at, self._refused, self._evicted = now, 0, 0
