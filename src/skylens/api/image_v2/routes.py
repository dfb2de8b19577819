"""The Image API v2: its factory and route table."""

from __future__ import annotations

from collections.abc import Sequence

from starlette.requests import Request
from starlette.responses import Response

from skylens.api.image_v2.cache import CacheHandlers, cache_resources
from skylens.api.image_v2.data import OCTET_STREAM, DataHandlers, check_upload_media_type
from skylens.api.image_v2.images import ImageHandlers, check_patch_media_type
from skylens.api.image_v2.imports import ImportHandlers, import_resources
from skylens.api.image_v2.ims import ImageTypes, ImsProfile
from skylens.api.image_v2.locations import LocationHandlers, location_resources
from skylens.api.image_v2.members import MemberHandlers, member_resources
from skylens.api.image_v2.metadef_views import load_metadef_schemas
from skylens.api.image_v2.metadefs import (
    MetadefHandlers,
    metadef_resources,
    metadef_schema_resources,
)
from skylens.api.image_v2.patch import PATCH_V20, PATCH_V21
from skylens.api.image_v2.profile import GlanceProfile, ImageProfile
from skylens.api.image_v2.schemas import ImageSchemas, Schema
from skylens.api.image_v2.stores import StoreHandlers, store_resources
from skylens.api.image_v2.usage import UsageHandlers, usage_resources
from skylens.api.listing import ListLimits
from skylens.api.responses import json_response
from skylens.api.routing import Operation, Resource
from skylens.api.use_cases import UseCases
from skylens.domain.access import RequestContext
from skylens.domain.images import Image

_JSON = "application/json"


def image_v2_resources(
    use_cases: UseCases,
    schemas: ImageSchemas,
    *,
    list_limits: ListLimits,
    public_endpoint: str,
    store_ids: tuple[str, ...],
    ims_profile: bool,
) -> list[Resource]:
    """Every resource of the Image API v2 (`/v2/...`)."""
    reads, writes = use_cases.reads, use_cases.writes
    images = ImageHandlers(
        service=use_cases.images,
        schemas=schemas,
        list_limits=list_limits,
        writes=writes,
        public_endpoint=public_endpoint,
        store_ids=store_ids,
        profile=_profile(use_cases, schemas)
        if ims_profile
        else GlanceProfile(use_cases.locations.shown),
        locations=use_cases.locations,
        import_methods=tuple(use_cases.imports.enabled_methods()),
    )
    imports = ImportHandlers(
        images=use_cases.images,
        imports=use_cases.imports,
        staging=use_cases.staging,
        tasks=use_cases.tasks,
        wake_runner=use_cases.wake_runner,
        reads=reads,
        writes=writes,
        limit_default=list_limits.default,
        limit_max=list_limits.maximum,
    )
    data = DataHandlers(service=use_cases.data, reads=reads, writes=writes, cache=use_cases.cache)
    cache = CacheHandlers(use_cases.cache_api, writes)
    # Usage may ask Keystone for limits: always on a thread, never on the loop.
    usage = UsageHandlers(service=use_cases.quotas, reads=writes)
    metadef_schemas = load_metadef_schemas()
    metadefs = MetadefHandlers(
        service=use_cases.metadefs,
        schemas=metadef_schemas,
        list_limits=list_limits,
        reads=reads,
        writes=writes,
    )
    locations = LocationHandlers(
        service=use_cases.locations, wake_runner=use_cases.wake_runner, reads=reads, writes=writes
    )
    return [
        *schema_resources(schemas),
        *image_resources(images, data),
        *(location_resources(locations) if use_cases.locations.options.api else ()),
        *member_resources(MemberHandlers(service=use_cases.members, reads=reads, writes=writes)),
        *store_resources(StoreHandlers(service=use_cases.data, writes=writes)),
        *usage_resources(usage),
        *import_resources(imports),
        *cache_resources(cache),
        *metadef_schema_resources(metadef_schemas),
        *metadef_resources(metadefs),
    ]


