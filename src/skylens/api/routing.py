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

import contextlib
import dataclasses
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any, ClassVar

from starlette._utils import get_route_path
from starlette.datastructures import URLPath
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Match, NoMatchFound, Route, request_response
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


def grouped(routes: Iterable[Route]) -> list[BaseRoute]:
    """`routes` for a Starlette router, gathered by the first two segments of their
    paths (`/v2/images`, `/v2/metadefs`, ...).

    Starlette's router tries its routes one after the other, each with a regular
    expression; an image show went through ten of them. Grouped, a request is
    compared with a prefix per group and then with the routes of its own group.
    Which route answers is unchanged: a group holds routes in their order, and a
    route that cannot be grouped (a parameter in its first two segments) closes the
    open groups, so no route is ever tried before one that came earlier.
    """
    served: list[BaseRoute] = []
    open_groups: dict[str, RouteGroup] = {}
    for route in routes:
        prefix = _group_prefix(route.path)
        if prefix is None:
            served.append(route)
            open_groups.clear()
        elif prefix in open_groups:
            open_groups[prefix].routes.append(route)
        else:
            group = open_groups[prefix] = RouteGroup(prefix, [route])
            served.append(group)
    return served


def _group_prefix(path: str) -> str | None:
    """What every path the route matches starts with: its first two segments, or
    None when a parameter comes before the end of them."""
    literal = path.split("{", 1)[0]
    if literal != path and literal.count("/") < 3:
        return None
    return "/".join(literal.split("/", 3)[:3])


class RouteGroup(BaseRoute):
    """Routes whose paths start with `prefix`, tried in their order."""

    def __init__(self, prefix: str, routes: list[Route]) -> None:
        self.prefix = prefix
        self.routes = routes

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if scope["type"] != "http" or not get_route_path(scope).startswith(self.prefix):
            return Match.NONE, {}
        partial: tuple[Match, Scope] | None = None
        for route in self.routes:
            match, child_scope = route.matches(scope)
            if match is Match.FULL:
                return match, {**child_scope, _CHOSEN: route}
            if match is Match.PARTIAL and partial is None:
                partial = match, {**child_scope, _CHOSEN: route}
        return partial or (Match.NONE, {})

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        await scope[_CHOSEN].handle(scope, receive, send)

    def url_path_for(self, name: str, /, **path_params: Any) -> URLPath:
        for route in self.routes:
            with contextlib.suppress(NoMatchFound):
                return route.url_path_for(name, **path_params)
        raise NoMatchFound(name, path_params)


_CHOSEN = "skylens.route"  # the scope key a group leaves its matching route under
