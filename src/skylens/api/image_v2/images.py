"""Handlers for /v2/images: create, list, show, update, delete, actions, tags."""

from __future__ import annotations

import dataclasses
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from skylens.api.image_v2 import patch, views
from skylens.api.image_v2.profile import ImageProfile
from skylens.api.image_v2.schemas import ImageSchemas
from skylens.api.listing import ListLimits
from skylens.api.offload import Offload
from skylens.api.requests import base_url, read_json, reject_body, request_limits
from skylens.api.responses import json_response, no_content
from skylens.domain.access import RequestContext
from skylens.domain.errors import (
    InvalidRequest,
    ReadOnlyAttribute,
    ReservedAttribute,
    ReservedPropertyName,
)
from skylens.domain.images import (
    MAX_NAME_LENGTH,
    MUTABLE_ATTRIBUTES,
    READ_ONLY_ATTRIBUTES,
    RESERVED_ATTRIBUTES,
    RESERVED_PREFIX,
    Image,
    Location,
    canonical_image_id,
)
from skylens.services.images import ImageService, NewImage
from skylens.services.locations import LocationService

# Keys refused before schema validation, as Glance does.
_DISALLOWED_ON_CREATE = ("direct_url", "self", "file", "schema", "stores")


@dataclasses.dataclass(frozen=True)
class ImageHandlers:
    service: ImageService
    schemas: ImageSchemas
    list_limits: ListLimits
    writes: Offload  # runs what may block (show and list are awaited reads)
    profile: ImageProfile  # Glance's, or the Huawei Cloud IMS profile
    locations: LocationService
    public_endpoint: str = ""
    store_ids: tuple[str, ...] = ()  # announced on create, as Glance does with multi-store
    import_methods: tuple[str, ...] = ()  # announced on create, as Glance does

    async def create(self, request: Request, context: RequestContext) -> Response:
        # Validation of a body of up to 112 KiB takes milliseconds: off the loop.
        new_image = await self.writes(self._new_image, await read_json(request))
        image = await self.writes(self.service.create, context, new_image)
        headers = {
            "Location": f"{base_url(request, self.public_endpoint)}{views.image_path(image.id)}"
        }
        if self.import_methods:
            headers["OpenStack-image-import-methods"] = ",".join(self.import_methods)
        if self.store_ids:
            headers["OpenStack-image-store-ids"] = ",".join(self.store_ids)
        return json_response(await self._view(request, image), status=201, headers=headers)

    def _new_image(self, document: Any) -> NewImage:
        if not isinstance(document, dict):
            raise InvalidRequest(
                f"Provided object does not match schema 'image': {document!r} is not of type "
                "'object'"
            )
        for key in _DISALLOWED_ON_CREATE:
            if key in document:
                raise ReadOnlyAttribute(key)
        self.schemas.image.validate(document)
        body = dict(document)
        for key in body:
            read_only = key in READ_ONLY_ATTRIBUTES or key in self.schemas.image.read_only
            if read_only and key != "id":
                raise ReadOnlyAttribute(key)
        if "locations" in body:
            raise ReservedAttribute("locations")
        image_id = body.pop("id", None)
        if image_id is not None:
            image_id = canonical_image_id(image_id)
        tags = frozenset(body.pop("tags", ()))
        attributes = {key: body.pop(key) for key in MUTABLE_ATTRIBUTES & body.keys()}
        attributes.pop("tags", None)
        for key in body:
            if len(key) > MAX_NAME_LENGTH:
                raise InvalidRequest("Custom property should not be greater than 255 characters.")
            if key in RESERVED_ATTRIBUTES or key.startswith(RESERVED_PREFIX):
                raise ReservedPropertyName(key)
        return NewImage(image_id=image_id, attributes=attributes, properties=body, tags=tags)

    async def index(self, request: Request, context: RequestContext) -> Response:
        query = self.profile.list_query(request, self.list_limits)
        page = await self.service.page(context, query)
        view = await self.profile.viewer(request, page.images)
        params = request.query_params.multi_items()
        return json_response(views.images_view(page.images, params, page.next_marker, view))

    async def _view(self, request: Request, image: Image) -> dict[str, Any]:
        """One image as the Image API shows it (as the profile shows it)."""
        view = await self.profile.viewer(request, (image,))
        return view(image)

    async def show(self, request: Request, context: RequestContext) -> Response:
        image = await self.service.show(context, request.path_params["image_id"])
        return json_response(await self._view(request, image))

    async def update(self, request: Request, context: RequestContext) -> Response:
        """PATCH /v2/images/{id}, after `check_patch_media_type`."""
        v21 = patch.check_media_type(request.headers.get("content-type"))
        document = await read_json(request)
        parsed = await self.writes(
            patch.parse_patch,
            document,
            self.schemas.image,
            v21=v21,
            max_operations=request_limits(request).patch_operations,
        )
        image_id = request.path_params["image_id"]
        if parsed.changes:
            changes = parsed.changes
            if any(change.name == "locations" for change in changes):
                changes = await self.locations.prepare(
                    context, image_id, changes, add_replaces=parsed.add_replaces
                )
            removed: list[Location] = []
            image = await self.writes(
                self.service.update,
                context,
                image_id,
                changes,
                add_replaces=parsed.add_replaces,
                locations=self.locations.editing(context, removed),
            )
            if removed:
                await self.writes(self.locations.delete_removed, image_id, removed)
        else:
            image = await self.service.show(context, image_id)
        return json_response(await self._view(request, image))

    async def deactivate(self, request: Request, context: RequestContext) -> Response:
        await reject_body(request)
        await self.writes(self.service.deactivate, context, request.path_params["image_id"])
        return no_content()

    async def reactivate(self, request: Request, context: RequestContext) -> Response:
        await reject_body(request)
        await self.writes(self.service.reactivate, context, request.path_params["image_id"])
        return no_content()

    async def add_tag(self, request: Request, context: RequestContext) -> Response:
        await reject_body(request)
        tag = request.path_params["tag"]
        self.schemas.image.validate({"tags": [tag]})
        await self.writes(self.service.add_tag, context, request.path_params["image_id"], tag)
        return no_content()

    async def remove_tag(self, request: Request, context: RequestContext) -> Response:
        await reject_body(request)
        await self.writes(
            self.service.remove_tag,
            context,
            request.path_params["image_id"],
            request.path_params["tag"],
        )
        return no_content()


def check_patch_media_type(request: Request) -> None:
    """A PATCH names a JSON-patch media type, or it is 415 (before 401, as in Glance)."""
    patch.check_media_type(request.headers.get("content-type"))
