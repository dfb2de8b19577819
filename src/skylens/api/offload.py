"""Where the synchronous services run when an async handler calls them.

Every call that reaches the database runs on a worker thread, even a read of the
embedded SQLite database that usually takes 0.1 ms: a read that is slow for any
reason (a heavy filter, a lock held by another process, a disk that stalls) must
not stop the event loop from serving every other request, /healthcheck included.
The composition root chooses the strategy per kind of call.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from typing import ParamSpec, TypeVar

import anyio.to_thread

from skylens.domain.ports import Offload

__all__ = ["InThreads", "Offload", "database_threads"]

P = ParamSpec("P")
T = TypeVar("T")


@dataclasses.dataclass(frozen=True)
class InThreads:
    """On worker threads; at most `limiter.total_tokens` at once.

    Sized to the database pool, so that no thread waits for a connection and
    the pool never opens and closes overflow connections.
    """

    limiter: anyio.CapacityLimiter

    async def __call__(self, function: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        return await anyio.to_thread.run_sync(
            functools.partial(function, *args, **kwargs), limiter=self.limiter
        )


def database_threads(pool_size: int) -> tuple[int, int]:
    """(reads, writes): how many threads of a worker run the services' reads, and how
    many everything else: `pool_size` and half of it (at least one).

    Apart, so that neither kind queues behind the other: writers of one image take
    turns on its row, and a burst of them (issue 18 item 20: 90 PATCHes at once)
    holds every write thread until its turn comes, while lists and shows go on.
    Together they stay within the connections the pool may open (`pool_size` kept,
    as many again as overflow), so no thread waits for a connection.
    """
    return pool_size, max(1, pool_size // 2)
