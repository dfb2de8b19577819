"""Request bodies read into the caller's buffers (`domain.ports.BodySource`).

A server that can receive a body straight into an application's buffer says so by
offering the `READ_INTO` extension (`skylens.asgi_extensions`). `skylens serve` does,
for bodies framed by Content-Length or chunked on plain TCP (see
`skylens.server.readinto`). Everywhere else (TLS, other ASGI servers, test clients) the body is
the ASGI stream, copied into the buffer here. Either way a client that goes away
mid-body (or that the server gave up waiting for) ends the read with Starlette's
`ClientDisconnect`, as `Request.stream()` does. This module knows nothing of any
server: only the extension.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

from starlette.requests import ClientDisconnect, Request

from skylens.asgi_extensions import READ_INTO, offered
from skylens.domain.ports import BodySource

ReadInto = Callable[[memoryview], Awaitable[int]]


def request_body(request: Request) -> BodySource:
    """The request's body, received by the server into our buffers when it can."""
    extension = offered(request.scope, READ_INTO)
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
