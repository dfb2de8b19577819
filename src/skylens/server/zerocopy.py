"""The ASGI "Zero Copy Send" extension (`http.response.zerocopysend`) for uvicorn.

uvicorn does not implement the extension, and uvloop's event loop has no working
`loop.sendfile` (it raises NotImplementedError), so this module does both jobs for
uvicorn's httptools protocol. On a plain-TCP connection the protocol advertises
`scope["extensions"]["http.response.zerocopysend"]`, and a message

    {"type": "http.response.zerocopysend", "file": <file or fd>,
     "offset": int (default: the file's position), "count": int (default: to the end),
     "more_body": bool (default False)}

goes out through `os.sendfile(2)`: the kernel moves the bytes from the page cache to
the socket, and none of them passes through Python.

Everything else about the response stays uvicorn's. The bytes are accounted for
exactly as an `http.response.body` of that length would be (checked against
Content-Length, framed as one chunk if the response is chunked, not sent at all for
HEAD), and the message ends by passing an empty `http.response.body` with its
`more_body` to uvicorn's own `send`, so completion, keep-alive, pipelining and the
checks on the length stay uvicorn's code.

How the bytes go out, all on the event-loop thread:

* The transfer works on a `dup()` of the socket: uvloop refuses to watch a descriptor
  that a transport owns, and the duplicate cannot be closed and reused under us.
* The loop watches the duplicate for writability. Each callback first lets the
  transport's own buffer drain (the status line and headers are in it), then makes
  one `sendfile` call of at most `CALL_LIMIT` bytes and returns, so other requests are
  served between calls and a slow client costs nothing while its socket is full.
* The transfer stops when the connection is lost (the protocol tells `FileSender`) or
  the transport is closing; the message then returns as uvicorn's `send` does after a
  disconnect, silently. A client gone mid-transfer (EPIPE, ECONNRESET) aborts the
  connection. A file that ends before `count` bytes leaves a body that no framing can
  finish: the connection is closed and RuntimeError raised, as uvicorn does for a body
  shorter than its Content-Length.

As the extension says, the file stays the application's to close.

This leans on uvicorn's internals: `HttpToolsProtocol._start_asgi_task` (where the
protocol wraps each request's app; uvicorn 0.40 and older lack it and then never
advertise the extension, so applications fall back to their own streaming) and the
response state of its `RequestResponseCycle`. tests/server/test_zerocopy.py runs it on a
real uvicorn, so an upgrade that moves them fails there.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from uvicorn.protocols.http.httptools_impl import RequestResponseCycle

from skylens.asgi_extensions import ZERO_COPY_SEND

CALL_LIMIT = 4 << 20  # bytes per sendfile call; between calls the loop serves others

Message = MutableMapping[str, Any]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[MutableMapping[str, Any], Callable[[], Awaitable[Any]], Send], Awaitable[None]]


class FileSender:
    """The extension on one connection: at most one transfer at a time, as one
    response is sent at a time."""

    def __init__(self, loop: asyncio.AbstractEventLoop, transport: asyncio.Transport) -> None:
        self._loop = loop
        self._transport = transport
        self._transfer: _Transfer | None = None

    def app(self, app: Any, cycle: RequestResponseCycle) -> App:
        """`app` for one request, seeing the extension in its scope and its send."""

        async def with_zero_copy(
            scope: MutableMapping[str, Any], receive: Callable[[], Awaitable[Any]], send: Send
        ) -> None:
            extensions = scope.get("extensions")
            scope["extensions"] = {**(extensions or {}), ZERO_COPY_SEND: {}}

            async def send_or_sendfile(message: Message) -> None:
                if message["type"] == ZERO_COPY_SEND:
                    await self.send(cycle, send, message)
                else:
                    await send(message)

            await app(scope, receive, send_or_sendfile)

        return with_zero_copy

    def connection_lost(self) -> None:
        if self._transfer is not None:
            self._transfer.finish()

    async def send(self, cycle: RequestResponseCycle, send: Send, message: Message) -> None:
        """One `http.response.zerocopysend` message of `cycle`'s response."""
        if cycle.flow.write_paused and not cycle.disconnected:
            await cycle.flow.drain()
        if cycle.disconnected:
            return
        if not cycle.response_started:
            raise RuntimeError(
                f"Expected ASGI message 'http.response.start', but got '{ZERO_COPY_SEND}'."
            )
        if cycle.response_complete:
            raise RuntimeError(
                f"Unexpected ASGI message '{ZERO_COPY_SEND}' sent, after response already "
                "completed."
            )
        descriptor = _descriptor(message["file"])
        offset = message.get("offset")
        from_position = offset is None
        if offset is None:
            offset = os.lseek(descriptor, 0, os.SEEK_CUR)
        count = message.get("count")
        if count is None:
            count = max(0, os.fstat(descriptor).st_size - offset)
        if offset < 0 or count < 0:
            raise ValueError(f"{ZERO_COPY_SEND}: offset and count cannot be negative")
        if cycle.scope["method"] == "HEAD":
            count = 0  # a HEAD response has no body; uvicorn's send does the rest
        elif not cycle.chunked_encoding and count > cycle.expected_content_length:
            raise RuntimeError("Response content longer than Content-Length")
        if count:
            if cycle.chunked_encoding:
                cycle.transport.write(b"%x\r\n" % count)
            if not await self._sendfile(cycle, descriptor, offset, count):
                return
            if cycle.chunked_encoding:
                cycle.transport.write(b"\r\n")
            else:
                cycle.expected_content_length -= count
            if from_position:
                os.lseek(descriptor, offset + count, os.SEEK_SET)
        body: Message = {
            "type": "http.response.body",
            "body": b"",
            "more_body": bool(message.get("more_body", False)),
        }
        await send(body)

    async def _sendfile(
        self, cycle: RequestResponseCycle, descriptor: int, offset: int, count: int
    ) -> bool:
        """Whether all `count` bytes went out; False when the connection went away."""
        if self._transport.is_closing():
            cycle.disconnected = True
            return False
        transfer = _Transfer(self._loop, self._transport, descriptor, offset, count)
        self._transfer = transfer
        try:
            await transfer.done
        finally:
            transfer.finish()
            self._transfer = None
        if transfer.error is not None:
            self._transport.close()  # the body cannot be completed: end the connection
            raise RuntimeError(f"{ZERO_COPY_SEND} could not send the file") from transfer.error
        if transfer.sent == count:
            return True
        if transfer.peer_gone:
            self._transport.abort()
        cycle.disconnected = True  # lost, or closing: nothing more can reach the client
        return False


