"""uvicorn's httptools protocol, with two changes.

It speaks the ASGI zero-copy send extension on plain-TCP connections (`zerocopy.py`),
so the image download hands files to the kernel instead of streaming them through
Python.

It answers an unknown HTTP method 501, as Glance does. The httptools parser
rejects methods it does not know (e.g. `FOO`) before any application code runs,
and uvicorn answers those 400. Glance answers 501 Not Implemented for any method
it does not implement, so this protocol does too. Nothing about the request is
known at that point (not even its `Accept`), so the body is webob's plain-text
format.
"""

from __future__ import annotations

import asyncio
import sys
import uuid
from typing import Any

import httptools
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle

from skylens.cli.zerocopy import FileSender, can_send_files

_MESSAGE = "The request method is not implemented for this server."


class GlanceHttpToolsProtocol(HttpToolsProtocol):
    _files: FileSender | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if can_send_files(transport):
            self._files = FileSender(self.loop, transport)

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        if self._files is not None:
            self._files.connection_lost()

    def _start_asgi_task(self, cycle: RequestResponseCycle, app: Any) -> None:
        # uvicorn starts every request's task here, pipelined ones included.
        if self._files is not None:
            app = self._files.app(app, cycle)
        super()._start_asgi_task(cycle, app)

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
