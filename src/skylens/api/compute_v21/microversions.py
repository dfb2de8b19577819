"""Compute API microversions: which one a request asks for, and the echo.

A request names its version in `OpenStack-API-Version: compute 2.N` (which wins)
or the older `X-OpenStack-Nova-API-Version: 2.N`; none means 2.1 and `latest`
means the highest we advertise. The proxy routes stop existing at the versions
where the Compute API removed them.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from functools import total_ordering

from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from skylens.domain.errors import InvalidRequest, NotFound, SkylensError

STANDARD_HEADER = "OpenStack-API-Version"
LEGACY_HEADER = "X-OpenStack-Nova-API-Version"
SERVICE_TYPE = "compute"
_FORMAT = re.compile(r"([1-9]\d*)\.([1-9]\d*|0)")
# Longer version numbers are well formed but beyond any version that exists.
_NUMBER_DIGITS = 9


@total_ordering
@dataclasses.dataclass(frozen=True, slots=True)
class APIVersion:
    major: int
    minor: int

    @classmethod
    def parse(cls, text: str) -> APIVersion:
        match = _FORMAT.fullmatch(text)
        if match is None:
            raise InvalidVersionString(text)
        if any(len(number) > _NUMBER_DIGITS for number in match.groups()):
            raise VersionNotSupported(text)
        return cls(int(match.group(1)), int(match.group(2)))

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, APIVersion):
            return NotImplemented
        return (self.major, self.minor) < (other.major, other.minor)

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}"


MIN_VERSION = APIVersion(2, 1)
MAX_VERSION = APIVersion(2, 96)
# The last versions that still have the image proxy routes (removed in 2.36 and
# the image metadata routes in 2.39).
MAX_IMAGE_PROXY = APIVersion(2, 35)
MAX_IMAGE_METADATA_PROXY = APIVersion(2, 38)


class InvalidVersionString(InvalidRequest):
    def __init__(self, text: str) -> None:
        super().__init__(
            f"API Version String {text} is of invalid format. Must be of format MajorNum.MinorNum."
        )


class VersionNotSupported(SkylensError):
    """A well-formed version outside [MIN_VERSION, MAX_VERSION] (406)."""

    def __init__(self, version: APIVersion | str) -> None:
        super().__init__(
            f"Version {version} is not supported by the API. Minimum is {MIN_VERSION} "
            f"and maximum is {MAX_VERSION}."
        )


class VersionNotFoundForMethod(NotFound):
    """The route exists, but not at the requested microversion."""

    def __init__(self) -> None:
        super().__init__("The resource could not be found.")


def requested_version(headers: Headers) -> APIVersion:
    """The version a request asks for; raises for a malformed or unknown one."""
    text = _standard_header_version(headers)
    if text is None:
        text = headers.get(LEGACY_HEADER)
        text = text.strip() if text is not None else None
    if not text:
        return MIN_VERSION
    if text == "latest":
        return MAX_VERSION
    version = APIVersion.parse(text)
    if not MIN_VERSION <= version <= MAX_VERSION:
        raise VersionNotSupported(version)
    return version


def _standard_header_version(headers: Headers) -> str | None:
    """The compute entry of `OpenStack-API-Version` (the last one, if several)."""
    found = None
    for value in headers.getlist(STANDARD_HEADER):
        for entry in value.split(","):
            service, _, version = entry.strip().partition(" ")
            if service.lower() == SERVICE_TYPE and version.strip():
                found = version.strip()
    return found


def version_of(request: Request) -> APIVersion:
    version: APIVersion = request.scope["state"]["compute_version"]
    return version


def up_to(maximum: APIVersion) -> Callable[[Request], None]:
    """An operation's precheck: the route exists at versions up to `maximum` and is
    404 above it, before authentication."""

    def check(request: Request) -> None:
        if version_of(request) > maximum:
            raise VersionNotFoundForMethod()

    return check


ErrorRenderer = Callable[[SkylensError, dict[str, str]], Response]


class Microversions:
    """Read the requested version into `scope["state"]`, answer a bad one with
    `render`, and echo the version (with `Vary`) on every other response."""

    def __init__(self, app: ASGIApp, render: ErrorRenderer) -> None:
        self.app = app
        self.render = render

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        try:
            version = requested_version(Headers(scope=scope))
        except SkylensError as error:
            await self.render(error, {})(scope, receive, send)
            return
        scope.setdefault("state", {})["compute_version"] = version
        echo = [
            (STANDARD_HEADER.encode(), f"{SERVICE_TYPE} {version}".encode()),
            (LEGACY_HEADER.encode(), str(version).encode()),
            (b"vary", f"{STANDARD_HEADER}, {LEGACY_HEADER}".encode()),
        ]

        async def send_with_version(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *echo]
            await send(message)

        await self.app(scope, receive, send_with_version)
