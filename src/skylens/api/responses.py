"""Response helpers shared by every API surface."""

from __future__ import annotations

import datetime as dt
from typing import Any

import orjson
from starlette.responses import Response

JSON = "application/json"


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type=JSON, headers=headers)


def empty(status: int, headers: dict[str, str] | None = None) -> Response:
    """Glance's empty answers (200, 202, 204): an HTML content type and an explicit zero
    length, in Glance's order (Content-Type first), after any headers given."""
    given = dict(headers or {})
    given["Content-Type"] = "text/html; charset=UTF-8"
    given["Content-Length"] = "0"
    return Response(b"", status_code=status, headers=given)


def no_content(headers: dict[str, str] | None = None) -> Response:
    return empty(204, headers)


def timestamp(value: dt.datetime) -> str:
    """`2026-11-22T16:07:00Z` from a naive UTC datetime (isoformat: 7x strftime's speed)."""
    return f"{value.isoformat(timespec='seconds')}Z"
