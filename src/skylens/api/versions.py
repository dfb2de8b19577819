"""Version discovery and URL/media-type version negotiation, as Glance does it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from skylens.api.requests import base_url
from skylens.api.responses import json_response
from skylens.api.routing import PublicOperation, Resource

# (version, status) in the order the document lists them. Every version here is
# implemented; optional features that are off behave as in a Glance with them off.
# As a Glance without an image cache lists them, up to 2.15 (store detail): 2.14-2.18
# come with an image cache and 2.17 with `images.locations_api` (`image_api_versions`).
IMAGE_API_VERSIONS: Sequence[tuple[str, str]] = (
    ("2.15", "CURRENT"),
    ("2.13", "SUPPORTED"),  # quota usage
    ("2.12", "SUPPORTED"),  # an image's tasks
    ("2.11", "SUPPORTED"),  # copy-image
    ("2.10", "SUPPORTED"),
    ("2.9", "SUPPORTED"),  # multi-store import
    ("2.8", "SUPPORTED"),
    ("2.7", "SUPPORTED"),
    ("2.6", "SUPPORTED"),
    ("2.5", "SUPPORTED"),
    ("2.4", "SUPPORTED"),
    ("2.3", "SUPPORTED"),
    ("2.2", "SUPPORTED"),
    ("2.1", "SUPPORTED"),
    ("2.0", "SUPPORTED"),
)
Versions = Sequence[tuple[str, str]]
# The locations API (2.17) is CURRENT where Glance without a cache lists it.
_WITH_LOCATIONS_API: Versions = (
    ("2.15", "SUPPORTED"),
    *IMAGE_API_VERSIONS[1:7],
    ("2.17", "CURRENT"),
    *IMAGE_API_VERSIONS[7:],
)
# With an image cache, as Glance with image_cache_dir set: 2.14-2.18 on top, which
# lists 2.17 there (SUPPORTED) whether or not the locations API is on.
CACHE_API_VERSIONS: Sequence[tuple[str, str]] = (
    ("2.18", "CURRENT"),  # cache clean and prune
    ("2.17", "SUPPORTED"),
    ("2.16", "SUPPORTED"),  # PUT /v2/cache/{id} answers 202
    ("2.15", "SUPPORTED"),
    ("2.14", "SUPPORTED"),  # the cache API
)
_VENDOR_MEDIA_TYPE = "application/vnd.openstack.images-"
# Paths that live outside the versioned API.
UNVERSIONED_PREFIXES = ("/healthcheck", "/openapi.json")


def image_api_versions(cache: bool = False, locations_api: bool = False) -> Versions:
    """The versions the document lists, as Glance 33 lists them with these features.

    An image cache puts 2.14-2.18 on top with 2.18 CURRENT, locations API or not;
    without a cache the locations API lists 2.17 as CURRENT below 2.8 and 2.15
    turns SUPPORTED; with neither, 2.15 is CURRENT.
    """
    if cache:
        return (*CACHE_API_VERSIONS, *IMAGE_API_VERSIONS[1:])
    return _WITH_LOCATIONS_API if locations_api else IMAGE_API_VERSIONS


def allowed_prefixes(versions: Versions = IMAGE_API_VERSIONS) -> frozenset[str]:
    return frozenset({"v2", *(f"v{version}" for version, _ in versions)})


def versions_document(base: str, versions: Versions = IMAGE_API_VERSIONS) -> dict[str, Any]:
    href = f"{base}/v2/"
    return {
        "versions": [
            {"id": f"v{version}", "status": status, "links": [{"rel": "self", "href": href}]}
            for version, status in versions
        ]
    }


class VersionNegotiation:
    """Rewrite `/v2.N/...` (or a vendor `Accept`) to `/v2/...`; else list versions.

    `GET /versions` answers 200; `/` and any unknown version answer 300 with the
    same document, exactly as Glance's negotiation middleware.
    """

    def __init__(
        self,
        app: ASGIApp,
        public_endpoint: str = "",
        unversioned: tuple[str, ...] = (),
        versions: Versions = IMAGE_API_VERSIONS,
    ) -> None:
        self.app = app
        self.public_endpoint = public_endpoint
        self.versions = versions
        self.allowed = allowed_prefixes(versions)
        # Paths of the service's own besides UNVERSIONED_PREFIXES (the metrics').
        self.unversioned = frozenset(unversioned)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["path"].startswith(UNVERSIONED_PREFIXES)
            or scope["path"] in self.unversioned
        ):
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        if path in ("/", "/versions"):
            await self.app(scope, receive, send)
            return
        first, _, rest = path.lstrip("/").partition("/")
        if first == "versions":
            await self._versions(scope, receive, send, 200)
            return
        accept = dict(scope["headers"]).get(b"accept", b"").decode("latin-1")
        if accept.startswith(_VENDOR_MEDIA_TYPE):
            requested, remainder = accept[len(_VENDOR_MEDIA_TYPE) :], path
        else:
            requested, remainder = first, ("/" + rest if rest or path.endswith("/") else "")
        if requested not in self.allowed:
            await self._versions(scope, receive, send, 300)
            return
        scope = dict(scope, path="/v2" + remainder, raw_path=None)
        await self.app(scope, receive, send)

    async def _versions(self, scope: Scope, receive: Receive, send: Send, status: int) -> None:
        response = versions_response(Request(scope), self.public_endpoint, status, self.versions)
        await response(scope, receive, send)


# The versions document, for the OpenAPI document.
VERSIONS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "versions": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "id": {"type": "string"},
                    "status": {"type": "string"},
                    "links": {"type": "array"},
                },
            },
        }
    },
}


def versions_response(
    request: Request, public_endpoint: str, status: int, versions: Versions = IMAGE_API_VERSIONS
) -> Response:
    document = versions_document(base_url(request, public_endpoint), versions)
    return json_response(document, status=status)


def version_resources(
    public_endpoint: str, implemented: Versions = IMAGE_API_VERSIONS
) -> list[Resource]:
    async def choices(request: Request) -> Response:
        return versions_response(request, public_endpoint, 300, implemented)

    async def versions(request: Request) -> Response:
        return versions_response(request, public_endpoint, 200, implemented)

    return [
        Resource(
            "/",
            [
                PublicOperation(
                    "GET",
                    choices,
                    "List API versions (300 Multiple Choices)",
                    success=300,
                    response_schema="versions",
                )
            ],
            tag="versions",
        ),
        Resource(
            "/versions",
            [
                PublicOperation(
                    "GET",
                    versions,
                    "List API versions",
                    response_schema="versions",
                )
            ],
            tag="versions",
        ),
    ]
