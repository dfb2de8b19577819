"""Route tables as data: one `Resource` per path, one `Operation` per method.

The same table builds the Starlette routes and the OpenAPI document, and a
resource answers unknown methods itself so that 405s carry Glance's body and
`Allow` header.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable, Sequence

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route, request_response
from starlette.types import Receive, Scope, Send

from skylens.api.errors import MethodNotAllowed, MethodNotImplemented

Handler = Callable[[Request], Awaitable[Response]]
# The methods Glance's router implements; any other method is 501 on every path.
IMPLEMENTED_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"})


@dataclasses.dataclass(frozen=True)
class Operation:
    method: str
    handler: Handler
    summary: str
    success: int = 200
    errors: tuple[int, ...] = ()
    request_media_type: str | None = None
    request_schema: str | None = None  # a `#/components/schemas/...` name
    response_schema: str | None = None
    authenticated: bool = True


@dataclasses.dataclass(frozen=True)
class Resource:
    path: str
    operations: Sequence[Operation]
    tag: str
    # The `#/components/schemas/...` name of its error bodies (each API surface has its own).
    error_schema: str = "error"

    def route(self) -> Route:
        # An ASGI object (not a function) with no `methods`: every method
        # reaches `ResourceEndpoint`, which decides between handler, 405 and 501.
        return Route(self.path, ResourceEndpoint(self), methods=None, name=self.path)


class ResourceEndpoint:
    """The ASGI endpoint of one resource; `resource` says what it serves."""

    def __init__(self, resource: Resource) -> None:
        self.resource = resource
        self._handlers = {operation.method: operation.handler for operation in resource.operations}
        self._allowed = [operation.method for operation in resource.operations]
        self._app = request_response(self._dispatch)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._app(scope, receive, send)

    async def _dispatch(self, request: Request) -> Response:
        handler = self._handlers.get(request.method)
        if handler is None:
            if request.method not in IMPLEMENTED_METHODS:
                raise MethodNotImplemented(request.method)
            raise MethodNotAllowed(request.method, self._allowed)
        return await handler(request)
