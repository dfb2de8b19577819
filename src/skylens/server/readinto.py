"""Request bodies received straight into the application's buffers, for uvicorn.

The ASGI `receive()` hands a body over in chunks: uvicorn's parser appends each piece
the socket gives it to a `bytearray`, `receive` copies that into a `bytes`, and every
chunk costs an event wake-up; an application that wants the bytes in its own buffer
copies them once more. For an image upload that is most of a CPU second per GiB on
the event-loop thread, next to the hashing. So, on plain-TCP connections, a request
whose body is framed by Content-Length gets the `READ_INTO` extension
(`skylens.asgi_extensions`), `{"readinto": readinto}`:

    count = await readinto(buffer)   # a writable memoryview

fills `buffer` with the next bytes of the body (fewer only when the body ends; 0 once
it has) with the socket's own `recv_into`, and raises ConnectionError when the
connection ends first. A chunked body gets the extension too (`ParsedBodyReader`,
at the end): the parser keeps decoding its framing and its pieces are copied into
the waiting buffer. TLS and upgrades get no extension: the application reads
`receive()` as usual.

How it goes, on the event-loop thread:

* First come the body bytes uvicorn's parser already took (some arrive with the
  headers), each exactly once. If the parser has seen the whole body, that is all, and
  the connection is not touched.
* Otherwise the connection stops reading (the protocol feeds its parser nothing more),
  and the rest of the body, exactly as many bytes as Content-Length says are left, is
  received on a `dup()` of the socket (uvloop refuses to watch a descriptor a
  transport owns). While a buffer waits for bytes the loop watches the duplicate, with
  SO_RCVLOWAT raised so that it wakes up once a good part of the buffer can be filled,
  not for every packet.
* The parser never sees those bytes, so it is left mid-body. When the body has been
  read to its end, the protocol gets a fresh parser and reading resumes: the next
  request on the connection (pipelined or not) is parsed from its first byte, and
  keep-alive works as before. If the application stops early (it starts its response,
  or returns, with part of the body unread), the protocol skips exactly the unread
  part before parsing again, as uvicorn discards a body nobody read.
* `receive()` is refused while the body is the extension's; afterwards it says what
  uvicorn's would (the body has ended, or the client has gone).
* A connection that ends before the body does (EOF, reset) is closed and `readinto`
  raises ConnectionError, as `receive()` would say `http.disconnect`.
* A client that sends nothing for `idle_timeout` seconds while a read waits is
  reported to the protocol (which logs it) and its connection aborted; `readinto`
  raises TimeoutError (an OSError, as a disconnect is).

This leans on uvicorn's internals: `HttpToolsProtocol._start_asgi_task`, its parser
attribute and the body state of its `RequestResponseCycle` (`body`, `more_body`,
`waiting_for_100_continue`). tests/server/test_readinto.py runs it on a real uvicorn, so
an upgrade that moves them fails there.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import os
import socket
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any, Protocol

from uvicorn.protocols.http.flow_control import FlowControl
from uvicorn.protocols.http.httptools_impl import RequestResponseCycle

from skylens.asgi_extensions import READ_INTO

WAKE_AT = 1 << 20  # SO_RCVLOWAT while waiting: wake up for this many bytes at most

Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[MutableMapping[str, Any], Receive, Send], Awaitable[None]]


class Connection(Protocol):
    """What a body reader needs of the protocol serving its connection."""

    loop: asyncio.AbstractEventLoop
    transport: asyncio.Transport
    flow: FlowControl
    cycle: RequestResponseCycle  # the request the parser is in

    def hold_input(self, reader: BodyReader) -> None:
        """Stop reading the connection: its next bytes are the reader's."""

    def release_input(self, unread: int) -> None:
        """Read the connection again: skip `unread` bytes, then parse a new request."""

    def body_stalled(self, cycle: RequestResponseCycle) -> None:
        """The client sent no body bytes for the idle timeout: say so (before the
        connection is aborted)."""


