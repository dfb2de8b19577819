"""Liveness and readiness.

`GET /healthcheck` is liveness, answered as Glance's healthcheck middleware answers
it: `200 OK` whenever the process serves HTTP, whatever its dependencies say (a
supervisor that restarts processes on a failed liveness check must not restart
every process because the database is away).

`GET /healthcheck/ready` is readiness: it runs every check the composition root
built (the database reachable and at the schema revision this release expects,
each configured store answering, Keystone answering in Keystone mode) at once, each
on a thread of its own, and answers `200` when all pass and `503` naming those that
failed otherwise. Neither endpoint needs authentication, so what they say is
short and fixed: a check's name (`database`, `store <id>`, `keystone`) and a reason
of a few words; endpoints, addresses and driver messages go to the log only.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Callable, Sequence

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from skylens.api.responses import json_response
from skylens.api.routing import PublicOperation, Resource

log = logging.getLogger(__name__)

LIVENESS_PATH = "/healthcheck"
READINESS_PATH = "/healthcheck/ready"


class NotReady(Exception):
    """A check failed: `reason` is what unauthenticated callers may read; `detail`
    (an endpoint, a driver's words) only goes to the log, on the same one line."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        # One line: a monitor asks every few seconds for as long as a failure lasts.
        self.detail = (detail.strip().splitlines() or [""])[0]


@dataclasses.dataclass(frozen=True)
class Check:
    """One dependency's check: `run` returns when it is usable and raises
    `NotReady` (or anything else, reported as "failed") when it is not. It blocks,
    so it runs on a worker thread."""

    name: str
    run: Callable[[], None]


def health_resources(checks: Sequence[Check], timeout: float) -> list[Resource]:
    """The liveness and readiness resources; a check still running after `timeout`
    seconds counts as failed ("no answer")."""

    async def liveness(_request: Request) -> Response:
        return PlainTextResponse("OK")

    async def readiness(_request: Request) -> Response:
        results = await asyncio.gather(*(_outcome(check, timeout) for check in checks))
        verdicts = dict(zip((check.name for check in checks), results, strict=True))
        ready = all(verdict == "ok" for verdict in verdicts.values())
        body = {"status": "ready" if ready else "not ready", "checks": verdicts}
        return json_response(body, status=200 if ready else 503)

    return [
        Resource(
            LIVENESS_PATH,
            [PublicOperation("GET", liveness, "Report that the process serves HTTP (liveness)")],
            tag="service",
        ),
        Resource(
            READINESS_PATH,
            [
                PublicOperation(
                    "GET",
                    readiness,
                    "Report whether the database, the stores and Keystone are usable (readiness)",
                    errors=(503,),
                )
            ],
            tag="service",
        ),
    ]


async def _outcome(check: Check, timeout: float) -> str:
    try:
        await asyncio.wait_for(asyncio.to_thread(check.run), timeout)
    except NotReady as failure:
        if failure.detail:
            log.warning("readiness: %s: %s (%s)", check.name, failure.reason, failure.detail)
        else:
            log.warning("readiness: %s: %s", check.name, failure.reason)
        return failure.reason
    except TimeoutError:
        log.warning("readiness: %s: no answer within %g s", check.name, timeout)
        return "no answer"
    except Exception:
        log.exception("readiness: %s failed", check.name)
        return "failed"
    return "ok"
