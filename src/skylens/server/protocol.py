"""uvicorn's httptools protocol, bounded, with Skylens's fast paths.

Bounds (each a `[server]` option, see `ServerOptions`):

* Request heads: the request line, each header line, all headers and their number
  are capped (`heads.py`); past a cap the answer is 414 (request line) or 431 and the
  connection closes. Memory stays bounded while a head arrives, however long it is.
* Time: a connection must complete each request head within `header_timeout_seconds`
  of its first byte (or of connecting), and a request whose body is being read must
  not go `body_read_timeout_seconds` without a byte; otherwise it is closed (a head
  started gets 408 first; a stalled body logs one line).
* Connections: past `max_connections` per worker, 503 and close
  (`connections.py`).

Fast paths (off with `fast_paths = false`), on plain-TCP connections:

* the ASGI zero-copy send extension (`zerocopy.py`): the image download hands files
  to the kernel instead of streaming them through Python;
* a body framed by Content-Length received straight into the application's buffers
  (`readinto.py`): the image upload skips uvicorn's copies of every chunk. While the
  application does, the protocol reads nothing; afterwards it skips what the
  application left unread of the body and parses the next request with a fresh
  parser.
* a chunked body's pieces, as the parser decodes them, copied straight into the
  application's waiting buffer (`readinto.py`, `ParsedBodyReader`).

And, as Glance does, an unknown HTTP method is answered 501. The httptools parser
rejects methods it does not know (e.g. `FOO`) before any application code runs, and
uvicorn answers those 400. Nothing about the request is known at that point (not
even its `Accept`), so the body is webob's plain-text format.

All of this leans on uvicorn's internals; `compat.py` checks them at start-up.
"""

from __future__ import annotations

import asyncio
import contextlib
import http
import sys
import uuid
from collections.abc import MutableMapping
from typing import Any

import httptools
from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle
from uvicorn.server import ServerState

from skylens.asgi_extensions import on_plain_socket
from skylens.server.connections import (
    REFUSED_GRACE_SECONDS,
    RETRY_AFTER_SECONDS,
    Admission,
    ConnectionCap,
)
from skylens.server.heads import HeadMeter
from skylens.server.options import ServerOptions
from skylens.server.readinto import (
    App,
    BodyReader,
    Message,
    ParsedBodyReader,
    Receive,
    Send,
    chunked,
    content_length,
)
from skylens.server.zerocopy import FileSender

LINGER_SECONDS = 2.0
_NOT_IMPLEMENTED = "The request method is not implemented for this server."
_MESSAGES = {
    http.HTTPStatus.REQUEST_TIMEOUT: "The client did not send its request in time.",
    http.HTTPStatus.REQUEST_URI_TOO_LONG: "The request line is too long for this server.",
    http.HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE: "The request headers are too large "
    "for this server.",
    http.HTTPStatus.SERVICE_UNAVAILABLE: "The server is serving as many connections as it "
    "may. Please try again later.",
}


