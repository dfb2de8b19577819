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
from starlette.routing import Route

from skylens.api.errors import MethodNotAllowed, MethodNotImplemented

Handler = Callable[[Request], Awaitable[Response]]
_KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


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

    def route(self) -> Route:
        by_method = {operation.method: operation.handler for operation in self.operations}
        allowed = [operation.method for operation in self.operations]

        async def dispatch(request: Request) -> Response:
            handler = by_method.get(request.method)
            if handler is None:
                if request.method not in _KNOWN_METHODS:
                    raise MethodNotImplemented()
                raise MethodNotAllowed(allowed)
            return await handler(request)

        # Every method reaches `dispatch`; it decides between the handler and 405.
        return Route(self.path, dispatch, methods=sorted(_KNOWN_METHODS), name=self.path)
