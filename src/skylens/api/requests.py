"""Reading request bodies the way Glance does, with its error messages."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import Request

from skylens.domain.errors import InvalidRequest


async def read_json(request: Request) -> Any:
    body = await request.body()
    if not body:
        raise InvalidRequest("Body expected in request.")
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise InvalidRequest("Malformed JSON in request body.") from None
    if not isinstance(document, dict | list):
        raise InvalidRequest("Unexpected body type. Expected list/dict.")
    return document


async def reject_body(request: Request) -> None:
    if await request.body():
        raise InvalidRequest("A body is not expected with this request.")


def base_url(request: Request, public_endpoint: str) -> str:
    """The service's absolute base URL, as clients reach it."""
    if public_endpoint:
        return public_endpoint.rstrip("/")
    root = request.scope.get("root_path", "")
    return f"{request.url.scheme}://{request.url.netloc}{root}".rstrip("/")
