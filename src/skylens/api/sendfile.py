"""Responses the server sends straight from a file: the ASGI zero-copy send extension.

A server that can hand a file to the kernel (sendfile(2)) says so by offering
`ZERO_COPY_SEND` (`skylens.asgi_extensions`); `skylens serve` does (see
`skylens.server.zerocopy`), other ASGI servers and test clients may not, and then the
handler streams the bytes itself. This module knows nothing of any server: only the
extension's messages.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import BinaryIO

from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from skylens.asgi_extensions import ZERO_COPY_SEND, offered


def server_sends_files(scope: Scope) -> bool:
    """Whether the server serving this request takes `http.response.zerocopysend`."""
    return offered(scope, ZERO_COPY_SEND) is not None


class FileRangeResponse(Response):
    """Bytes [start, end) of an open file, sent by the server with zero copy.

    The response owns the file from here on and closes it once the server has sent
    the bytes, or failed to, whatever happens. Headers must carry the Content-Length
    (`end - start`), so the server frames the body by length.
    """

    def __init__(
        self,
        file: BinaryIO,
        start: int,
        end: int,
        status_code: int,
        headers: Mapping[str, str],
    ) -> None:
        self.file = file
        self.start = start
        self.end = end
        super().__init__(status_code=status_code, headers=headers)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await send(
                {
                    "type": "http.response.start",
                    "status": self.status_code,
                    "headers": self.raw_headers,
                }
            )
            await send(
                {
                    "type": ZERO_COPY_SEND,
                    "file": self.file,
                    "offset": self.start,
                    "count": self.end - self.start,
                    "more_body": False,
                }
            )
        finally:
            self.file.close()
