"""Pure ASGI middleware (no per-request task switching, unlike BaseHTTPMiddleware)."""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import ipaddress
import logging
import re
import time
import uuid
from collections.abc import Callable, Iterable
from urllib.parse import urlsplit

from starlette.requests import ClientDisconnect, Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from skylens.api.errors import error_response
from skylens.asgi_extensions import READ_INTO, ZERO_COPY_SEND, offered
from skylens.logs import ACCESS_LOGGER, RequestFacts, current_request, request_scope

log = logging.getLogger(__name__)
access_log = logging.getLogger(ACCESS_LOGGER)

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

        with request_scope(request_id.decode()):
            await self.app(scope, receive, send_with_id)


@dataclasses.dataclass(frozen=True)
class Exchange:
    """One request as the access log reports it."""

    method: str
    path: str
    status: int  # 0: no response was sent (the client went away first)
    seconds: float
    bytes_in: int
    bytes_out: int
    facts: RequestFacts | None


class InFlight:
    """The requests being served by this process, so that a stop can wait for the
    ones uvicorn cut off to finish undoing what they started (an upload puts its
    image back to `queued`) before the process exits."""

    def __init__(self) -> None:
        self.count = 0
        self._idle = asyncio.Event()
        self._idle.set()

    def enter(self) -> None:
        self.count += 1
        self._idle.clear()

    def leave(self) -> None:
        self.count -= 1
        if self.count == 0:
            self._idle.set()

    async def drained(self, timeout: float) -> bool:
        """Whether every request ended within `timeout` seconds."""
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
        except TimeoutError:
            return False
        return True


