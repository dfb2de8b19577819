"""One logging set-up for Skylens and uvicorn, and what every line of a request shares.

`log_config(level, format)` is the `logging.config.dictConfig` that `skylens serve`
hands uvicorn (which applies it in every worker process): one handler on stderr
for the `skylens` and `uvicorn` loggers and libraries' warnings, in `text` or
`json`, every line stamped with the time (UTC, ISO 8601) and the id of the request
it was written for.

A request's facts (`RequestFacts`: its id, then the route it matched and who
called) live in a context variable from the moment the request-id middleware
sees the request. Everything that request runs, on the event loop or on worker
threads (anyio and asyncio copy the context into them), logs with its id; the
access log line (`skylens.access`) reports them all when the response is sent.
Tokens never enter the facts: a static token's *name* does.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import datetime as dt
import json
import logging
from collections.abc import Iterator
from typing import Any

ACCESS_LOGGER = "skylens.access"
# uvicorn's own level below DEBUG.
_TRACE = 5


@dataclasses.dataclass
class RequestFacts:
    """What the log says about one request; filled in as the request is served."""

    request_id: str
    route: str = ""  # the matched path template, e.g. /v2/images/{image_id}
    project: str | None = None
    user: str | None = None
    credential: str | None = None  # a static token's name, never the token
    store: str | None = None  # the configured store image data went to or came from


_current: contextvars.ContextVar[RequestFacts | None] = contextvars.ContextVar(
    "skylens_request", default=None
)


@contextlib.contextmanager
def request_scope(request_id: str) -> Iterator[RequestFacts]:
    """The facts of the request being served until the block ends."""
    facts = RequestFacts(request_id)
    token = _current.set(facts)
    try:
        yield facts
    finally:
        _current.reset(token)


def current_request() -> RequestFacts | None:
    return _current.get()


def note_route(template: str) -> None:
    facts = _current.get()
    if facts is not None:
        facts.route = template


def note_identity(project: str | None, user: str | None) -> None:
    facts = _current.get()
    if facts is not None:
        facts.project, facts.user = project, user


def note_store(store_id: str) -> None:
    """The configured store the request's image data goes to or comes from."""
    facts = _current.get()
    if facts is not None:
        facts.store = store_id


def note_credential(name: str) -> None:
    """The name of the credential that authenticated the request (never its secret)."""
    facts = _current.get()
    if facts is not None:
        facts.credential = name


class RequestIdFilter(logging.Filter):
    """Give every record `request_id`: its request's, or "-" outside any request."""

    def filter(self, record: logging.LogRecord) -> bool:
        facts = _current.get()
        record.request_id = facts.request_id if facts is not None else "-"
        return True


def _timestamp(record: logging.LogRecord) -> str:
    when = dt.datetime.fromtimestamp(record.created, dt.UTC)
    return when.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class TextFormatter(logging.Formatter):
    """`2025-01-31T12:00:00.123Z INFO skylens.access [req-...] message`."""

    def format(self, record: logging.LogRecord) -> str:
        line = (
            f"{_timestamp(record)} {record.levelname} {record.name} "
            f"[{getattr(record, 'request_id', '-')}] {record.getMessage()}"
        )
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, request_id, message, and the
    access line's fields (`fields`) as keys of their own."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": _timestamp(record),
            "level": record.levelname,
            "logger": record.name,
            "request_id": getattr(record, "request_id", "-"),
            "message": record.getMessage(),
        }
        entry.update(getattr(record, "fields", {}))
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


FORMATTERS = {"text": TextFormatter, "json": JsonFormatter}


def level_number(level: str) -> int:
    if level.lower() == "trace":
        return _TRACE
    number = logging.getLevelName(level.upper())
    return number if isinstance(number, int) else logging.INFO


def log_config(level: str, log_format: str) -> dict[str, Any]:
    """The dictConfig of every process of `skylens serve` and of the commands."""
    handler = {
        "class": "logging.StreamHandler",
        "stream": "ext://sys.stderr",
        "formatter": log_format,
        "filters": ["request_id"],
    }
    logger = {"handlers": ["stderr"], "level": level_number(level), "propagate": False}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"request_id": {"()": RequestIdFilter}},
        "formatters": {name: {"()": cls} for name, cls in FORMATTERS.items()},
        "handlers": {"stderr": handler},
        # Libraries' warnings (oslo's format inspector, boto, keystoneauth) on the
        # same handler, with the request's id.
        "root": {"handlers": ["stderr"], "level": logging.WARNING},
        "loggers": {
            "skylens": logger,
            "uvicorn": logger,
            "uvicorn.error": {"level": level_number(level)},  # through "uvicorn"
            # Replaced by Skylens's own access line (skylens.access).
            "uvicorn.access": {"handlers": [], "level": logging.CRITICAL, "propagate": False},
        },
    }
