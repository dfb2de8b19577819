"""Glance's error bodies (webob's formats), to compare responses against exactly."""

from __future__ import annotations

from typing import Any

import httpx

REASONS = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    413: "Request Entity Too Large",
    415: "Unsupported Media Type",
    501: "Not Implemented",
    503: "Service Unavailable",
}
# webob's default explanations: what Glance shows above a message it passes as detail.
GENERIC_EXPLANATIONS = {
    403: "Access was denied to this resource.",
    409: "There was a conflict when trying to complete your request.",
}


def json_error(status: int, message: str, *, detail: bool = False) -> dict[str, Any]:
    """The `Accept: application/json` body of an error.

    `detail=True` for the messages Glance passes as webob's detail, which then
    sit under the status's generic explanation.
    """
    if detail:
        text = f"{GENERIC_EXPLANATIONS[status]}<br /><br />\n{message}\n\n"
    else:
        text = f"{message}<br /><br />\n\n\n"
    return {"message": text, "code": f"{status} {REASONS[status]}", "title": REASONS[status]}


def assert_error(
    response: httpx.Response, status: int, message: str, *, detail: bool = False
) -> None:
    """`response` is exactly Glance's JSON error `status` carrying `message`."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.json() == json_error(status, message, detail=detail)


def error_message(response: httpx.Response) -> str:
    """The first line of a JSON error's message (schema errors run on for lines)."""
    message: str = response.json()["message"]
    return message.split("\n", 1)[0]


def over_limit(project: str, resource: str, limit: int, usage: int, delta: int) -> str:
    """Glance's 413 for a project over a unified limit: oslo.limit's text inside
    Glance's LimitExceeded."""
    return (
        "The request returned a 413 Request Entity Too Large. This generally means that "
        "rate limiting or a quota threshold was breached.\n\nThe response body:\n"
        f"Project {project} is over a limit for [Resource {resource} is over limit of "
        f"{limit} due to current usage {usage} and delta {delta}]"
    )
