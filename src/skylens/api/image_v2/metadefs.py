"""Handlers and routes for /v2/metadefs/... and /v2/schemas/metadefs/...

Each request body is checked as Glance checks it: read-only attributes (403), then
the published schema (400); then the service decides (404, 403, 409).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from skylens.api.image_v2.metadef_views import (
    SCHEMA_PATHS,
    MetadefSchemas,
    association_view,
    created_view,
    detail_view,
    namespace_href,
    namespace_view,
    namespaces_view,
    object_view,
    properties_view,
    property_view,
    resource_type_view,
    tag_view,
    validated,
)
from skylens.api.listing import ListLimits
from skylens.api.offload import Offload
from skylens.api.requests import read_json, reject_body
from skylens.api.responses import json_response, no_content
from skylens.api.routing import Operation, Resource
from skylens.domain.access import RequestContext
from skylens.domain.errors import InvalidRequest
from skylens.domain.metadefs import (
    NamespaceQuery,
    NamespaceVisibility,
    TagQuery,
    association_of,
    contents_of,
    invalid_sort_dir,
    namespace_of,
    object_of,
    property_schema,
)
from skylens.services.metadefs import MetadefService

_JSON = "application/json"
_NAMESPACE_READ_ONLY = ("self", "schema", "created_at", "updated_at")
_CHILD_READ_ONLY = ("created_at", "updated_at")
_TRUE = frozenset({"1", "t", "true", "on", "y", "yes"})


def _limit(raw: str | None, limits: ListLimits) -> int:
    if raw is None:
        return limits.default
    try:
        limit = int(raw)
    except ValueError:
        raise InvalidRequest("limit param must be an integer") from None
    if limit < 0:
        raise InvalidRequest("limit param must be positive")
    return min(limit, limits.maximum)


def _sort_dir(raw: str | None) -> str:
    value = raw or "desc"
    if value not in ("asc", "desc"):
        raise invalid_sort_dir(value)
    return value


def namespace_query(params: dict[str, str], limits: ListLimits) -> NamespaceQuery:
    visibility = params.get("visibility")
    if visibility and visibility not in ("public", "private"):
        raise InvalidRequest(f"Invalid visibility value: {visibility}")
    types = params.get("resource_types")
    return NamespaceQuery(
        limit=_limit(params.get("limit"), limits),
        marker=params.get("marker"),
        sort_key=params.get("sort_key", "created_at"),
        sort_dir=_sort_dir(params.get("sort_dir")),
        visibility=NamespaceVisibility(visibility) if visibility else None,
        resource_types=tuple(t for t in types.split(",") if t) if types else (),
    )


@dataclasses.dataclass(frozen=True)
class MetadefHandlers:
    service: MetadefService
    schemas: MetadefSchemas
    list_limits: ListLimits
    reads: Offload
    writes: Offload

    # -- namespaces ----------------------------------------------------------------

    async def index(self, request: Request, context: RequestContext) -> Response:
        params = dict(request.query_params)
        query = namespace_query(params, self.list_limits)
        page = await self.reads(self.service.list_namespaces, context, query)
        return json_response(namespaces_view(page, params, query.limit))

    async def create(self, request: Request, context: RequestContext) -> Response:
        body = await self._body(request, "namespace", _NAMESPACE_READ_ONLY)
        detail = await self.writes(
            self.service.create_namespace, context, namespace_of(body), contents_of(body)
        )
        headers = {"Location": namespace_href(detail.namespace.namespace)}
        return json_response(created_view(detail), status=201, headers=headers)

    async def show(self, request: Request, context: RequestContext) -> Response:
        detail = await self.reads(
            self.service.show_namespace,
            context,
            request.path_params["namespace"],
            request.query_params.get("resource_type"),
        )
        return json_response(detail_view(detail))

    async def update(self, request: Request, context: RequestContext) -> Response:
        body = await self._body(request, "namespace", _NAMESPACE_READ_ONLY)
        updated = await self.writes(
            self.service.update_namespace,
            context,
            request.path_params["namespace"],
            namespace_of(body),
        )
        return json_response(namespace_view(updated))

    async def delete(self, request: Request, context: RequestContext) -> Response:
        await reject_body(request)
        await self.writes(self.service.delete_namespace, context, request.path_params["namespace"])
        return no_content()

    def clear(self, kind: str) -> Any:
        async def clear(request: Request, context: RequestContext) -> Response:
            await reject_body(request)
            name = request.path_params["namespace"]
            await self.writes(self.service.clear_namespace, context, name, kind)
            return no_content()

        return clear

    # -- resource types --------------------------------------------------------------

    async def resource_types(self, _request: Request, context: RequestContext) -> Response:
        found = await self.reads(self.service.resource_types, context)
        return json_response({"resource_types": [resource_type_view(t) for t in found]})

    async def associations(self, request: Request, context: RequestContext) -> Response:
        found = await self.reads(
            self.service.associations, context, request.path_params["namespace"]
        )
        return json_response({"resource_type_associations": [association_view(a) for a in found]})

    async def associate(self, request: Request, context: RequestContext) -> Response:
        body = await self._body(request, "resource_type", _CHILD_READ_ONLY)
        created = await self.writes(
            self.service.associate,
            context,
            request.path_params["namespace"],
            association_of(body),
        )
        return json_response(association_view(created), status=201)

    async def dissociate(self, request: Request, context: RequestContext) -> Response:
        await reject_body(request)
        await self.writes(
            self.service.dissociate,
            context,
            request.path_params["namespace"],
            request.path_params["resource_type"],
        )
        return no_content()

    # -- properties ----------------------------------------------------------------------

    async def properties(self, request: Request, context: RequestContext) -> Response:
        found = await self.reads(self.service.properties, context, request.path_params["namespace"])
        return json_response({"properties": properties_view(found)})

    async def show_property(self, request: Request, context: RequestContext) -> Response:
        asked = request.path_params["property"]
        _stored, schema = await self.reads(
            self.service.show_property,
            context,
            request.path_params["namespace"],
            asked,
            request.query_params.get("resource_type"),
        )
        return json_response(property_view(asked, schema))

    async def add_property(self, request: Request, context: RequestContext) -> Response:
        body = await self._body(request, "property", _CHILD_READ_ONLY)
        schema = await self.writes(
            self.service.add_property,
            context,
            request.path_params["namespace"],
            body["name"],
            property_schema(body),
        )
        return json_response(property_view(body["name"], schema), status=201)

    async def update_property(self, request: Request, context: RequestContext) -> Response:
        body = await self._body(request, "property", _CHILD_READ_ONLY)
        schema = await self.writes(
            self.service.update_property,
            context,
            request.path_params["namespace"],
            request.path_params["property"],
            body["name"],
            property_schema(body),
        )
        return json_response(property_view(body["name"], schema))

    async def remove_property(self, request: Request, context: RequestContext) -> Response:
        await reject_body(request)
        await self.writes(
            self.service.remove_property,
            context,
            request.path_params["namespace"],
            request.path_params["property"],
        )
        return no_content()

    # -- objects -------------------------------------------------------------------------

    async def objects(self, request: Request, context: RequestContext) -> Response:
        name = request.path_params["namespace"]
        found = await self.reads(self.service.objects, context, name)
        return json_response(
            {
                "objects": [object_view(name, o) for o in found],
                "schema": "v2/schemas/metadefs/objects",
            }
        )

    async def show_object(self, request: Request, context: RequestContext) -> Response:
        name = request.path_params["namespace"]
        found = await self.reads(
            self.service.show_object, context, name, request.path_params["object"]
        )
        return json_response(object_view(name, found))

    async def add_object(self, request: Request, context: RequestContext) -> Response:
        body = await self._body(request, "object", _NAMESPACE_READ_ONLY)
        name = request.path_params["namespace"]
        created = await self.writes(self.service.add_object, context, name, object_of(body))
        return json_response(object_view(name, created), status=201)

    async def update_object(self, request: Request, context: RequestContext) -> Response:
        body = await self._body(request, "object", _NAMESPACE_READ_ONLY)
        name = request.path_params["namespace"]
        updated = await self.writes(
            self.service.update_object,
            context,
            name,
            request.path_params["object"],
            object_of(body),
        )
        return json_response(object_view(name, updated))

    async def remove_object(self, request: Request, context: RequestContext) -> Response:
        await reject_body(request)
        await self.writes(
            self.service.remove_object,
            context,
            request.path_params["namespace"],
            request.path_params["object"],
        )
        return no_content()

    # -- tags ------------------------------------------------------------------------------

    async def tags(self, request: Request, context: RequestContext) -> Response:
        params = request.query_params
        limit = params.get("limit")
        query = TagQuery(
            limit=_limit(limit, self.list_limits) if limit else None,
            marker=params.get("marker") or None,
            sort_key=params.get("sort_key", "created_at"),
            sort_dir=_sort_dir(params.get("sort_dir")),
        )
        found = await self.reads(
            self.service.tags, context, request.path_params["namespace"], query
        )
        return json_response({"tags": [{"name": tag.name} for tag in found]})

    async def add_tags(self, request: Request, context: RequestContext) -> Response:
        document = await read_json(request)
        body = validated(self.schemas.tags_request, document, _CHILD_READ_ONLY)
        append = request.headers.get("x-openstack-append", "").strip().lower() in _TRUE
        created = await self.writes(
            self.service.add_tags,
            context,
            request.path_params["namespace"],
            [tag["name"] for tag in body.get("tags", ())],
            append,
        )
        return json_response({"tags": [{"name": tag.name} for tag in created]}, status=201)

    async def show_tag(self, request: Request, context: RequestContext) -> Response:
        found = await self.reads(
            self.service.show_tag,
            context,
            request.path_params["namespace"],
            request.path_params["tag"],
        )
        return json_response(tag_view(found))

    async def add_tag(self, request: Request, context: RequestContext) -> Response:
        tag = request.path_params["tag"]
        self.schemas["tag"].validate({"name": tag})
        created = await self.writes(
            self.service.add_tag, context, request.path_params["namespace"], tag
        )
        return json_response(tag_view(created), status=201)

    async def update_tag(self, request: Request, context: RequestContext) -> Response:
        body = await self._body(request, "tag", _CHILD_READ_ONLY)
        updated = await self.writes(
            self.service.update_tag,
            context,
            request.path_params["namespace"],
            request.path_params["tag"],
            body["name"],
        )
        return json_response(tag_view(updated))

    async def remove_tag(self, request: Request, context: RequestContext) -> Response:
        await reject_body(request)
        await self.writes(
            self.service.remove_tag,
            context,
            request.path_params["namespace"],
            request.path_params["tag"],
        )
        return no_content()

    async def _body(self, request: Request, schema: str, read_only: tuple[str, ...]) -> Any:
        return validated(self.schemas[schema], await read_json(request), read_only)


def metadef_schema_resources(schemas: MetadefSchemas) -> list[Resource]:
    def resource(path: str) -> Resource:
        document = schemas[path].document

        async def show_schema(_request: Request, _context: RequestContext) -> Response:
            return json_response(document)

        return Resource(
            f"/v2/schemas/metadefs/{path}",
            [Operation("GET", show_schema, f"Show the metadefs {path} schema", errors=(401,))],
            tag="schemas",
        )

    return [resource(path) for path in SCHEMA_PATHS]


def metadef_resources(h: MetadefHandlers) -> list[Resource]:
    ns = "/v2/metadefs/namespaces/{namespace}"
    read, write, create = (401, 403, 404), (400, 401, 403, 404, 409), (400, 401, 403, 404, 409)

    def op(method: str, handler: Any, summary: str, success: int = 200, errors: Any = read) -> Any:
        # Every POST and PUT takes JSON, but for one tag's POST (its name is in the path).
        takes_json = method in ("POST", "PUT") and handler != h.add_tag
        media = _JSON if takes_json else None
        return Operation(method, handler, summary, success, errors, request_media_type=media)

    def resource(path: str, *operations: Operation) -> Resource:
        return Resource(path, operations, tag="metadefs")

    return [
        resource(
            "/v2/metadefs/namespaces",
            op("GET", h.index, "List namespaces", errors=(400, 401, 403, 404)),
            op("POST", h.create, "Create a namespace (admin)", 201, create),
        ),
        resource(
            ns,
            op("GET", h.show, "Show a namespace with its contents"),
            op("PUT", h.update, "Replace a namespace's attributes (admin)", errors=write),
            op("DELETE", h.delete, "Delete a namespace (admin)", 204),
        ),
        resource("/v2/metadefs/resource_types", op("GET", h.resource_types, "List resource types")),
        resource(
            f"{ns}/resource_types",
            op("GET", h.associations, "List a namespace's resource type associations"),
            op("POST", h.associate, "Associate a resource type (admin)", 201, create),
        ),
        resource(
            f"{ns}/resource_types/{{resource_type}}",
            op("DELETE", h.dissociate, "Remove a resource type association (admin)", 204),
        ),
        resource(
            f"{ns}/properties",
            op("GET", h.properties, "List property definitions"),
            op("POST", h.add_property, "Create a property definition (admin)", 201, create),
            op("DELETE", h.clear("properties"), "Delete every property definition (admin)", 204),
        ),
        resource(
            f"{ns}/properties/{{property}}",
            op("GET", h.show_property, "Show a property definition"),
            op("PUT", h.update_property, "Replace a property definition (admin)", errors=write),
            op("DELETE", h.remove_property, "Delete a property definition (admin)", 204),
        ),
        resource(
            f"{ns}/objects",
            op("GET", h.objects, "List objects"),
            op("POST", h.add_object, "Create an object (admin)", 201, create),
            op("DELETE", h.clear("objects"), "Delete every object (admin)", 204),
        ),
        resource(
            f"{ns}/objects/{{object}}",
            op("GET", h.show_object, "Show an object"),
            op("PUT", h.update_object, "Replace an object (admin)", errors=write),
            op("DELETE", h.remove_object, "Delete an object (admin)", 204),
        ),
        resource(
            f"{ns}/tags",
            op("GET", h.tags, "List tags", errors=(400, *read)),
            op(
                "POST",
                h.add_tags,
                "Replace the tags, or add them (X-Openstack-Append)",
                201,
                create,
            ),
            op("DELETE", h.clear("tags"), "Delete every tag (admin)", 204),
        ),
        resource(
            f"{ns}/tags/{{tag}}",
            op("GET", h.show_tag, "Show a tag"),
            op("POST", h.add_tag, "Create a tag (admin)", 201, create),
            op("PUT", h.update_tag, "Rename a tag (admin)", errors=write),
            op("DELETE", h.remove_tag, "Delete a tag (admin)", 204),
        ),
    ]
