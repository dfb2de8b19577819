"""The one place errors become HTTP responses on the Compute surface.

Statuses are the service's (`skylens.api.errors.status_of`) with the few
differences the Compute API has; bodies are Compute faults:
`{"itemNotFound": {"code": 404, "message": "..."}}`.
"""

from __future__ import annotations

import logging

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from skylens.api.compute_v21.microversions import VersionNotSupported
from skylens.api.errors import DATABASE_RETRY_AFTER, MethodNotAllowed, status_of
from skylens.api.responses import json_response
from skylens.domain import errors

log = logging.getLogger("skylens")

FAULT_NAMES = {
    400: "badRequest",
    401: "unauthorized",
    403: "forbidden",
    404: "itemNotFound",
    405: "badMethod",
    409: "conflictingRequest",
    413: "overLimit",
    415: "badMediaType",
    429: "overLimit",
    501: "notImplemented",
    503: "serviceUnavailable",
}
NOT_FOUND = "The resource could not be found."
UNEXPECTED = "Unexpected API Error. Please report this and attach the Skylens log if possible."

# (status, message) where the Compute API differs from the Image API.
_COMPUTE_TERMS: dict[type[errors.SkylensError], tuple[int, str | None]] = {
    errors.ImageNotFound: (404, "Image not found."),
    errors.PropertyLimitExceeded: (403, "Image metadata limit exceeded"),
    VersionNotSupported: (406, None),
}


def fault(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    name = FAULT_NAMES.get(status, "computeFault")
    return json_response({name: {"code": status, "message": message}}, status, headers)


def render(error: errors.SkylensError, headers: dict[str, str]) -> Response:
    status, message = status_of(error), error.message
    for cls, (compute_status, compute_message) in _COMPUTE_TERMS.items():
        if isinstance(error, cls):  # the classes are disjoint: order does not matter
            status, message = compute_status, compute_message or message
            break
    if isinstance(error, MethodNotAllowed):
        headers = {**headers, "Allow": ", ".join(error.allowed)}
    if isinstance(error, errors.NotAuthenticated) and error.challenge:
        headers = {**headers, "WWW-Authenticate": error.challenge}
    if isinstance(error, errors.DatabaseUnavailable):
        headers = {**headers, "Retry-After": DATABASE_RETRY_AFTER}
    return fault(status, message, headers)


async def handle_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, errors.SkylensError)
    return render(exc, {})


async def http_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return fault(exc.status_code, NOT_FOUND if exc.status_code == 404 else str(exc.detail))


async def unexpected_error(request: Request, _exc: Exception) -> Response:
    log.exception("unhandled error serving %s %s", request.method, request.url.path)
    return fault(500, UNEXPECTED)
