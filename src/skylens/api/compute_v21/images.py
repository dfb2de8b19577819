"""Handlers for the Compute API's image proxy: images and their metadata."""

from __future__ import annotations

import dataclasses

from starlette.requests import Request
from starlette.responses import Response

from skylens.api.compute_v21 import bodies, views
from skylens.api.compute_v21.query import parse_compute_query
from skylens.api.listing import ListLimits
from skylens.api.offload import Offload
from skylens.api.requests import base_url
from skylens.api.responses import json_response
from skylens.api.routing import Handler
from skylens.domain import metadata
from skylens.domain.access import RequestContext
from skylens.domain.errors import InvalidRequest, NotFound
from skylens.services.image_data import ImageDataService
from skylens.services.images import ImageService

VERSION_SEGMENT = "/v2.1"


def project_scoped(handler: Handler) -> Handler:
    """`handler`, for callers of the project the URL names in `{project_id}` (if it
    names one); 400 for the others, as in the Compute API."""

    async def scoped(request: Request, context: RequestContext) -> Response:
        project_id = request.path_params.get("project_id")
        if project_id is not None and project_id != context.project_id:
            raise InvalidRequest(
                f"Malformed request URL: URL's project_id '{project_id}' doesn't match "
                f"Context's project_id '{context.project_id}'"
            )
        return await handler(request, context)

    return scoped


@dataclasses.dataclass(frozen=True)
class ComputeImageHandlers:
    images: ImageService
    data: ImageDataService
    writes: Offload
    prefix: str = ""  # the path before `/v2.1`
    # `maximum`: the longest page, and the page an unlimited list gets.
    list_limits: ListLimits = dataclasses.field(default_factory=ListLimits)
    public_endpoint: str = ""

    def _links(self, request: Request) -> views.Links:
        base = base_url(request, self.public_endpoint)
        project_id = request.path_params.get("project_id")
        project = f"/{project_id}" if project_id is not None else ""
        return views.Links(
            versioned=f"{base}{self.prefix}{VERSION_SEGMENT}{project}",
            bookmark=f"{base}{self.prefix}{project}",
            image_api=base,
        )

    # -- images ----------------------------------------------------------------

    async def index(self, request: Request, context: RequestContext) -> Response:
        return await self._list(request, context, detailed=False)

    async def detail(self, request: Request, context: RequestContext) -> Response:
        return await self._list(request, context, detailed=True)

    async def _list(self, request: Request, context: RequestContext, *, detailed: bool) -> Response:
        params = request.query_params.multi_items()
        parsed = parse_compute_query(params, self.list_limits)
        page = await self.images.page(context, parsed.query)
        body = views.list_view(
            page.images,
            self._links(request),
            detailed=detailed,
            params=params,
            page_full=parsed.page_size is not None and len(page.images) == parsed.page_size,
        )
        return json_response(body)

    async def show(self, request: Request, context: RequestContext) -> Response:
        image = await self.images.show(context, request.path_params["image_id"])
        return json_response({"image": views.detail_view(image, self._links(request))})

    async def delete(self, request: Request, context: RequestContext) -> Response:
        """The record and its data go together, as through the Image API."""
        await self.writes(self.data.delete_image, context, request.path_params["image_id"])
        return Response(status_code=204)

    # -- metadata --------------------------------------------------------------

    async def list_metadata(self, request: Request, context: RequestContext) -> Response:
        image = await self.images.show(context, request.path_params["image_id"])
        return json_response(views.metadata_view(image))

    async def merge_metadata(self, request: Request, context: RequestContext) -> Response:
        items = await bodies.read_metadata(request)
        image = await self.writes(
            self.images.update_with,
            context,
            request.path_params["image_id"],
            metadata.merge(items),
        )
        return json_response(views.metadata_view(image))

    async def replace_metadata(self, request: Request, context: RequestContext) -> Response:
        items = await bodies.read_metadata(request)
        await self.writes(
            self.images.update_with,
            context,
            request.path_params["image_id"],
            metadata.replace_all(items),
        )
        return json_response({"metadata": items})

    async def show_item(self, request: Request, context: RequestContext) -> Response:
        image = await self.images.show(context, request.path_params["image_id"])
        key = request.path_params["key"]
        if key not in image.properties:
            raise NotFound("The resource could not be found.")
        return json_response({"meta": {key: image.properties[key]}})

    async def set_item(self, request: Request, context: RequestContext) -> Response:
        key = request.path_params["key"]
        meta = await bodies.read_meta_item(request, key)
        await self.writes(
            self.images.update_with,
            context,
            request.path_params["image_id"],
            metadata.merge(meta),
        )
        return json_response({"meta": meta})

    async def delete_item(self, request: Request, context: RequestContext) -> Response:
        await self.writes(
            self.images.update_with,
            context,
            request.path_params["image_id"],
            metadata.remove(request.path_params["key"]),
        )
        return Response(status_code=204)
