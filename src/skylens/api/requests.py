"""Reading requests the way Glance does, with its error messages, and within bounds.

A JSON body is read only up to `RequestLimits.body_bytes` (oslo.middleware's
`max_request_body_size`, 112 KiB by default): a Content-Length above it is refused
before a byte is read, and a chunked body as soon as the bytes received pass it, so
no request holds more than that in memory. Every string a client sends (path, query,
JSON keys and values) is refused if it holds a NUL character, which PostgreSQL cannot
store and no identifier, filter or property needs.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from skylens.domain.errors import InvalidRequest, LimitExceeded, SkylensError

DEFAULT_MAX_BODY_BYTES = 114688  # oslo.middleware's default max_request_body_size
NUL = "\x00"


@dataclasses.dataclass(frozen=True, slots=True)
class RequestLimits:
    """Bounds on what one request may ask of the service (docs/security.md#limits)."""

    body_bytes: int = DEFAULT_MAX_BODY_BYTES  # JSON bodies; image data has image_size_cap
    patch_operations: int = 256  # operations in one PATCH; negative: unlimited


class RequestTooLarge(LimitExceeded):
    """A JSON body over the limit, in oslo.middleware's sizelimit words."""


class NulCharacter(InvalidRequest):
    def __init__(self, where: str) -> None:
        super().__init__(f"The request {where} can't contain NUL characters.")


def install_limits(app: Any, limits: RequestLimits) -> None:
    """Make `limits` the ones every request to the Starlette `app` is read with."""
    app.state.request_limits = limits


def request_limits(request: Request) -> RequestLimits:
    limits: RequestLimits = request.app.state.request_limits
    return limits


async def read_body(request: Request) -> bytes:
    """The whole body, refused with 413 as soon as it is known to be too large."""
    limit = request_limits(request).body_bytes
    declared = request.headers.get("content-length", "").strip()
    if declared.isdigit() and (len(declared) > 19 or int(declared) > limit):
        raise RequestTooLarge(f"Request is too large. Larger than max_request_body_size ({limit}).")
    chunks = []
    received = 0
    async for chunk in request.stream():
        received += len(chunk)
        if received > limit:
            raise RequestTooLarge(f"Request is too large. Larger than {limit}.")
        chunks.append(chunk)
    return b"".join(chunks)


def parse_json(body: bytes, malformed: str = "Malformed JSON in request body.") -> Any:
    """The JSON document in `body`; 400 with `malformed` if it is not JSON, and
    400 if any string in it (key or value) holds a NUL character."""
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise InvalidRequest(malformed) from None
    # JSON can only carry NUL escaped, so a body without the escape needs no walk.
    if b"\\u0000" in body and _holds_nul(document):
        raise NulCharacter("body")
    return document


def _holds_nul(value: Any) -> bool:
    if isinstance(value, str):
        return NUL in value
    if isinstance(value, dict):
        return any(NUL in key or _holds_nul(item) for key, item in value.items())
    if isinstance(value, list):
        return any(_holds_nul(item) for item in value)
    return False


async def read_json(request: Request) -> Any:
    body = await read_body(request)
    if not body:
        raise InvalidRequest("Body expected in request.")
    document = parse_json(body)
    if not isinstance(document, dict | list):
        raise InvalidRequest("Unexpected body type. Expected list/dict.")
    return document


async def reject_body(request: Request) -> None:
    if await read_body(request):
        raise InvalidRequest("A body is not expected with this request.")


ErrorHandler = Callable[[Request, Exception], Awaitable[Response]]


class RefuseNul:
    """Answer 400 (rendered by `handle_error`, the surface's own error handler) to a
    request whose path or query holds a NUL character, before any route sees it."""

    def __init__(self, app: ASGIApp, handle_error: ErrorHandler) -> None:
        self.app = app
        self.handle_error = handle_error

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            error = _nul_in_url(scope)
            if error is not None:
                response = await self.handle_error(Request(scope, receive), error)
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


def _nul_in_url(scope: Scope) -> SkylensError | None:
    query: bytes = scope.get("query_string", b"")
    if NUL in scope.get("path", "") or b"%00" in query or b"\x00" in query:
        return NulCharacter("URL")
    return None


def base_url(request: Request, public_endpoint: str) -> str:
    """The service's absolute base URL, as clients reach it."""
    if public_endpoint:
        return public_endpoint.rstrip("/")
    root = request.scope.get("root_path", "")
    return f"{request.url.scheme}://{request.url.netloc}{root}".rstrip("/")
