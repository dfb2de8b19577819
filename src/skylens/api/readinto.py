"""Request bodies read into the caller's buffers (`domain.ports.BodySource`).

A server that can receive a body straight into an application's buffer says so by
listing `skylens.http.request.readinto` in the scope's extensions, with the callable
that does it:

    scope["extensions"]["skylens.http.request.readinto"] = {"readinto": readinto}
    count = await readinto(buffer)   # fills the memoryview unless the body ends first;
                                     # 0 once it has; OSError if the client went away

`skylens serve` does, for bodies framed by Content-Length on plain TCP (see
`skylens.cli.readinto`). Everywhere else (chunked bodies, TLS, other ASGI servers, test
clients) the body is the ASGI stream, copied into the buffer here. Either way a client
that goes away mid-body ends the read with Starlette's `ClientDisconnect`, as
`Request.stream()` does. This module knows nothing of any server: only the extension.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

from starlette.requests import ClientDisconnect, Request

from skylens.domain.ports import BodySource

READ_INTO = "skylens.http.request.readinto"

ReadInto = Callable[[memoryview], Awaitable[int]]


def request_body(request: Request) -> BodySource:
    """The request's body, received by the server into our buffers when it can."""
    extension = (request.scope.get("extensions") or {}).get(READ_INTO)
    if extension is not None:
        return ReceivedBody(extension["readinto"])
    return StreamedBody(request.stream())


class ReceivedBody:
    """The body as the server's `readinto` receives it."""

    def __init__(self, readinto: ReadInto) -> None:
        self._readinto = readinto

    async def readinto(self, buffer: memoryview) -> int:
        try:
            return await self._readinto(buffer)
        except OSError as error:
            raise ClientDisconnect() from error


class StreamedBody:
    """The body as the ASGI stream's chunks, copied into the caller's buffers."""

    def __init__(self, chunks: AsyncIterator[bytes]) -> None:
        self._chunks = chunks
        self._pending = memoryview(b"")  # the rest of the last chunk

    async def readinto(self, buffer: memoryview) -> int:
        filled = 0
        while filled < len(buffer):
            if not self._pending:
                chunk = await anext(self._chunks, None)
                if chunk is None:
                    break
                self._pending = memoryview(chunk)
                continue
            take = min(len(self._pending), len(buffer) - filled)
            buffer[filled : filled + take] = self._pending[:take]
            self._pending = self._pending[take:]
            filled += take
        return filled