def content_length(headers: Iterable[tuple[bytes, bytes]]) -> int | None:
    """The body's length, when Content-Length alone frames it."""
    lengths = []
    for name, value in headers:
        if name == b"transfer-encoding" or name == b"upgrade":
            return None
        if name == b"content-length":
            lengths.append(value)
    if len(lengths) != 1 or not lengths[0].strip().isdigit():
        return None
    return int(lengths[0])


def chunked(headers: Iterable[tuple[bytes, bytes]]) -> bool:
    """Whether the body is framed by chunked transfer coding (and not an upgrade)."""
    codings = b""
    for name, value in headers:
        if name == b"upgrade":
            return False
        if name == b"transfer-encoding":
            codings = value
    return codings.rsplit(b",", 1)[-1].strip().lower() == b"chunked"


class _State(enum.Enum):
    UNUSED = "not read through the extension yet"
    HELD = "the connection's input is the reader's"
    ENDED = "the body was read to its end"
    LEFT = "the application stopped reading before the end"
    FAILED = "the connection ended before the body"


class BodyReader:
    """The extension for one request whose body has `length` bytes."""

    def __init__(
        self,
        connection: Connection,
        cycle: RequestResponseCycle,
        length: int,
        idle_timeout: float | None = None,
    ) -> None:
        self._connection = connection
        self._cycle = cycle
        self._length = length
        self._idle_timeout = idle_timeout
        self._idle_since = 0.0  # while waiting: when the last bytes came, or the wait began
        self._timer: asyncio.TimerHandle | None = None
        self._timed_out = False
        self._state = _State.UNUSED
        self._delivered = 0  # body bytes the application got through receive()
        self._early = memoryview(b"")  # body bytes the parser took, not yet handed over
        self._left = 0  # body bytes still in the socket
        self._socket: socket.socket | None = None
        self._low_water = 1
        self._waiter: asyncio.Future[None] | None = None
        self._target = memoryview(b"")
        self._got = 0

    def app(self, app: App) -> App:
        """`app`, seeing the extension in its scope."""

        async def with_readinto(
            scope: MutableMapping[str, Any], receive: Receive, send: Send
        ) -> None:
            scope["extensions"] = {
                **(scope.get("extensions") or {}),
                READ_INTO: {"readinto": self.readinto},
            }

            async def receive_counted() -> Message:
                if self._state is _State.HELD:
                    raise RuntimeError(f"receive() while the body is read through {READ_INTO}")
                message = await receive()
                if message["type"] == "http.request":
                    self._delivered += len(message.get("body", b""))
                return message

            async def send_ending_the_body(message: Message) -> None:
                if message["type"] == "http.response.start":
                    self.stop()
                await send(message)

            try:
                await app(scope, receive_counted, send_ending_the_body)
            finally:
                self.stop()

        return with_readinto

    async def readinto(self, buffer: memoryview) -> int:
        if self._waiter is not None:
            raise RuntimeError(f"{READ_INTO}: one read at a time")
        if self._state is _State.UNUSED:
            self._take()
        if self._state is _State.FAILED:
            raise self._failure()
        if self._state is _State.LEFT:
            raise RuntimeError(f"{READ_INTO} after the response started")
        filled = min(len(buffer), len(self._early))
        if filled:
            buffer[:filled] = self._early[:filled]
            self._early = self._early[filled:]
        wanted = min(len(buffer) - filled, self._left)
        if wanted:
            filled += await self._receive(buffer[filled : filled + wanted])
        if self._state is _State.HELD and not self._left:
            self._give_back(_State.ENDED)
        return filled

    def stop(self) -> None:
        """The application reads no more of the body (its response starts, or it ended)."""
        if self._state is _State.HELD:
            self._give_back(_State.LEFT)

    def connection_lost(self) -> None:
        """The protocol's connection went away while the reader held its input."""
        self._fail(abort=True)

    def input_stolen(self) -> None:
        """The transport read bytes that were the reader's: the body is lost."""
        self._fail(abort=True)

    # -- steps -----------------------------------------------------------------

    def _take(self) -> None:
        """Take the body bytes the parser has, and the connection's input if it has
        not seen the whole body."""
        cycle = self._cycle
        if cycle.disconnected:
            self._state = _State.FAILED
            return
        if cycle.response_started:
            self._state = _State.LEFT
            return
        if cycle.waiting_for_100_continue and not cycle.transport.is_closing():
            cycle.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            cycle.waiting_for_100_continue = False
        early, cycle.body = cycle.body, bytearray()
        self._early = memoryview(early)
        if not cycle.more_body:
            self._state = _State.ENDED
            return
        if self._connection.cycle is not cycle:
            raise RuntimeError(f"{READ_INTO}: the parser is past this request's body")
        self._left = self._length - self._delivered - len(early)
        if self._left <= 0:
            raise RuntimeError(f"{READ_INTO}: the parser has more body than Content-Length")
        raw = self._connection.transport.get_extra_info("socket")
        self._socket = socket.socket(raw.family, raw.type, raw.proto, os.dup(raw.fileno()))
        self._socket.setblocking(False)
        self._connection.hold_input(self)
        self._state = _State.HELD

    async def _receive(self, view: memoryview) -> int:
        """All of `view`, from the socket: what it has now, then what arrives."""
        self._target, self._got = view, 0
        self._receive_ready()
        if self._got == len(view) or self._state is not _State.HELD:
            return self._finish_receiving()
        assert self._socket is not None
        descriptor = self._socket.fileno()
        loop = self._connection.loop
        self._waiter = loop.create_future()
        loop.add_reader(descriptor, self._receive_ready)
        if self._idle_timeout is not None:
            self._idle_since = loop.time()
            self._timer = loop.call_later(self._idle_timeout, self._check_idle)
        try:
            await self._waiter
        finally:
            self._waiter = None
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            if self._socket is not None:
                loop.remove_reader(descriptor)
        return self._finish_receiving()

    def _check_idle(self) -> None:
        """The idle timer: fail the body if no bytes came for the whole timeout."""
        self._timer = None
        if self._waiter is None or self._idle_timeout is None:
            return
        loop = self._connection.loop
        left = self._idle_since + self._idle_timeout - loop.time()
        if left > 0:
            self._timer = loop.call_later(left, self._check_idle)
            return
        self._timed_out = True
        self._connection.body_stalled(self._cycle)
        self._fail(abort=True)

    def _failure(self) -> OSError:
        if self._timed_out:
            return TimeoutError(f"no request body bytes for {self._idle_timeout} s")
        return ConnectionResetError("the connection ended before the request body")

    def _finish_receiving(self) -> int:
        got, self._target, self._got = self._got, memoryview(b""), 0
        if self._state is _State.FAILED:
            raise self._failure()
        if self._state is _State.LEFT:
            raise RuntimeError(f"{READ_INTO}: the response started during the read")
        return got

    def _receive_ready(self) -> None:
        """Receive what the socket has into the target, without waiting."""
        if self._socket is None:
            return
        while self._got < len(self._target):
            try:
                count = self._socket.recv_into(self._target[self._got :])
            except (BlockingIOError, InterruptedError):
                self._wake_at(len(self._target) - self._got)
                return
            except OSError:
                self._fail(abort=True)
                return
            if not count:
                self._fail(abort=False)  # the client closed its side mid-body
                return
            self._got += count
            self._left -= count
            self._idle_since = self._connection.loop.time()
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def _wake_at(self, size: int) -> None:
        """Be woken up once `size` bytes can be received, or WAKE_AT."""
        low_water = max(1, min(WAKE_AT, size))
        if low_water == self._low_water or self._socket is None:
            return
        try:
            self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_RCVLOWAT, low_water)
        except OSError:
            self._fail(abort=True)
            return
        self._low_water = low_water

    def _fail(self, abort: bool) -> None:
        """The body cannot be completed: the connection ends, as after a disconnect."""
        if self._state is not _State.HELD:
            return
        self._give_back(_State.FAILED)
        self._cycle.disconnected = True
        if abort:
            self._connection.transport.abort()
        else:
            self._connection.transport.close()

    def _give_back(self, state: _State) -> None:
        """Hand the connection's input back to the protocol."""
        self._state = state
        if self._socket is not None:
            if self._low_water != 1:
                # Failing means the connection is gone: nothing will read it again.
                with contextlib.suppress(OSError):
                    self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_RCVLOWAT, 1)
            if self._waiter is not None:
                self._connection.loop.remove_reader(self._socket.fileno())
            self._socket.close()
            self._socket = None
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)
        if state is _State.ENDED:
            self._cycle.more_body = False
            self._cycle.message_event.set()
        self._connection.release_input(self._left)


