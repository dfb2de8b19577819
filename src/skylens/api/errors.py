"""The one place errors become HTTP responses, in Glance's error formats.

Statuses are found by walking the exception's class hierarchy, so a new error
class needs no entry when its parent's status is right.
"""

from __future__ import annotations

import html
from collections.abc import Sequence

from starlette.requests import Request
from starlette.responses import Response

from skylens.api.responses import json_response
from skylens.domain import errors

# webob's reason phrases: clients and logs were written against these.
REASONS = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    406: "Not Acceptable",
    409: "Conflict",
    410: "Gone",
    411: "Length Required",
    413: "Request Entity Too Large",
    415: "Unsupported Media Type",
    416: "Request Range Not Satisfiable",
    500: "Internal Server Error",
    501: "Not Implemented",
    503: "Service Unavailable",
}


class MethodNotAllowed(errors.SkylensError):
    def __init__(self, method: str, allowed: Sequence[str]) -> None:
        super().__init__(f"The method {method} is not allowed for this resource.")
        self.allowed = tuple(allowed)


class MethodNotImplemented(errors.SkylensError):
    """An HTTP method this server does not know at all."""

    def __init__(self, method: str) -> None:
        super().__init__(f"The request method {method} is not implemented for this server.")


class UnsupportedPatchMediaType(errors.UnsupportedMediaType):
    """A PATCH body in a media type other than the json-patch ones `accepted`."""

    def __init__(self, content_type: str, accepted: Sequence[str]) -> None:
        super().__init__(f"The request media type {content_type} is not supported by this server.")
        self.accepted = tuple(accepted)


class RangeNotSatisfiable(errors.SkylensError):
    def __init__(self, size: int) -> None:
        super().__init__("Requested range not satisfiable")
        self.size = size


class RouteNotFound(errors.NotFound):
    def __init__(self) -> None:
        super().__init__("The resource could not be found.")


STATUS_BY_ERROR: dict[type[errors.SkylensError], int] = {
    errors.InvalidRequest: 400,
    errors.NotAuthenticated: 401,
    errors.Forbidden: 403,
    errors.NotFound: 404,
    MethodNotAllowed: 405,
    MethodNotImplemented: 501,
    errors.Conflict: 409,
    errors.StoreAddDisabled: 410,
    errors.LimitExceeded: 413,
    errors.UnsupportedMediaType: 415,
    RangeNotSatisfiable: 416,
    errors.StorageUnavailable: 503,
    errors.StatementTimedOut: 503,
    errors.ServerBusy: 503,
    errors.IdentityUnavailable: 503,
    errors.DatabaseUnavailable: 503,
    errors.SkylensError: 500,
}
# Errors Glance reports as the detail under webob's generic explanation.
DETAIL_STYLE: tuple[type[errors.SkylensError], ...] = (
    errors.PropertyNotFound,
    errors.PropertyExists,
    errors.PropertyNotRemovable,
    errors.OwnerChangeForbidden,
    errors.ForeignOwnerForbidden,
    errors.ReservedPropertyName,
)
GENERIC_EXPLANATIONS = {
    400: "The server could not comply with the request since it is either malformed or "
    "otherwise incorrect.",
    403: "Access was denied to this resource.",
    404: "The resource could not be found.",
    409: "There was a conflict when trying to complete your request.",
    413: "The body of your request was too large for this server.",
}


# Seconds a client is told to wait when the database is away: PostgreSQL restarts
# and fail-overs are over in seconds, and the pool reconnects on the next request.
DATABASE_RETRY_AFTER = "2"


def status_of(error: errors.SkylensError) -> int:
    for cls in type(error).__mro__:
        if cls in STATUS_BY_ERROR:
            return STATUS_BY_ERROR[cls]
    return 500


def error_response(
    request: Request | None,
    status: int,
    message: str,
    headers: dict[str, str] | None = None,
    *,
    as_detail: bool = False,
) -> Response:
    """Render an error as Glance does: JSON, plain text or HTML by `Accept`."""
    if request is not None and request.method == "HEAD":
        # webob's answer to HEAD, whatever `Accept` says: no body, its HTML type.
        return Response(
            b"", status_code=status, media_type="text/html; charset=UTF-8", headers=headers
        )
    reason = REASONS.get(status, "Error")
    code = f"{status} {reason}"
    accept = request.headers.get("accept", "") if request is not None else "application/json"
    explanation, detail = message, ""
    if as_detail and status in GENERIC_EXPLANATIONS:
        explanation, detail = GENERIC_EXPLANATIONS[status], message
    media_type = preferred_error_type(accept)
    if media_type == "application/json":
        body = {
            "message": f"{explanation}<br /><br />\n{detail}\n\n",
            "code": code,
            "title": reason,
        }
        return json_response(body, status=status, headers=headers)
    if media_type is None:
        # webob's plain text: the body with newlines as spaces and <br /> as newlines.
        text = f"{explanation}<br /><br />\n{detail}\n\n".replace("\n", " ").replace("<br />", "\n")
        return Response(
            f"{code}\n\n{text}",
            status_code=status,
            media_type="text/plain; charset=UTF-8",
            headers=headers,
        )
    page = (
        f"<html>\n <head>\n  <title>{code}</title>\n </head>\n <body>\n  <h1>{code}</h1>\n"
        f"  {html.escape(explanation)}<br /><br />\n{html.escape(detail)}\n\n\n </body>\n</html>"
    )
    return Response(
        page, status_code=status, media_type="text/html; charset=UTF-8", headers=headers
    )


_ERROR_TYPES = ("text/html", "application/json")


def preferred_error_type(accept: str) -> str | None:
    """webob's choice between HTML and JSON error bodies; None means plain text.

    Each offer takes the quality of the most specific range that matches it;
    the best quality wins, ties go to HTML (webob's offer order), and no
    acceptable offer (or no header) means plain text.
    """
    ranges: dict[str, float] = {}
    for item in accept.split(","):
        media_range, *parameters = (part.strip() for part in item.split(";"))
        quality = 1.0
        for parameter in parameters:
            name, _, value = parameter.partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if media_range:
            ranges.setdefault(media_range.lower(), quality)
    best, best_quality = None, 0.0
    for offer in _ERROR_TYPES:
        kind = offer.split("/")[0]
        quality = next(
            (ranges[r] for r in (offer, f"{kind}/*", "*/*") if r in ranges),
            0.0,
        )
        if quality > best_quality:
            best, best_quality = offer, quality
    return best


async def handle_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, errors.SkylensError)
    headers = {}
    if isinstance(exc, MethodNotAllowed):
        headers["Allow"] = ", ".join(exc.allowed)
    if isinstance(exc, RangeNotSatisfiable):
        headers["Content-Range"] = f"bytes */{exc.size}"
    if isinstance(exc, UnsupportedPatchMediaType):
        headers["Accept-Patch"] = ", ".join(exc.accepted)
    if isinstance(exc, errors.DatabaseUnavailable):
        headers["Retry-After"] = DATABASE_RETRY_AFTER
    if isinstance(exc, errors.NotAuthenticated) and exc.challenge:
        headers["WWW-Authenticate"] = exc.challenge
    if isinstance(exc, errors.ServerBusy):
        headers["Retry-After"] = str(exc.retry_after)
    as_detail = isinstance(exc, DETAIL_STYLE)
    return error_response(request, status_of(exc), exc.message, headers, as_detail=as_detail)