def _profile(use_cases: UseCases, schemas: ImageSchemas) -> ImageProfile:
    """The Huawei Cloud IMS profile (`images.ims_profile`)."""

    async def image_types(images: Sequence[Image]) -> ImageTypes:
        return await use_cases.reads(use_cases.images.image_types, images)

    return ImsProfile(schemas.image, image_types)


def schema_resources(schemas: ImageSchemas) -> list[Resource]:
    def resource(schema: Schema) -> Resource:
        # Nothing in a schema is private, but Glance serves them behind its auth
        # middleware like every /v2 path, and clients expect the same 401.
        async def show_schema(_request: Request, _context: RequestContext) -> Response:
            return json_response(schema.document)

        return Resource(
            f"/v2/schemas/{schema.name}",
            [Operation("GET", show_schema, f"Show the {schema.name} schema", errors=(401,))],
            tag="schemas",
        )

    return [resource(schema) for schema in schemas.all()]


def image_resources(handlers: ImageHandlers, data: DataHandlers) -> list[Resource]:
    image_errors = (401, 403, 404)
    return [
        Resource(
            "/v2/images",
            [
                Operation(
                    "GET",
                    handlers.index,
                    "List images",
                    errors=(400, 401, 403),
                    response_schema="images",
                ),
                Operation(
                    "POST",
                    handlers.create,
                    "Create an image",
                    success=201,
                    errors=(400, 401, 403, 409, 413),
                    request_media_type=_JSON,
                    request_schema="image",
                    response_schema="image",
                ),
            ],
            tag="images",
        ),
        Resource(
            "/v2/images/{image_id}",
            [
                Operation(
                    "GET",
                    handlers.show,
                    "Show an image",
                    errors=image_errors,
                    response_schema="image",
                ),
                Operation(
                    "PATCH",
                    handlers.update,
                    "Update an image with a JSON patch",
                    errors=(400, 401, 403, 404, 409, 413, 415),
                    request_media_type=f"{PATCH_V21}, {PATCH_V20}",
                    request_schema="image_patch",
                    response_schema="image",
                    precheck=check_patch_media_type,
                ),
                Operation(
                    "DELETE",
                    data.delete,
                    "Delete an image",
                    success=204,
                    errors=image_errors,
                ),
            ],
            tag="images",
        ),
        Resource(
            "/v2/images/{image_id}/actions/deactivate",
            [
                Operation(
                    "POST",
                    handlers.deactivate,
                    "Deactivate an image",
                    success=204,
                    errors=(400, *image_errors),
                )
            ],
            tag="images",
        ),
        Resource(
            "/v2/images/{image_id}/actions/reactivate",
            [
                Operation(
                    "POST",
                    handlers.reactivate,
                    "Reactivate an image",
                    success=204,
                    errors=(400, *image_errors),
                )
            ],
            tag="images",
        ),
        Resource(
            "/v2/images/{image_id}/file",
            [
                Operation(
                    "PUT",
                    data.upload,
                    "Upload image data",
                    success=204,
                    errors=(400, *image_errors, 409, 413, 415, 503),
                    request_media_type=OCTET_STREAM,
                    request_schema="image_data",
                    precheck=check_upload_media_type,
                ),
                Operation(
                    "GET",
                    data.download,
                    "Download image data (a single Range gives 206)",
                    errors=(*image_errors, 416, 503),
                ),
            ],
            tag="images",
        ),
        Resource(
            "/v2/images/{image_id}/tags/{tag}",
            [
                Operation(
                    "PUT",
                    handlers.add_tag,
                    "Add a tag",
                    success=204,
                    errors=(400, *image_errors, 413),
                ),
                Operation(
                    "DELETE",
                    handlers.remove_tag,
                    "Remove a tag",
                    success=204,
                    errors=(400, *image_errors),
                ),
            ],
            tag="images",
        ),
    ]