class FileEndedEarly(Exception):
    """The file holds fewer bytes than the message's count."""


class _Transfer:
    """`count` bytes of a file from `offset`, to the transport's socket."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        transport: asyncio.Transport,
        descriptor: int,
        offset: int,
        count: int,
    ) -> None:
        self._loop = loop
        self._transport = transport
        self._file = descriptor
        self._offset = offset
        self._count = count
        self.sent = 0
        self.peer_gone = False
        self.error: BaseException | None = None
        self.done: asyncio.Future[None] = loop.create_future()
        self._socket: int | None = os.dup(transport.get_extra_info("socket").fileno())
        try:
            loop.add_writer(self._socket, self._on_writable)
        except BaseException:
            os.close(self._socket)
            raise

    def _on_writable(self) -> None:
        if self._socket is None:
            return
        if self._transport.is_closing():
            self.finish()
            return
        if self._transport.get_write_buffer_size():
            return  # the transport's own bytes (the headers) go first
        size = min(CALL_LIMIT, self._count - self.sent)
        try:
            sent = os.sendfile(self._socket, self._file, self._offset + self.sent, size)
        except (BlockingIOError, InterruptedError):
            return
        except ConnectionError:
            self.peer_gone = True
            self.finish()
            return
        except OSError as error:
            self.error = error
            self.finish()
            return
        if sent == 0:
            self.error = FileEndedEarly(
                f"the file ended {self._count - self.sent} bytes short of the count"
            )
            self.finish()
            return
        self.sent += sent
        if self.sent == self._count:
            self.finish()

    def finish(self) -> None:
        """Stop watching and close the duplicate; idempotent."""
        if self._socket is not None:
            self._loop.remove_writer(self._socket)
            os.close(self._socket)
            self._socket = None
        if not self.done.done():
            self.done.set_result(None)


def _descriptor(file: Any) -> int:
    if isinstance(file, int):
        return file
    descriptor: int = file.fileno()
    return descriptor