class AccessLog:
    """One line per request on `skylens.access` (when `enabled`), and each finished
    exchange to `observers` (the metrics). Inside `RequestIdMiddleware`, outside
    everything that may answer, so refusals are reported too.

    Bytes in count the request body however it is read (ASGI `receive` or the
    receive-into extension); bytes out the response body however it is sent (ASGI
    body messages or zero-copy `sendfile`).
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        enabled: bool = True,
        observers: Iterable[Callable[[Exchange], None]] = (),
        in_flight: InFlight | None = None,
    ) -> None:
        self.app = app
        self._enabled = enabled
        self._observers = tuple(observers)
        self._in_flight = in_flight or InFlight()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.monotonic()
        counts = {"in": 0, "out": 0, "status": 0}

        async def counting_receive() -> Message:
            message = await receive()
            counts["in"] += len(message.get("body", b""))
            return message

        async def counting_send(message: Message) -> None:
            kind = message["type"]
            if kind == "http.response.start":
                counts["status"] = message["status"]
            elif kind == "http.response.body":
                counts["out"] += len(message.get("body", b""))
            elif kind == ZERO_COPY_SEND:
                counts["out"] += message.get("count") or 0
            await send(message)

        _count_read_into(scope, counts)
        self._in_flight.enter()
        try:
            await self.app(scope, counting_receive, counting_send)
        finally:
            self._in_flight.leave()
            exchange = Exchange(
                method=scope["method"],
                path=scope["path"],
                status=counts["status"],
                seconds=time.monotonic() - started,
                bytes_in=counts["in"],
                bytes_out=counts["out"],
                facts=current_request(),
            )
            if self._enabled:
                _log_exchange(exchange)
            for observe in self._observers:
                observe(exchange)


def _count_read_into(scope: Scope, counts: dict[str, int]) -> None:
    """Count what the receive-into extension reads, in a copy of its entry."""
    extension = offered(scope, READ_INTO)
    if extension is None:
        return
    read_into = extension["readinto"]

    async def counting(buffer: memoryview) -> int:
        count: int = await read_into(buffer)
        counts["in"] += count
        return count

    scope["extensions"] = {**scope["extensions"], READ_INTO: {**extension, "readinto": counting}}


def _log_exchange(exchange: Exchange) -> None:
    facts = exchange.facts
    fields: dict[str, object] = {
        "method": exchange.method,
        "path": exchange.path,
        "status": exchange.status,
        "duration_ms": round(exchange.seconds * 1000, 1),
        "bytes_in": exchange.bytes_in,
        "bytes_out": exchange.bytes_out,
        "route": facts.route if facts else "",
        "project": facts.project if facts else None,
        "user": facts.user if facts else None,
    }
    if facts is not None and facts.credential is not None:
        fields["token_name"] = facts.credential
    identity = " ".join(
        f"{name}={fields[name]}"
        for name in ("project", "user", "token_name")
        if fields.get(name) is not None
    )
    access_log.info(
        "%s %s %s %.1fms in=%d out=%d%s",
        exchange.method,
        exchange.path,
        exchange.status or "-",
        fields["duration_ms"],
        exchange.bytes_in,
        exchange.bytes_out,
        f" {identity}" if identity else "",
        extra={"fields": fields},
    )


class TrustedOrigins:
    """With `auth.mode = "trusted-headers"`, refuse what a web browser could send on
    behalf of another site.

    Any page a browser shows can send requests to a loopback port: a form that posts
    `text/plain` to `/v2/images` (which accepts any media type, as Glance's does), or
    a page at a name its owner then resolves to 127.0.0.1 (DNS rebinding), whose
    requests name that name in `Host` and read the answers. The identity headers
    being unauthenticated, either would act as the default identity, an admin. So
    `Host` must be a loopback name (`localhost`, `127.x.x.x`, `[::1]`, any port),
    `public_endpoint`'s host or an allowed name, and a request that carries
    `Origin` must come from the service's own origin, `public_endpoint`'s or an
    allowed one. Clients other than browsers send no `Origin`.
    """

    def __init__(
        self,
        app: ASGIApp,
        allowed_hosts: Iterable[str] = (),
        allowed_origins: Iterable[str] = (),
        public_endpoint: str = "",
    ) -> None:
        self.app = app
        hosts = {host.strip().lower() for host in allowed_hosts if host.strip()}
        origins = {origin.strip() for origin in allowed_origins if origin.strip()}
        self._any_host, self._any_origin = "*" in hosts, "*" in origins
        own = _origin(public_endpoint) if public_endpoint else None
        self._hosts = frozenset(hosts - {"*"} | ({own[1]} if own else set()))
        self._origins = frozenset(
            {o for o in map(_origin, origins - {"*"}) if o} | ({own} if own else set())
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            refusal = self._refusal(scope["headers"])
            if refusal is not None:
                response = error_response(Request(scope), 403, refusal)
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)

    def _refusal(self, headers: Iterable[tuple[bytes, bytes]]) -> str | None:
        host_header: str | None = None
        origins = []
        for name, value in headers:
            if name == b"host" and host_header is None:
                host_header = value.decode("latin-1")
            elif name == b"origin":
                origins.append(value.decode("latin-1"))
        host = _host_and_port(host_header) if host_header is not None else None
        if not self._any_host and (host is None or not self._host_allowed(host[0])):
            return (
                "The Host header does not name this service: in trusted-headers mode it "
                "answers to loopback names (localhost, 127.0.0.1, [::1]) and to the names in "
                "server.allowed_hosts only."
            )
        if not self._any_origin and any(not self._origin_allowed(o, host) for o in origins):
            return (
                "Requests from other web origins are refused in trusted-headers mode: the "
                "Origin header must be this service's own origin or one in "
                "server.allowed_origins."
            )
        return None

    def _host_allowed(self, name: str) -> bool:
        return name in self._hosts or is_loopback(name)

    def _origin_allowed(self, value: str, host: tuple[str, int | None] | None) -> bool:
        origin = _origin(value)
        if origin is None:
            return False  # "null" (a sandboxed page, a file) or nonsense
        if origin in self._origins:
            return True
        scheme, name, port = origin
        return host is not None and (name, port) == (host[0], host[1] or _DEFAULT_PORTS[scheme])


_DEFAULT_PORTS = {"http": 80, "https": 443}


def _origin(value: str) -> tuple[str, str, int] | None:
    """(scheme, host, port) of an origin or URL, lower-case, the port made explicit."""
    try:
        parts = urlsplit(value.strip())
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.hostname:
        return None
    return scheme, parts.hostname.lower(), port or _DEFAULT_PORTS[scheme]


def _host_and_port(value: str) -> tuple[str, int | None] | None:
    """A `Host` header's name (brackets removed) and port, or None if malformed."""
    value = value.strip().lower()
    if value.startswith("["):  # an IPv6 address: [::1]:9292
        name, bracket, rest = value[1:].partition("]")
        if not bracket:
            return None
    else:
        name, colon, port = value.partition(":")
        rest = colon + port
    if not name:
        return None
    if not rest:
        return name, None
    port = rest[1:]
    if rest[0] != ":" or not port.isdigit() or len(port) > 5:
        return None
    return name, int(port)


@functools.lru_cache(maxsize=256)  # asked on every request, of a handful of Host names
def is_loopback(name: str) -> bool:
    """`localhost` or a loopback address: what only this machine reaches."""
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


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
