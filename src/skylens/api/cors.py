"""Cross-origin resource sharing, answered as Glance's oslo.middleware CORS filter does.

Glance runs oslo.middleware's CORS filter whether or not any origin is configured,
so a preflight (`OPTIONS` with `Origin`) never reaches its router: it is `200` with
an empty body, and carries the `Access-Control-Allow-*` headers only when the
origin is allowed (or `*` is), the requested method is one of `allow_methods` and
every requested header is a simple header or one of `allow_headers`. Otherwise the
same empty `200` says nothing, and the browser refuses the request itself. Any
other request from an allowed origin gets `Access-Control-Allow-Origin`,
`Access-Control-Allow-Credentials` (when allowed) and `Access-Control-Expose-Headers`
on its answer, errors included; `Vary: Origin` on both.
"""

from __future__ import annotations

import dataclasses

from starlette.datastructures import Headers, MutableHeaders
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# Headers a browser may send without asking (oslo.middleware's simple headers).
SIMPLE_HEADERS = frozenset(
    {
        "accept",
        "accept-language",
        "content-type",
        "cache-control",
        "content-language",
        "expires",
        "last-modified",
        "pragma",
    }
)


@dataclasses.dataclass(frozen=True)
class CorsPolicy:
    """What `[cors]` allows; no origins: no cross-origin access at all."""

    allowed_origins: tuple[str, ...] = ()
    allow_credentials: bool = True
    max_age: int = 3600
    allow_methods: tuple[str, ...] = ()
    allow_headers: tuple[str, ...] = ()
    expose_headers: tuple[str, ...] = ()

    def origin_key(self, origin: str) -> str | None:
        """The `allowed_origins` entry that admits `origin`: itself, `*`, or None."""
        if origin in self.allowed_origins:
            return origin
        return "*" if "*" in self.allowed_origins else None


class Cors:
    """The CORS filter around the whole service (see the module docstring)."""

    def __init__(self, app: ASGIApp, policy: CorsPolicy) -> None:
        self.app = app
        self.policy = policy
        self._methods = {method.upper() for method in policy.allow_methods}
        self._headers = SIMPLE_HEADERS | {header.lower() for header in policy.allow_headers}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        origin = headers.get("origin")
        if origin is None:
            await self.app(scope, receive, send)
            return
        if scope["method"] == "OPTIONS":
            await self._preflight(origin, headers)(scope, receive, send)
            return
        allowed = self.policy.origin_key(origin)

        async def send_with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                response = MutableHeaders(scope=message)
                response.add_vary_header("Origin")
                if allowed is not None:
                    self._answer_headers(response, allowed)
            await send(message)

        await self.app(scope, receive, send_with_cors)

    def _answer_headers(self, response: MutableHeaders, allowed: str) -> None:
        response["Access-Control-Allow-Origin"] = allowed
        if self.policy.allow_credentials:
            response["Access-Control-Allow-Credentials"] = "true"
        if self.policy.expose_headers:
            response["Access-Control-Expose-Headers"] = ",".join(self.policy.expose_headers)

    def _preflight(self, origin: str, headers: Headers) -> Response:
        response = Response(b"", status_code=200)  # no media type: no Content-Type
        allowed = self.policy.origin_key(origin)
        method = headers.get("access-control-request-method")
        requested = _header_list(headers.get("access-control-request-headers", ""))
        if (
            allowed is None
            or method is None
            or method.upper() not in self._methods
            or any(name.lower() not in self._headers for name in requested)
        ):
            return response  # an empty 200 that allows nothing
        response.headers.add_vary_header("Origin")
        response.headers["Access-Control-Allow-Origin"] = allowed
        if self.policy.allow_credentials:
            response.headers["Access-Control-Allow-Credentials"] = "true"
        if self.policy.max_age:
            response.headers["Access-Control-Max-Age"] = str(self.policy.max_age)
        response.headers["Access-Control-Allow-Methods"] = method
        if requested:
            response.headers["Access-Control-Allow-Headers"] = ",".join(requested)
        return response


def _header_list(value: str) -> list[str]:
    return [name.strip() for name in value.split(",") if name.strip()]
