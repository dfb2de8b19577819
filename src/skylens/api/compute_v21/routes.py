"""The Compute API v2.1 image proxy: its factory, route table, version document and mount."""

from __future__ import annotations

from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from skylens.api.compute_v21 import errors
from skylens.api.compute_v21.images import VERSION_SEGMENT, ComputeImageHandlers, project_scoped
from skylens.api.compute_v21.microversions import (
    MAX_IMAGE_METADATA_PROXY,
    MAX_IMAGE_PROXY,
    MAX_VERSION,
    MIN_VERSION,
    Microversions,
    up_to,
)
from skylens.api.listing import ListLimits
from skylens.api.middleware import ClientGoneMiddleware
from skylens.api.requests import RefuseNul, RequestLimits, base_url, install_limits
from skylens.api.responses import json_response
from skylens.api.routing import Handler, Operation, PublicOperation, Resource, grouped
from skylens.api.use_cases import UseCases
from skylens.domain.errors import SkylensError
from skylens.domain.ports import Authenticator

_TAG = "compute images"
FAULT_SCHEMA = "compute_fault"  # errors here are Compute faults, not Glance's bodies
_UPDATED = "2013-07-23T11:33:21Z"  # when v2.1 was published, as the Compute API says


def compute_v21_resources(
    use_cases: UseCases, *, prefix: str, list_limits: ListLimits, public_endpoint: str
) -> list[Resource]:
    """Every resource of the Compute API's image proxy (`{prefix}/v2.1/...`)."""
    handlers = ComputeImageHandlers(
        images=use_cases.images,
        data=use_cases.data,
        writes=use_cases.writes,
        prefix=prefix,
        list_limits=list_limits,
        public_endpoint=public_endpoint,
    )
    return [*version_resources(prefix, public_endpoint), *image_resources(handlers)]


def compute_v21_app(
    resources: list[Resource], authenticator: Authenticator, limits: RequestLimits
) -> ASGIApp:
    """The proxy's own app: its routes, Nova's error format and microversions."""
    app = Starlette(
        routes=grouped(resource.route(authenticator) for resource in resources),
        middleware=[Middleware(ClientGoneMiddleware)],
        exception_handlers={
            SkylensError: errors.handle_error,
            HTTPException: errors.http_error,
            Exception: errors.unexpected_error,
        },
    )
    install_limits(app, limits)
    return Microversions(RefuseNul(app, errors.handle_error), errors.render)


def version_entry(href: str) -> dict[str, Any]:
    return {
        "id": "v2.1",
        "status": "CURRENT",
        "version": str(MAX_VERSION),
        "min_version": str(MIN_VERSION),
        "updated": _UPDATED,
        "links": [{"rel": "self", "href": href}],
    }


def version_resources(prefix: str, public_endpoint: str) -> list[Resource]:
    """`{prefix}/v2.1`: the version document clients discover microversions from;
    with a prefix, `{prefix}/` lists it too (without one, `/` is the Image API's)."""
    root = f"{prefix}{VERSION_SEGMENT}"

    async def show_version(request: Request) -> Response:
        entry = version_entry(f"{base_url(request, public_endpoint)}{root}/")
        entry["links"].append(
            {"rel": "describedby", "type": "text/html", "href": "https://docs.openstack.org/"}
        )
        entry["media-types"] = [
            {
                "base": "application/json",
                "type": "application/vnd.openstack.compute+json;version=2.1",
            }
        ]
        return json_response({"version": entry})

    async def list_versions(request: Request) -> Response:
        href = f"{base_url(request, public_endpoint)}{root}/"
        return json_response({"versions": [version_entry(href)]})

    def resource(path: str, handler: Any, summary: str) -> Resource:
        operation = PublicOperation("GET", handler, summary)
        return Resource(path, [operation], tag=_TAG, error_schema=FAULT_SCHEMA)

    resources = [
        resource(root, show_version, "Show the Compute API v2.1 version"),
        resource(f"{root}/", show_version, "Show the Compute API v2.1 version"),
    ]
    if prefix:
        resources += [
            resource(prefix, list_versions, "List the Compute API versions"),
            resource(f"{prefix}/", list_versions, "List the Compute API versions"),
        ]
    return resources


