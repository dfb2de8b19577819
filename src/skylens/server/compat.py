"""Whether the installed uvicorn has the internals `protocol.py` builds on.

pyproject.toml bounds uvicorn to the minor release this was written and tested
against, but an install can still bring another (a constraints file, `--no-deps`,
a patch release that moves something). So `skylens serve` checks, before it serves
anything, that every method it overrides or calls exists with the parameters it
expects, and that the protocol and request objects carry the attributes it reads
and writes; `mismatches()` lists what differs. The check builds a protocol and a
request-response cycle without a connection: nothing is served or sent.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from typing import Any

import httptools
import uvicorn
from uvicorn.config import Config
from uvicorn.protocols.http import flow_control
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle
from uvicorn.server import ServerState

TESTED = "0.54"  # the minor release pyproject.toml allows

# Methods of HttpToolsProtocol the protocol overrides or calls: their parameters.
PROTOCOL_METHODS: dict[str, tuple[str, ...]] = {
    "__init__": ("self", "config", "server_state", "app_state", "_loop"),
    "connection_made": ("self", "transport"),
    "connection_lost": ("self", "exc"),
    "data_received": ("self", "data"),
    "on_message_begin": ("self",),
    "on_url": ("self", "url"),
    "on_header": ("self", "name", "value"),
    "on_headers_complete": ("self",),
    "on_body": ("self", "body"),
    "on_message_complete": ("self",),
    "on_response_complete": ("self",),
    "_start_asgi_task": ("self", "cycle", "app"),
    "send_400_response": ("self", "msg"),
    "_unset_keepalive_if_required": ("self",),
}
PROTOCOL_ATTRIBUTES = (
    "parser",
    "loop",
    "logger",
    "server_state",
    "connections",
    "pipeline",
    "cycle",
    "transport",
    "flow",
    "client",
)
CYCLE_PARAMETERS = (
    "self",
    "scope",
    "transport",
    "flow",
    "logger",
    "access_logger",
    "access_log",
    "default_headers",
    "message_event",
    "expect_100_continue",
    "keep_alive",
    "on_response",
)
CYCLE_ATTRIBUTES = (
    "scope",
    "transport",
    "flow",
    "message_event",
    "body",
    "more_body",
    "waiting_for_100_continue",
    "disconnected",
    "response_started",
    "response_complete",
    "chunked_encoding",
    "expected_content_length",
)
FLOW_MEMBERS = ("pause_reading", "resume_reading", "drain", "write_paused")
PARSER_MEMBERS = ("HttpRequestParser", "HttpParserError", "HttpParserInvalidMethodError")


def mismatches() -> list[str]:
    """What the installed uvicorn (and httptools) lack of what `protocol.py` uses;
    empty when everything is there."""
    problems = [
        f"httptools.{name} is missing" for name in PARSER_MEMBERS if not hasattr(httptools, name)
    ]
    for name, expected in PROTOCOL_METHODS.items():
        problems += _signature(HttpToolsProtocol, name, expected)
    problems += _signature(RequestResponseCycle, "__init__", CYCLE_PARAMETERS)
    if problems:
        return problems  # building objects whose signatures differ would only fail
    try:
        protocol, cycle, flow = _specimens()
    except Exception as error:  # any failure here is the mismatch being looked for
        return [f"building uvicorn's protocol failed: {error!r}"]
    problems += [
        f"HttpToolsProtocol has no attribute {name}"
        for name in PROTOCOL_ATTRIBUTES
        if not hasattr(protocol, name)
    ]
    if not hasattr(protocol.server_state, "default_headers"):
        problems.append("ServerState has no attribute default_headers")
    problems += [
        f"RequestResponseCycle has no attribute {name}"
        for name in CYCLE_ATTRIBUTES
        if not hasattr(cycle, name)
    ]
    problems += [f"FlowControl has no {name}" for name in FLOW_MEMBERS if not hasattr(flow, name)]
    return problems


def version() -> str:
    return str(uvicorn.__version__)


def _signature(cls: type[Any], name: str, expected: tuple[str, ...]) -> list[str]:
    method = cls.__dict__.get(name) or getattr(cls, name, None)
    if method is None or not callable(method):
        return [f"{cls.__name__}.{name} is missing"]
    try:
        parameters = tuple(inspect.signature(method).parameters)
    except (TypeError, ValueError):
        return [f"{cls.__name__}.{name} has no readable signature"]
    if parameters != expected:
        return [f"{cls.__name__}.{name}{parameters} is not {name}{expected}"]
    return []


def _specimens() -> tuple[HttpToolsProtocol, RequestResponseCycle, flow_control.FlowControl]:
    """A protocol, a cycle and its flow control as uvicorn builds them, without a
    connection."""

    async def app(scope: Any, receive: Any, send: Any) -> None:  # never called
        return None

    config = Config(app, http="httptools", ws="none", lifespan="off", log_config=None)
    loop = asyncio.new_event_loop()
    try:
        protocol = HttpToolsProtocol(config, ServerState(), {}, _loop=loop)
        cycle = RequestResponseCycle(
            scope={"type": "http"},  # type: ignore[typeddict-item]
            transport=None,  # type: ignore[arg-type]
            flow=None,  # type: ignore[arg-type]
            logger=logging.getLogger("uvicorn.error"),
            access_logger=logging.getLogger("uvicorn.access"),
            access_log=False,
            default_headers=[],
            message_event=asyncio.Event(),
            expect_100_continue=False,
            keep_alive=True,
            on_response=lambda: None,
        )
        flow = flow_control.FlowControl(None)  # type: ignore[arg-type]
    finally:
        loop.close()
    return protocol, cycle, flow
