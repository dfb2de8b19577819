"""Where the synchronous services run when an async handler calls them.

A call that may wait (on the network, on a lock, on a disk write) runs on a
worker thread so the event loop keeps serving. A call that never waits gains
nothing from a thread and pays for the hop: handing the call over and getting
the GIL back costs more than reading an image from the embedded SQLite
database (about 0.1 ms), and under load it cut show throughput by two thirds.
The composition root chooses per kind of call.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from typing import ParamSpec, TypeVar

import anyio.to_thread

from skylens.domain.ports import Offload

__all__ = ["InThreads", "Offload", "OnTheLoop"]

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


class OnTheLoop:
    """On the event loop itself: only for calls that never wait."""

    async def __call__(self, function: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        return function(*args, **kwargs)
