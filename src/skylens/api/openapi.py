"""An OpenAPI 3.1 document generated from the route tables and published schemas."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from skylens import __version__
from skylens.api.errors import REASONS
from skylens.api.routing import Resource

_PARAMETER = re.compile(r"{(\w+)}")

_PATCH_SCHEMA: dict[str, Any] = {
    "description": "A JSON patch (Glance's restricted form): add, remove or replace on "
    "one top-level attribute per operation.",
    "type": "array",
    "items": {
        "type": "object",
        "properties": {
            "op": {"enum": ["add", "remove", "replace"]},
            "path": {"type": "string", "pattern": "^/"},
            "value": {},
        },
    },
}
_ERROR_SCHEMA: dict[str, Any] = {
    "description": "An Image API error, as Glance (webob) words it.",
    "type": "object",
    "properties": {
        "message": {"type": "string"},
        "code": {"type": "string"},
        "title": {"type": "string"},
    },
    "required": ["message", "code", "title"],
}
_COMPUTE_FAULT_SCHEMA: dict[str, Any] = {
    "description": "A Compute API fault: one member named for the kind of error "
    '(`itemNotFound`, `badRequest`...), e.g. `{"itemNotFound": {"code": 404, "message": "..."}}`.',
    "type": "object",
    "minProperties": 1,
    "maxProperties": 1,
    "additionalProperties": {
        "type": "object",
        "properties": {"code": {"type": "integer"}, "message": {"type": "string"}},
        "required": ["code", "message"],
    },
}


def openapi_document(
    resources: Iterable[Resource], schemas: Mapping[str, Mapping[str, Any]]
) -> dict[str, Any]:
    components = {name: _as_openapi_schema(doc) for name, doc in schemas.items()}
    components["image_patch"] = _PATCH_SCHEMA
    components["image_data"] = {"type": "string", "format": "binary"}
    components["error"] = _ERROR_SCHEMA
    components["compute_fault"] = _COMPUTE_FAULT_SCHEMA
    paths: dict[str, Any] = {}
    for resource in resources:
        item: dict[str, Any] = {}
        parameters = [
            {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
            for name in _PARAMETER.findall(resource.path)
        ]
        if parameters:
            item["parameters"] = parameters
        for operation in resource.operations:
            item[operation.method.lower()] = _operation(resource, operation)
        paths[resource.path] = item
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Skylens",
            "version": __version__,
            "description": "OpenStack Image API v2 compatible image service.",
        },
        "paths": paths,
        # Every operation needs a token unless it opts out with `security: []`.
        "security": [{"token": []}],
        "components": {
            "schemas": components,
            "securitySchemes": {
                "token": {"type": "apiKey", "in": "header", "name": "X-Auth-Token"}
            },
        },
    }


def _operation(resource: Resource, operation: Any) -> dict[str, Any]:
    success: dict[str, Any] = {"description": REASONS.get(operation.success, "OK")}
    if operation.success == 200 or operation.success == 201:
        success["description"] = "OK" if operation.success == 200 else "Created"
    if operation.response_schema:
        success["content"] = {
            "application/json": {
                "schema": {"$ref": f"#/components/schemas/{operation.response_schema}"}
            }
        }
    responses: dict[str, Any] = {str(operation.success): success}
    error = resource.error_schema
    for status in operation.errors:
        responses[str(status)] = {
            "description": REASONS.get(status, "Error"),
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{error}"}}},
        }
    result: dict[str, Any] = {
        "summary": operation.summary,
        "tags": [resource.tag],
        "responses": responses,
    }
    if operation.request_schema:
        media_types = [m.strip() for m in (operation.request_media_type or "").split(",")]
        reference = {"$ref": f"#/components/schemas/{operation.request_schema}"}
        result["requestBody"] = {
            "required": True,
            "content": {media_type: {"schema": reference} for media_type in media_types},
        }
    if not operation.authenticated:
        result["security"] = []
    return result


def _as_openapi_schema(document: Mapping[str, Any]) -> dict[str, Any]:
    """Glance's schemas carry non-JSON-Schema keys (`name`, `links`); drop them."""
    return {key: value for key, value in document.items() if key not in ("name", "links")}
