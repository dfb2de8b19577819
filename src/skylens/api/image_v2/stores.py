"""Handlers for the stores: `GET /v2/info/stores[/detail]`, `DELETE /v2/stores/{store}/{id}`."""

from __future__ import annotations

import dataclasses
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from skylens.api.offload import Offload
from skylens.api.requests import reject_body
from skylens.api.responses import json_response, no_content
from skylens.api.routing import Operation, Resource
from skylens.domain.access import RequestContext
from skylens.domain.stores import StoreInfo
from skylens.services.image_data import ImageDataService


@dataclasses.dataclass(frozen=True)
class StoreHandlers:
    service: ImageDataService
    writes: Offload

    async def index(self, request: Request, context: RequestContext) -> Response:
        stores = self.service.stores_info(context)
        return json_response({"stores": [_store_view(store) for store in stores]})

    async def detail(self, request: Request, context: RequestContext) -> Response:
        stores = self.service.stores_info(context, detail=True)
        return json_response({"stores": [_store_view(store) for store in stores]})

    async def delete_from_store(self, request: Request, context: RequestContext) -> Response:
        await reject_body(request)
        await self.writes(
            self.service.delete_from_store,
            context,
            request.path_params["store_id"],
            request.path_params["image_id"],
        )
        return no_content()


def _store_view(store: StoreInfo) -> dict[str, Any]:
    """Glance's shape: optional keys appear only when they say something, and the
    flags are the strings "true" (as Glance sends them)."""
    view: dict[str, Any] = {"id": store.id}
    if store.description:
        view["description"] = store.description
    if store.is_default:
        view["default"] = "true"
    if store.kind is not None:
        view["type"] = store.kind
        view["weight"] = store.weight
        view["properties"] = store.properties
    return view


def store_resources(handlers: StoreHandlers) -> list[Resource]:
    return [
        Resource(
            "/v2/info/stores",
            [Operation("GET", handlers.index, "List the stores uploads may name", errors=(401,))],
            tag="stores",
        ),
        Resource(
            "/v2/info/stores/detail",
            [
                Operation(
                    "GET",
                    handlers.detail,
                    "List the stores with their type, weight and settings (admin)",
                    errors=(401, 403),
                )
            ],
            tag="stores",
        ),
        Resource(
            "/v2/stores/{store_id}/{image_id}",
            [
                Operation(
                    "DELETE",
                    handlers.delete_from_store,
                    "Delete an image's data from one store, keeping the other copies",
                    success=204,
                    errors=(400, 401, 403, 404, 409),
                )
            ],
            tag="stores",
        ),
    ]
