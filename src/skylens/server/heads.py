"""Bounds on request heads (request line and headers), measured as they arrive.

The httptools parser keeps a header it has not seen the end of in memory, however
long it grows, and calls back only once it has ended: a client sending a header that
never ends would make it grow without bound. So a head is measured twice: by the
bytes the connection received while the head was being read (before the parser sees
them, which bounds memory whatever the parser keeps), and by the parser's callbacks
(exact, to name the limit that was passed).

Glance's server (eventlet) allows 8 KiB for the request line, 16 KiB per header line
(Glance's `max_header_line`, raised for large Keystone tokens) and 64 KiB for all
headers; Python's http.client, gunicorn and Apache allow 100 header fields. The
defaults in `ServerOptions` are those, except the request line: 16 KiB like a header
line, since image lists carry their filters in the query string.
"""

from __future__ import annotations

import dataclasses
import http

from skylens.server.options import ServerOptions

URI_TOO_LONG = http.HTTPStatus.REQUEST_URI_TOO_LONG  # 414
HEADERS_TOO_LARGE = http.HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE  # 431


@dataclasses.dataclass
class HeadMeter:
    """One request head's sizes; `refusal` is the status it earned, if any."""

    options: ServerOptions
    received: int = 0  # bytes received while reading the head (an upper bound)
    url: int = 0
    headers: int = 0
    header_bytes: int = 0
    refusal: http.HTTPStatus | None = None
    why: str = ""

    def start(self) -> None:
        """A new head begins."""
        self.received = self.url = self.headers = self.header_bytes = 0

    def on_received(self, count: int) -> None:
        """`count` more bytes arrived while the head was incomplete."""
        self.received += count

    def check_received(self) -> None:
        """After the parser saw the bytes: is the unfinished head already too big?"""
        if self.received > self.options.max_head_bytes:
            self._refuse(HEADERS_TOO_LARGE, f"a request head past {self.received} bytes")

    def on_url(self, count: int) -> None:
        self.url += count
        if self.url > self.options.max_request_line_bytes:
            self._refuse(URI_TOO_LONG, f"a request target of {self.url}+ bytes")

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers += 1
        line = len(name) + len(value) + 4  # "name: value\r\n", give or take spaces
        self.header_bytes += line
        if line > self.options.max_header_line_bytes:
            self._refuse(HEADERS_TOO_LARGE, f"a header line of {line} bytes")
        elif self.headers > self.options.max_header_count:
            self._refuse(HEADERS_TOO_LARGE, f"more than {self.options.max_header_count} headers")
        elif self.header_bytes > self.options.max_header_bytes:
            self._refuse(HEADERS_TOO_LARGE, f"headers past {self.header_bytes} bytes")

    def _refuse(self, status: http.HTTPStatus, why: str) -> None:
        if self.refusal is None:
            self.refusal, self.why = status, why