class GlanceHttpToolsProtocol(HttpToolsProtocol):
    _files: FileSender | None = None
    _receives_into = False
    _body_reader: BodyReader | None = None  # holds the input: the parser gets nothing
    _parsed_reader: ParsedBodyReader | None = None  # takes the parser's body pieces
    _unread = 0  # body bytes to skip before parsing again

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
        *,
        options: ServerOptions | None = None,
        cap: ConnectionCap | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.options = options or ServerOptions()
        self._cap = cap or ConnectionCap(self.options.max_connections)
        self._head = HeadMeter(self.options)
        self._reading_head = True  # the bytes arriving are (part of) a request head
        self._head_begun = False  # the parser has seen a first byte of that head
        self._head_timer: asyncio.TimerHandle | None = None
        self._answered = False  # refused with a response of our own: ignore the rest
        self._busy = False  # past the connection cap: the head gets 503
        self._evicted = False  # closed to make room under the cap

    # -- the connection ------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._cap.wait_for_head(self)
        # Connections already being closed to make room hold no place any more.
        open_connections = len(self.connections) - self._cap.closing
        if open_connections > self._cap.cap and self._evict_longest_waiting():
            self._cap.evicted(open_connections, self.logger)
            open_connections -= 1  # the evicted one is closing
        admission = self._cap.admit(open_connections, self.logger)
        if admission is Admission.DROP:
            self._answered = True
            transport.abort()
            return
        self._busy = admission is Admission.ANSWER_BUSY
        grace = REFUSED_GRACE_SECONDS if self._busy else self.options.header_timeout_seconds
        self._head_timer = self.loop.call_later(grace, self._head_timed_out)
        if self.options.fast_paths and not self._busy and on_plain_socket(transport):
            self._files = FileSender(self.loop, transport)
            self._receives_into = True

    def connection_lost(self, exc: Exception | None) -> None:
        self._cap.serving(self)
        if self._evicted:
            self._cap.closing -= 1
        self._stop_head_timer()
        super().connection_lost(exc)
        if self._files is not None:
            self._files.connection_lost()
        if self._body_reader is not None:
            self._body_reader.connection_lost()

    def data_received(self, data: bytes) -> None:
        if self._answered:
            return  # refused: the connection is closing
        if self._body_reader is not None:
            # Reading was paused for the reader; bytes here are its, and now lost.
            self._body_reader.input_stolen()
            return
        if self._unread:
            if len(data) <= self._unread:
                self._unread -= len(data)
                self._unset_keepalive_if_required()
                return
            data, self._unread = data[self._unread :], 0
        if self._reading_head:
            self._head.on_received(len(data))
        super().data_received(data)
        if self._reading_head and not self._answered:
            self._head.check_received()
        if self._head.refusal is not None and not self._answered:
            self.logger.info(
                "%srefused %s: %s", self._peer(), self._head.refusal.phrase, self._head.why
            )
            self._answer(self._head.refusal)

    # -- parser callbacks ----------------------------------------------------------

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._head.start()
        self._reading_head = self._head_begun = True
        if self._head_timer is None and not self._answered:
            self._head_timer = self.loop.call_later(
                self.options.header_timeout_seconds, self._head_timed_out
            )

    def on_url(self, url: bytes) -> None:
        self._head.on_url(len(url))
        if self._head.refusal is None:
            super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._head.on_header(name, value)
        if self._head.refusal is None:
            super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._cap.serving(self)
        self._reading_head = self._head_begun = False
        self._stop_head_timer()
        if self._head.refusal is not None or self._answered:
            return
        if self._busy:
            self._answer(http.HTTPStatus.SERVICE_UNAVAILABLE, retry_after=True)
            return
        super().on_headers_complete()

    def on_body(self, body: bytes) -> None:
        if self._head.refusal is not None or self._answered:
            return
        if self._parsed_reader is not None:
            body = self._parsed_reader.take(body)
            if not body:
                return
        super().on_body(body)

    def on_message_complete(self) -> None:
        if self._head.refusal is None and not self._answered:
            super().on_message_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.pipeline:
            self._cap.wait_for_head(self)  # kept alive, idle

    def _evict_longest_waiting(self) -> bool:
        """Close the connection of this worker that has waited longest for a request
        head; false if every other connection is serving a request."""
        oldest = self._cap.longest_waiting(besides=self)
        if not isinstance(oldest, GlanceHttpToolsProtocol):
            return False
        self._cap.serving(oldest)
        oldest._answered = oldest._evicted = True  # its bytes are ignored from now on
        self._cap.closing += 1
        oldest.transport.abort()
        return True

    def _start_asgi_task(self, cycle: RequestResponseCycle, app: Any) -> None:
        # uvicorn starts every request's task here, pipelined ones included.
        if self._files is not None:
            app = self._files.app(app, cycle)
        self._parsed_reader = None
        if self._receives_into:
            headers = cycle.scope["headers"]
            length = content_length(headers)
            timeout = self.options.body_read_timeout_seconds
            if length:
                app = BodyReader(self, cycle, length, timeout).app(app)
            elif cycle.more_body and chunked(headers):
                self._parsed_reader = ParsedBodyReader(self, cycle, timeout)
                app = self._parsed_reader.app(app)
        deadline: Any = self._body_deadline(cycle, app)  # uvicorn's ASGI types are narrower
        super()._start_asgi_task(cycle, deadline)

    # -- time limits ---------------------------------------------------------------

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self.transport.is_closing():
            return
        if (self.cycle is not None and not self.cycle.response_complete) or self.pipeline:
            # A request is being served (a pipelined head waits behind it): not idle.
            self._head_timer = self.loop.call_later(
                self.options.header_timeout_seconds, self._head_timed_out
            )
            return
        if self._head_begun:
            self._answer(http.HTTPStatus.REQUEST_TIMEOUT)
        else:
            self._answered = True
            self.transport.close()

    def _stop_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _body_deadline(self, cycle: RequestResponseCycle, app: App) -> App:
        """`app`, whose `receive()` gives up after the body read timeout without bytes."""
        timeout = self.options.body_read_timeout_seconds

        async def with_deadline(
            scope: MutableMapping[str, Any], receive: Receive, send: Send
        ) -> None:
            async def receive_in_time() -> Message:
                if not cycle.more_body or cycle.response_started or cycle.disconnected:
                    return await receive()  # e.g. waiting for a disconnect: no deadline
                try:
                    async with asyncio.timeout(timeout):
                        return await receive()
                except TimeoutError:
                    self.body_stalled(cycle)
                    cycle.disconnected = True
                    self.transport.abort()
                    return {"type": "http.disconnect"}

            await app(scope, receive_in_time, send)

        return with_deadline

    def body_stalled(self, cycle: RequestResponseCycle) -> None:
        self.logger.warning(
            "%sclosing the connection: no request body bytes for %g s during %s %s "
            "(server.body_read_timeout_seconds)",
            self._peer(),
            self.options.body_read_timeout_seconds,
            cycle.scope["method"],
            cycle.scope["path"],
        )

    # -- the body reader's connection (readinto.Connection) ------------------------

    def hold_input(self, reader: BodyReader) -> None:
        self._body_reader = reader
        self.flow.pause_reading()

    def release_input(self, unread: int) -> None:
        self._body_reader = None
        self._unread = unread
        # The old parser is mid-body, short of the bytes it never saw.
        self.parser = httptools.HttpRequestParser(self)
        with contextlib.suppress(AttributeError):  # httptools < 0.6.3
            self.parser.set_dangerous_leniencies(lenient_data_after_close=True)
        self._reading_head, self._head_begun = True, False
        self._head.start()
        if not self.transport.is_closing():
            self.flow.resume_reading()

    # -- answers of our own --------------------------------------------------------

    def send_400_response(self, msg: str) -> None:
        # uvicorn calls this from its `except HttpParserError` block.
        if not isinstance(sys.exception(), httptools.HttpParserInvalidMethodError):
            super().send_400_response(msg)
            return
        self._answer(http.HTTPStatus.NOT_IMPLEMENTED, _NOT_IMPLEMENTED, request_id=True)

    def _answer(
        self,
        status: http.HTTPStatus,
        message: str | None = None,
        *,
        request_id: bool = False,
        retry_after: bool = False,
    ) -> None:
        """Answer in webob's plain-text format and close the connection: no request
        (or no more of it) will be read.

        The close lingers: the answer goes out with a FIN, what the client still
        sends is read and dropped for LINGER_SECONDS, and only then is the socket
        closed. Closing at once with unread bytes would send a reset, which can make
        the client's system drop the answer before the client reads it."""
        self._answered = True
        self._stop_head_timer()
        if self.transport.is_closing():
            return
        if self.cycle is not None and not self.cycle.response_complete:
            # A pipelined head, refused while an earlier response is being sent: an
            # answer now would land inside that response.
            self.transport.abort()
            return
        message = message or _MESSAGES[status]
        body = f"{status.value} {status.phrase}\n\n{message}\n\n   ".encode()
        content = [f"HTTP/1.1 {status.value} {status.phrase}\r\n".encode()]
        for name, value in self.server_state.default_headers:
            content.extend([name, b": ", value, b"\r\n"])
        if request_id:
            content.append(b"x-openstack-request-id: req-%s\r\n" % str(uuid.uuid4()).encode())
        if retry_after:
            content.append(b"retry-after: %d\r\n" % RETRY_AFTER_SECONDS)
        content.extend(
            [
                b"content-type: text/plain; charset=UTF-8\r\n",
                b"content-length: %d\r\n" % len(body),
                b"connection: close\r\n",
                b"\r\n",
                body,
            ]
        )
        self.transport.write(b"".join(content))
        if not self.transport.can_write_eof():
            self.transport.close()
            return
        self.transport.write_eof()
        self.loop.call_later(LINGER_SECONDS, self._end_lingering)

    def _end_lingering(self) -> None:
        if not self.transport.is_closing():
            self.transport.close()

    def _peer(self) -> str:
        return f"{self.client[0]}:{self.client[1]} - " if self.client else ""
