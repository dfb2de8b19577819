"""The two ASGI extensions `skylens serve` offers, defined once for both sides.

The server (`skylens.server`) offers them and the API (`skylens.api.request_body`,
`skylens.api.sendfile`) uses them when they are offered; neither side imports the
other, both import this. An extension is offered by naming it in
`scope["extensions"]`:

* `READ_INTO`, `{"readinto": readinto}`: `count = await readinto(buffer)` fills the
  writable memoryview with the next bytes of the request body (fewer only when the
  body ends; 0 once it has) and raises OSError when the client goes away first.
  Offered on plain TCP for bodies framed by Content-Length (received with the
  socket's `recv_into`) and for chunked ones (the parser's pieces copied straight in).
* `ZERO_COPY_SEND`, `{}`: the standard ASGI "Zero Copy Send" extension; the message
  `{"type": ZERO_COPY_SEND, "file", "offset", "count", "more_body"}` sends part of a
  file with sendfile(2). Offered on plain TCP.

Both need the socket itself, unencrypted: `on_plain_socket` is that check.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, MutableMapping
from typing import Any

READ_INTO = "skylens.http.request.readinto"
ZERO_COPY_SEND = "http.response.zerocopysend"


def offered(scope: MutableMapping[str, Any], name: str) -> Mapping[str, Any] | None:
    """The extension's entry in the request's scope, when its server offers it."""
    extension: Mapping[str, Any] | None = (scope.get("extensions") or {}).get(name)
    return extension


def on_plain_socket(transport: asyncio.BaseTransport) -> bool:
    """Whether the connection is a socket the server can use directly (not TLS, which
    encrypts in user space)."""
    return (
        transport.get_extra_info("socket") is not None
        and transport.get_extra_info("sslcontext") is None
    )
