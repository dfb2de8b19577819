"""The locations API (Image API 2.17): `POST` and `GET /v2/images/{id}/locations`,
served with `images.locations_api`."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from skylens.api.image_v2.schemas import Schema
from skylens.api.offload import Offload
from skylens.api.requests import read_json
from skylens.api.responses import empty, json_response
from skylens.api.routing import Operation, Resource
from skylens.domain.access import RequestContext
from skylens.domain.locations import VALIDATION_ALGORITHMS
from skylens.services.locations import LocationService

_JSON = "application/json"

# Glance's `get_location_schema()`: the body is validated as `{"add_location": body}`.
LOCATION_SCHEMA = Schema(
    "location",
    {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "name": "location",
        "type": "object",
        "properties": {
            "add_location": {
                "type": "object",
                "properties": {
                    "url": {"type": "string", "maxLength": 255},
                    "validation_data": {
                        "type": "object",
                        "additionalProperties": False,
                        "properties": {
                            "os_hash_algo": {
                                "type": "string",
                                "maxLength": 64,
                                "enum": list(VALIDATION_ALGORITHMS),
                            },
                            "os_hash_value": {"type": "string", "maxLength": 128},
                        },
                        "dependentRequired": {
                            "os_hash_value": ["os_hash_algo"],
                            "os_hash_algo": ["os_hash_value"],
                        },
                    },
                },
                "required": ["url"],
            }
        },
    },
)


@dataclasses.dataclass(frozen=True)
class LocationHandlers:
    service: LocationService
    wake_runner: Callable[[], None]
    reads: Offload
    writes: Offload

    async def add(self, request: Request, context: RequestContext) -> Response:
        body: Any = await read_json(request)
        LOCATION_SCHEMA.validate({"add_location": body})
        url = body["url"]
        validation = dict(body.get("validation_data") or {})
        image_id = request.path_params["image_id"]
        add = await self.writes(self.service.check_add, context, image_id, url, validation)
        request_id = getattr(request.state, "request_id", None)
        await self.writes(self.service.start_add, context, add, request_id)
        self.wake_runner()
        return empty(202)

    async def index(self, request: Request, context: RequestContext) -> Response:
        image_id = request.path_params["image_id"]
        return json_response(await self.reads(self.service.locations, context, image_id))


def location_resources(handlers: LocationHandlers) -> list[Resource]:
    return [
        Resource(
            "/v2/images/{image_id}/locations",
            [
                Operation(
                    "POST",
                    handlers.add,
                    "Add a location to a queued image (2.17): runs as a task",
                    success=202,
                    errors=(400, 401, 403, 404, 409),
                    request_media_type=_JSON,
                ),
                Operation(
                    "GET",
                    handlers.index,
                    "List an image's locations (2.17; the service role)",
                    errors=(401, 403, 404),
                ),
            ],
            tag="images",
        )
    ]