def image_resources(handlers: ComputeImageHandlers) -> list[Resource]:
    """Every route twice: under `/v2.1` and under `/v2.1/{project_id}`."""
    root = f"{handlers.prefix}{VERSION_SEGMENT}"
    return [
        resource
        for base in (root, f"{root}/{{project_id}}")
        for resource in _image_resources(base, handlers)
    ]


def _image_resources(base: str, h: ComputeImageHandlers) -> list[Resource]:
    def images(method: str, handler: Handler, summary: str, **kwargs: Any) -> Operation:
        return Operation(
            method, project_scoped(handler), summary, precheck=up_to(MAX_IMAGE_PROXY), **kwargs
        )

    def meta(method: str, handler: Handler, summary: str, **kwargs: Any) -> Operation:
        return Operation(
            method,
            project_scoped(handler),
            summary,
            precheck=up_to(MAX_IMAGE_METADATA_PROXY),
            **kwargs,
        )

    json = "application/json"
    return [
        Resource(
            f"{base}/images",
            [images("GET", h.index, "List images (Compute proxy)", errors=(400, 401, 403))],
            tag=_TAG,
            error_schema=FAULT_SCHEMA,
        ),
        Resource(
            f"{base}/images/detail",
            [images("GET", h.detail, "List images with details", errors=(400, 401, 403))],
            tag=_TAG,
            error_schema=FAULT_SCHEMA,
        ),
        Resource(
            f"{base}/images/{{image_id}}",
            [
                images("GET", h.show, "Show an image (Compute proxy)", errors=(401, 403, 404)),
                images(
                    "DELETE",
                    h.delete,
                    "Delete an image and its data (Compute proxy)",
                    success=204,
                    errors=(401, 403, 404),
                ),
            ],
            tag=_TAG,
            error_schema=FAULT_SCHEMA,
        ),
        Resource(
            f"{base}/images/{{image_id}}/metadata",
            [
                meta("GET", h.list_metadata, "List an image's metadata", errors=(401, 403, 404)),
                meta(
                    "POST",
                    h.merge_metadata,
                    "Add or change metadata items",
                    errors=(400, 401, 403, 404),
                    request_media_type=json,
                ),
                meta(
                    "PUT",
                    h.replace_metadata,
                    "Replace all the metadata",
                    errors=(400, 401, 403, 404),
                    request_media_type=json,
                ),
            ],
            tag=_TAG,
            error_schema=FAULT_SCHEMA,
        ),
        Resource(
            f"{base}/images/{{image_id}}/metadata/{{key}}",
            [
                meta("GET", h.show_item, "Show a metadata item", errors=(401, 403, 404)),
                meta(
                    "PUT",
                    h.set_item,
                    "Create or change a metadata item",
                    errors=(400, 401, 403, 404),
                    request_media_type=json,
                ),
                meta(
                    "DELETE",
                    h.delete_item,
                    "Delete a metadata item",
                    success=204,
                    errors=(401, 403, 404),
                ),
            ],
            tag=_TAG,
            error_schema=FAULT_SCHEMA,
        ),
    ]


class ComputeMount:
    """Send `{prefix}/v2.1[/...]` (and, with a prefix, `{prefix}[/]`) to `compute`;
    every other path to `app`, the Image API (which answers `/v2.1/...` itself only
    when the Compute proxy is elsewhere)."""

    def __init__(self, app: ASGIApp, compute: ASGIApp, prefix: str) -> None:
        self.app = app
        self.compute = compute
        self.root = f"{prefix}{VERSION_SEGMENT}"
        self.exact = {self.root, *((prefix, f"{prefix}/") if prefix else ())}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope.get("path", "")
        if scope["type"] == "http" and (path in self.exact or path.startswith(self.root + "/")):
            await self.compute(scope, receive, send)
            return
        await self.app(scope, receive, send)
