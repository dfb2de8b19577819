"""Metadefs on the wire: Glance's bodies, its schemas, and the reading of requests."""

from __future__ import annotations

import dataclasses
import json
import urllib.parse
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from skylens.api.image_v2.schemas import Schema
from skylens.api.responses import timestamp
from skylens.domain.errors import InvalidRequest, ReadOnlyAttribute
from skylens.domain.metadefs import (
    Association,
    MetadefObject,
    MetadefTag,
    Namespace,
    NamespaceContents,
    NamespaceDetail,
    PropertySchema,
    ResourceType,
)

_SCHEMAS = Path(__file__).parent / "schemas" / "metadefs"
# What /v2/schemas/metadefs/<path> serves: Glance's ten documents.
SCHEMA_PATHS = (
    "namespace",
    "namespaces",
    "resource_type",
    "resource_types",
    "property",
    "properties",
    "object",
    "objects",
    "tag",
    "tags",
)
NAMESPACES = "/v2/metadefs/namespaces"


@dataclasses.dataclass(frozen=True)
class MetadefSchemas:
    """The published schemas by path, and the ones requests are validated with."""

    published: Mapping[str, Schema]
    tags_request: Schema  # POST .../tags: a list of {"name": ...}

    def __getitem__(self, path: str) -> Schema:
        return self.published[path]


def load_metadef_schemas() -> MetadefSchemas:
    def load(path: str) -> Schema:
        document = json.loads((_SCHEMAS / f"{path}.json").read_text())
        return Schema(document["name"], document)

    return MetadefSchemas({path: load(path) for path in SCHEMA_PATHS}, load("tags-request"))


def check_read_only(document: Mapping[str, Any], names: Sequence[str]) -> None:
    for name in names:
        if name in document:
            raise ReadOnlyAttribute(name)


def validated(schema: Schema, document: Any, read_only: Sequence[str]) -> dict[str, Any]:
    if not isinstance(document, dict):
        raise InvalidRequest("Body expected in request.")
    check_read_only(document, read_only)
    schema.validate(document)
    return document


# -- views ---------------------------------------------------------------------------------


def _present(**values: Any) -> dict[str, Any]:
    """Glance (wsme) leaves out what is unset."""
    return {key: value for key, value in values.items() if value is not None}


def namespace_href(name: str) -> str:
    return f"{NAMESPACES}/{name}"


def namespace_view(
    namespace: Namespace,
    associations: Sequence[Association] = (),
    contents: NamespaceContents | None = None,
) -> dict[str, Any]:
    view = _present(
        namespace=namespace.namespace,
        display_name=namespace.display_name,
        description=namespace.description,
        visibility=namespace.visibility.value,
        protected=namespace.protected,
        owner=namespace.owner,
        created_at=timestamp(namespace.created_at),
        updated_at=timestamp(namespace.updated_at),
    )
    if contents is not None:
        associations = contents.associations
    if associations:
        view["resource_type_associations"] = [association_view(a) for a in associations]
    if contents is not None:
        if contents.properties:
            view["properties"] = properties_view(contents.properties)
        if contents.objects:
            view["objects"] = [object_view(namespace.namespace, o) for o in contents.objects]
        if contents.tags:
            view["tags"] = [{"name": tag.name} for tag in contents.tags]
    view["self"] = namespace_href(namespace.namespace)
    view["schema"] = "/v2/schemas/metadefs/namespace"
    return view


def detail_view(detail: NamespaceDetail) -> dict[str, Any]:
    return namespace_view(detail.namespace, contents=detail.contents)


def created_view(detail: NamespaceDetail) -> dict[str, Any]:
    """The answer to a create, as Glance gives it: the stored namespace, with the
    contents echoed as the request gave them (no timestamps, no links of objects)."""
    view = namespace_view(detail.namespace)
    contents = detail.contents
    echoed: dict[str, Any] = {}
    if contents.associations:
        echoed["resource_type_associations"] = [
            _present(name=a.name, prefix=a.prefix, properties_target=a.properties_target)
            for a in contents.associations
        ]
    if contents.properties:
        echoed["properties"] = properties_view(contents.properties)
    if contents.objects:
        echoed["objects"] = [
            _present(
                name=o.name,
                description=o.description,
                required=list(o.required) if o.required else None,
                properties=properties_view(o.properties) if o.properties else None,
            )
            for o in contents.objects
        ]
    if contents.tags:
        echoed["tags"] = [{"name": tag.name} for tag in contents.tags]
    links = {"self": view.pop("self"), "schema": view.pop("schema")}
    return {**view, **echoed, **links}


def namespaces_view(
    page: Sequence[tuple[Namespace, tuple[Association, ...]]],
    query: Mapping[str, str],
    limit: int,
) -> dict[str, Any]:
    params = {key: value for key, value in query.items() if key != "marker"}
    first = NAMESPACES + (f"?{urllib.parse.urlencode(params)}" if params else "")
    view: dict[str, Any] = {
        "namespaces": [namespace_view(ns, associations) for ns, associations in page],
        "first": first,
        "schema": "/v2/schemas/metadefs/namespaces",
    }
    if page and len(page) == limit:
        params["marker"] = page[-1][0].namespace
        view["next"] = f"{NAMESPACES}?{urllib.parse.urlencode(params)}"
    return view


def association_view(association: Association) -> dict[str, Any]:
    return _present(
        name=association.name,
        prefix=association.prefix,
        properties_target=association.properties_target,
        created_at=timestamp(association.created_at),
        updated_at=timestamp(association.updated_at),
    )


def resource_type_view(resource_type: ResourceType) -> dict[str, Any]:
    return {
        "name": resource_type.name,
        "created_at": timestamp(resource_type.created_at),
        "updated_at": timestamp(resource_type.updated_at),
    }


def property_view(name: str, schema: PropertySchema) -> dict[str, Any]:
    return {"name": name, **schema}


def properties_view(properties: Mapping[str, PropertySchema]) -> dict[str, Any]:
    return {name: dict(schema) for name, schema in properties.items()}


def object_view(namespace: str, item: MetadefObject) -> dict[str, Any]:
    view = _present(
        name=item.name,
        description=item.description,
        required=list(item.required) if item.required else None,
        properties=properties_view(item.properties),
        created_at=timestamp(item.created_at),
        updated_at=timestamp(item.updated_at),
    )
    view["self"] = f"{namespace_href(namespace)}/objects/{item.name}"
    view["schema"] = "/v2/schemas/metadefs/object"
    return view


def tag_view(tag: MetadefTag) -> dict[str, Any]:
    return {
        "name": tag.name,
        "created_at": timestamp(tag.created_at),
        "updated_at": timestamp(tag.updated_at),
    }
