"""Pure ASGI middleware (no per-request task switching, unlike BaseHTTPMiddleware)."""

from __future__ import annotations

import logging
import re
import uuid

from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger(__name__)

REQUEST_ID_HEADER = b"x-openstack-request-id"
_VALID_REQUEST_ID = re.compile(
    rb"^req-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
)


class RequestIdMiddleware:
    """Give every response an `x-openstack-request-id`.

    A well-formed id sent by the client is kept so that one id follows a request
    across services; anything else is replaced.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = None
        for name, value in scope["headers"]:
            if name == REQUEST_ID_HEADER and _VALID_REQUEST_ID.match(value.lower()):
                request_id = value.lower()
                break
        if request_id is None:
            request_id = f"req-{uuid.uuid4()}".encode()
        scope.setdefault("state", {})["request_id"] = request_id.decode()

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), (REQUEST_ID_HEADER, request_id)]
            await send(message)

        await self.app(scope, receive, send_with_id)


class ClientGoneMiddleware:
    """A request whose client went away (or whose body the server stopped waiting
    for, or could not parse) ends with one short log line, not as a server error.

    Starlette raises `ClientDisconnect` when the body ends in `http.disconnect`;
    everything of the request is undone by then (an upload has put its image back).
    Nothing can be answered: the server has closed the connection, and drops what
    is sent on it. Inside Starlette's error middleware, so nothing reaches it.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await self.app(scope, receive, send)
        except ClientDisconnect:
            log.info(
                "%s %s ended: the request body did not arrive (the client went away, or "
                "sent a malformed body, or paused too long)",
                scope.get("method"),
                scope.get("path"),
            )
