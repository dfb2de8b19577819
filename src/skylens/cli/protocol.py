"""uvicorn's httptools protocol, with three changes.

It speaks the ASGI zero-copy send extension on plain-TCP connections (`zerocopy.py`),
so the image download hands files to the kernel instead of streaming them through
Python.

On the same connections it lets the application receive a body framed by
Content-Length straight into its own buffers (`readinto.py`), so the image upload
skips uvicorn's copies of every chunk. While the application does, the protocol reads
nothing; afterwards it skips what the application left unread of the body and parses
the next request with a fresh parser.

It answers an unknown HTTP method 501, as Glance does. The httptools parser
rejects methods it does not know (e.g. `FOO`) before any application code runs,
and uvicorn answers those 400. Glance answers 501 Not Implemented for any method
it does not implement, so this protocol does too. Nothing about the request is
known at that point (not even its `Accept`), so the body is webob's plain-text
format.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import uuid
from typing import Any

import httptools
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle

from skylens.cli.readinto import BodyReader, can_receive_into, content_length
from skylens.cli.zerocopy import FileSender, can_send_files

_MESSAGE = "The request method is not implemented for this server."


class GlanceHttpToolsProtocol(HttpToolsProtocol):
    _files: FileSender | None = None
    _receives_into = False
    _body_reader: BodyReader | None = None  # holds the input: the parser gets nothing
    _unread = 0  # body bytes to skip before parsing again

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if can_send_files(transport):
            self._files = FileSender(self.loop, transport)
        self._receives_into = can_receive_into(transport)

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        if self._files is not None:
            self._files.connection_lost()
        if self._body_reader is not None:
            self._body_reader.connection_lost()

    def data_received(self, data: bytes) -> None:
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
        super().data_received(data)

    def _start_asgi_task(self, cycle: RequestResponseCycle, app: Any) -> None:
        # uvicorn starts every request's task here, pipelined ones included.
        if self._files is not None:
            app = self._files.app(app, cycle)
        if self._receives_into:
            length = content_length(cycle.scope["headers"])
            if length:
                app = BodyReader(self, cycle, length).app(app)
        super()._start_asgi_task(cycle, app)

    # -- the body reader's connection (readinto.Connection) -----------------------

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
        if not self.transport.is_closing():
            self.flow.resume_reading()

    def send_400_response(self, msg: str) -> None:
        # uvicorn calls this from its `except HttpParserError` block.
        if not isinstance(sys.exception(), httptools.HttpParserInvalidMethodError):
            super().send_400_response(msg)
            return
        body = f"501 Not Implemented\n\n{_MESSAGE}\n\n   ".encode()
        content = [b"HTTP/1.1 501 Not Implemented\r\n"]
        for name, value in self.server_state.default_headers:
            content.extend([name, b": ", value, b"\r\n"])
        content.extend(
            [
                b"content-type: text/plain; charset=UTF-8\r\n",
                b"content-length: " + str(len(body)).encode("ascii") + b"\r\n",
                b"x-openstack-request-id: req-" + str(uuid.uuid4()).encode("ascii") + b"\r\n",
                b"connection: close\r\n",
                b"\r\n",
                body,
            ]
        )
        self.transport.write(b"".join(content))
        self.transport.close()
