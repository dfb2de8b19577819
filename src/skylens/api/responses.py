"""Response helpers shared by every API surface."""

from __future__ import annotations

import datetime as dt
from typing import Any

import orjson
from starlette.responses import Response

JSON = "application/json"


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type=JSON, headers=headers)


def no_content(headers: dict[str, str] | None = None) -> Response:
    """Glance's 204s carry an HTML content type and an explicit zero length."""
    response = Response(b"", status_code=204, headers=headers)
    response.headers["Content-Type"] = "text/html; charset=UTF-8"
    response.headers["Content-Length"] = "0"
    return response


def timestamp(value: dt.datetime) -> str:
    """`2026-11-22T16:07:00Z` from a naive UTC datetime (isoformat: 7x strftime's speed)."""
    return f"{value.isoformat(timespec='seconds')}Z"
