"""Route tables as data: one `Resource` per path, one operation per method.

The same table builds the Starlette routes and the OpenAPI document, and a
resource answers unknown methods itself so that 405s carry Glance's body and
`Allow` header.

Authentication is part of dispatch: an `Operation` is authenticated before its
handler runs, and the handler receives the caller's `RequestContext`; only a
`PublicOperation` (discovery, health, this document) runs without one. The few
errors Glance answers before 401 (a wrong media type is 415 even without a token)
are an operation's `precheck`, which runs first.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable, Sequence
from typing import ClassVar

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route, request_response
from starlette.types import Receive, Scope, Send

from skylens.api.errors import MethodNotAllowed, MethodNotImplemented
from skylens.domain.access import RequestContext
from skylens.domain.ports import Authenticator
from skylens.logs import note_identity, note_route

Handler = Callable[[Request, RequestContext], Awaitable[Response]]
PublicHandler = Callable[[Request], Awaitable[Response]]
# Raises the errors that come before authentication; returns nothing.
Precheck = Callable[[Request], None]
# The methods Glance's router implements; any other method is 501 on every path.
IMPLEMENTED_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"})


@dataclasses.dataclass(frozen=True)
class Operation:
    """An operation for authenticated callers: `precheck`, then authentication, then
    `handler(request, context)`."""

    method: str
    handler: Handler
    summary: str
    success: int = 200
    errors: tuple[int, ...] = ()
    request_media_type: str | None = None
    request_schema: str | None = None  # a `#/components/schemas/...` name
    response_schema: str | None = None
    precheck: Precheck | None = None

    authenticated: ClassVar[bool] = True

    async def respond(self, request: Request, authenticator: Authenticator) -> Response:
        if self.precheck is not None:
            self.precheck(request)
        context = await authenticator.authenticate(request.headers)
        note_identity(context.project_id, context.user_id)
        return await self.handler(request, context)


@dataclasses.dataclass(frozen=True)
class PublicOperation:
    """An operation anyone may call: no authentication, no request body."""

    method: str
    handler: PublicHandler
    summary: str
    success: int = 200
    errors: tuple[int, ...] = ()
    response_schema: str | None = None

    authenticated: ClassVar[bool] = False
    request_media_type: ClassVar[None] = None
    request_schema: ClassVar[None] = None

    async def respond(self, request: Request, _authenticator: Authenticator) -> Response:
        return await self.handler(request)


@dataclasses.dataclass(frozen=True)
class Resource:
    path: str
    operations: Sequence[Operation | PublicOperation]
    tag: str
    # The `#/components/schemas/...` name of its error bodies (each API surface has its own).
    error_schema: str = "error"

    def route(self, authenticator: Authenticator) -> Route:
        # An ASGI object (not a function) with no `methods`: every method
        # reaches `ResourceEndpoint`, which decides between handler, 405 and 501.
        endpoint = ResourceEndpoint(self, authenticator)
        return Route(self.path, endpoint, methods=None, name=self.path)


class ResourceEndpoint:
    """The ASGI endpoint of one resource; `resource` says what it serves."""

    def __init__(self, resource: Resource, authenticator: Authenticator) -> None:
        self.resource = resource
        self._authenticator = authenticator
        self._operations = {operation.method: operation for operation in resource.operations}
        self._allowed = [operation.method for operation in resource.operations]
        self._app = request_response(self._dispatch)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._app(scope, receive, send)

    async def _dispatch(self, request: Request) -> Response:
        note_route(self.resource.path)
        operation = self._operations.get(request.method)
        if operation is None:
            if request.method not in IMPLEMENTED_METHODS:
                raise MethodNotImplemented(request.method)
            raise MethodNotAllowed(request.method, self._allowed)
        return await operation.respond(request, self._authenticator)
