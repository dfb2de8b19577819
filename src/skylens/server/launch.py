"""How `skylens serve` runs uvicorn: Skylens's protocol, or stock uvicorn if it must."""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

from skylens.server import compat
from skylens.server.connections import ConnectionCap
from skylens.server.options import ServerOptions
from skylens.server.protocol import GlanceHttpToolsProtocol


@dataclasses.dataclass(frozen=True)
class HttpServing:
    """uvicorn's keyword arguments for HTTP, and what they mean for the log."""

    uvicorn_options: dict[str, Any]
    summary: str  # for the start-up line
    warning: str | None = None  # one line, when the protocol could not be used


def http_serving(options: ServerOptions) -> HttpServing:
    """Skylens's protocol with `options`; stock uvicorn (h11, with uvicorn's own
    header-size bound and concurrency limit) when the installed uvicorn lacks the
    internals the protocol needs."""
    problems = compat.mismatches()
    if problems:
        return HttpServing(
            uvicorn_options={
                "http": "h11",
                "h11_max_incomplete_event_size": options.max_head_bytes,
                "limit_concurrency": options.max_connections,
            },
            summary="stock uvicorn h11 protocol",
            warning=(
                f"uvicorn {compat.version()} lacks what skylens.server uses (tested with "
                f"{compat.TESTED}.x): {'; '.join(problems)}. Serving with stock uvicorn "
                f"(h11): no fast paths, no header or body read timeouts"
            ),
        )
    # uvicorn calls what `http` names with its own arguments; a partial adds ours and
    # stays picklable for worker processes. Each worker gets its own ConnectionCap.
    protocol = functools.partial(
        GlanceHttpToolsProtocol, options=options, cap=ConnectionCap(options.max_connections)
    )
    paths = "on" if options.fast_paths else "off"
    return HttpServing(
        uvicorn_options={"http": protocol},
        summary=f"fast paths {paths}, at most {options.max_connections} connections per worker",
    )