class ParsedBodyReader:
    """The extension for a request whose body the parser decodes (chunked framing):
    the parser's body pieces are copied straight into the application's buffer.

    uvicorn would append each piece to the request's `bytearray`, copy that into a
    `bytes` for `receive()`, and the application would copy it once more; here a
    piece lands in the waiting buffer at once, and `readinto` wakes up only once the
    buffer is full, the body has ended or the client has gone. Pieces that come while
    no read waits (the application is busy) stay in the request's `bytearray`, with
    uvicorn's own flow control, and are taken from there first. The framing, its
    limits and everything after the body stay the parser's, as without the extension:
    when the application stops reading, the rest of the body is discarded as uvicorn
    discards it.
    """

    def __init__(
        self,
        connection: Connection,
        cycle: RequestResponseCycle,
        idle_timeout: float | None = None,
    ) -> None:
        self._connection = connection
        self._cycle = cycle
        self._idle_timeout = idle_timeout
        self._target = memoryview(b"")  # the waiting read's buffer, while it waits
        self._got = 0  # bytes put into it

    def app(self, app: App) -> App:
        """`app`, seeing the extension in its scope."""

        async def with_readinto(
            scope: MutableMapping[str, Any], receive: Receive, send: Send
        ) -> None:
            scope["extensions"] = {
                **(scope.get("extensions") or {}),
                READ_INTO: {"readinto": self.readinto},
            }
            await app(scope, receive, send)

        return with_readinto

    def take(self, piece: bytes) -> bytes:
        """A body piece from the parser: what the waiting buffer has room for goes
        into it; the rest is returned, for the request's `bytearray`."""
        room = len(self._target) - self._got
        if room <= 0 or self._connection.cycle is not self._cycle:
            return piece
        count = min(room, len(piece))
        self._target[self._got : self._got + count] = piece[:count]
        self._got += count
        if self._got == len(self._target):
            self._cycle.message_event.set()
        return piece[count:]

    async def readinto(self, buffer: memoryview) -> int:
        if self._target:
            raise RuntimeError(f"{READ_INTO}: one read at a time")
        cycle = self._cycle
        if cycle.waiting_for_100_continue and not cycle.transport.is_closing():
            cycle.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            cycle.waiting_for_100_continue = False
        filled = 0
        while filled < len(buffer):
            if cycle.body:
                count = min(len(buffer) - filled, len(cycle.body))
                buffer[filled : filled + count] = cycle.body[:count]
                del cycle.body[:count]  # from the front: no move of the rest
                filled += count
                continue
            if not cycle.more_body:
                break
            if cycle.disconnected:
                raise ConnectionResetError("the connection ended before the request body")
            if cycle.response_started:
                raise RuntimeError(f"{READ_INTO} after the response started")
            self._target, self._got = buffer[filled:], 0
            try:
                await self._wait()
            finally:
                filled += self._got
                self._target, self._got = memoryview(b""), 0
        return filled

    async def _wait(self) -> None:
        """Until the target is full, the body ends or the client goes; TimeoutError
        after `idle_timeout` seconds without a byte."""
        cycle = self._cycle
        cycle.message_event.clear()
        self._connection.flow.resume_reading()  # as uvicorn's receive() does
        while not cycle.message_event.is_set():
            got = self._got
            try:
                async with asyncio.timeout(self._idle_timeout):
                    await cycle.message_event.wait()
            except TimeoutError:
                if self._got != got:
                    continue  # bytes came, not enough to fill the buffer yet
                self._connection.body_stalled(cycle)
                cycle.disconnected = True
                self._connection.transport.abort()
                raise
        cycle.message_event.clear()
