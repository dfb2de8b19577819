"""Metadata definitions (metadefs): the catalogue of properties that other services
act on (`hw_*`, `os_*`, `img_*`...), grouped in namespaces.

A namespace holds property definitions, objects (named groups of property
definitions), tags, and associations with resource types (`OS::Glance::Image`,
`OS::Nova::Flavor`...), each with the prefix its property names take there.

The rules are Glance 33's: who sees a namespace (`is_namespace_visible`, with one
SQL twin in `skylens.db.metadefs`), its default policy (`METADEF_CHECK_STRINGS`:
readers of visible namespaces read, admins write) and what a protected namespace
refuses. Messages are Glance's, since clients show them.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from enum import StrEnum
from typing import Any, Protocol

from skylens.domain.access import ADMIN, READER, RequestContext
from skylens.domain.errors import Conflict, Forbidden, InvalidRequest, NotFound

# A property definition as clients send and read it: title, type, enum, default...
PropertySchema = Mapping[str, Any]

# The keys a property definition keeps (Glance's PropertyType); others are dropped.
PROPERTY_KEYS = (
    "type",
    "title",
    "description",
    "operators",
    "default",
    "readonly",
    "minimum",
    "maximum",
    "enum",
    "pattern",
    "minLength",
    "maxLength",
    "confidential",
    "items",
    "uniqueItems",
    "minItems",
    "maxItems",
    "additionalItems",
)
VISIBILITIES = ("public", "private")
SORT_KEYS = ("created_at", "updated_at", "namespace", "display_name", "visibility", "id")


class NamespaceVisibility(StrEnum):
    PUBLIC = "public"
    PRIVATE = "private"


@dataclasses.dataclass(frozen=True, slots=True)
class Namespace:
    namespace: str
    display_name: str | None
    description: str | None
    visibility: NamespaceVisibility
    protected: bool
    owner: str | None
    created_at: dt.datetime
    updated_at: dt.datetime


@dataclasses.dataclass(frozen=True, slots=True)
class ResourceType:
    name: str
    created_at: dt.datetime
    updated_at: dt.datetime


@dataclasses.dataclass(frozen=True, slots=True)
class Association:
    """A namespace's association with a resource type."""

    name: str  # the resource type's
    prefix: str | None
    properties_target: str | None
    created_at: dt.datetime
    updated_at: dt.datetime


@dataclasses.dataclass(frozen=True, slots=True)
class MetadefObject:
    name: str
    description: str | None
    required: tuple[str, ...]
    properties: Mapping[str, PropertySchema]
    created_at: dt.datetime
    updated_at: dt.datetime


@dataclasses.dataclass(frozen=True, slots=True)
class MetadefTag:
    name: str
    created_at: dt.datetime
    updated_at: dt.datetime


@dataclasses.dataclass(frozen=True, slots=True)
class NamespaceContents:
    """Everything a namespace holds, as loaded, created or exported together."""

    associations: tuple[Association, ...] = ()
    properties: Mapping[str, PropertySchema] = dataclasses.field(default_factory=dict)
    objects: tuple[MetadefObject, ...] = ()
    tags: tuple[MetadefTag, ...] = ()


@dataclasses.dataclass(frozen=True, slots=True)
class NamespaceDetail:
    namespace: Namespace
    contents: NamespaceContents


@dataclasses.dataclass(frozen=True, slots=True)
class NamespaceQuery:
    """`GET /v2/metadefs/namespaces`: filters, sort and page."""

    limit: int
    marker: str | None = None
    sort_key: str = "created_at"
    sort_dir: str = "desc"
    visibility: NamespaceVisibility | None = None
    resource_types: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True, slots=True)
class TagQuery:
    limit: int | None = None
    marker: str | None = None
    sort_key: str = "created_at"
    sort_dir: str = "desc"


def property_schema(definition: Mapping[str, Any]) -> dict[str, Any]:
    """A property definition with only the keys Glance keeps, in their order."""
    return {key: definition[key] for key in PROPERTY_KEYS if key in definition}


def is_namespace_visible(context: RequestContext, namespace: Namespace) -> bool:
    """Who may know that a namespace exists: admins, everyone for a public one, its
    owner's project for a private one. (Glance's database layer also shows private
    namespaces without owner, but its default policy then hides them: the net rule
    is this one.)"""
    return (
        context.is_admin
        or namespace.visibility is NamespaceVisibility.PUBLIC
        or (context.project_id is not None and namespace.owner == context.project_id)
    )


def prefixed(detail: NamespaceDetail, resource_type: str) -> NamespaceDetail:
    """The namespace as seen on `resource_type`: property names (the namespace's and
    its objects', and the objects' required names) with that association's prefix."""
    prefix = next((a.prefix for a in detail.contents.associations if a.name == resource_type), None)
    if not prefix:
        return detail
    contents = detail.contents
    objects = tuple(
        dataclasses.replace(
            item,
            properties={prefix + name: value for name, value in item.properties.items()},
            required=tuple(prefix + name for name in item.required),
        )
        for item in contents.objects
    )
    properties = {prefix + name: value for name, value in contents.properties.items()}
    return NamespaceDetail(
        detail.namespace,
        dataclasses.replace(contents, properties=properties, objects=objects),
    )


# -- policy -------------------------------------------------------------------------


class MetadefAction(StrEnum):
    """Glance's metadef policy rules, by their names."""

    GET_NAMESPACE = "get_metadef_namespace"
    GET_NAMESPACES = "get_metadef_namespaces"
    MODIFY_NAMESPACE = "modify_metadef_namespace"
    ADD_NAMESPACE = "add_metadef_namespace"
    DELETE_NAMESPACE = "delete_metadef_namespace"
    GET_OBJECT = "get_metadef_object"
    GET_OBJECTS = "get_metadef_objects"
    MODIFY_OBJECT = "modify_metadef_object"
    ADD_OBJECT = "add_metadef_object"
    DELETE_OBJECT = "delete_metadef_object"
    LIST_RESOURCE_TYPES = "list_metadef_resource_types"
    GET_RESOURCE_TYPE = "get_metadef_resource_type"
    ADD_ASSOCIATION = "add_metadef_resource_type_association"
    REMOVE_ASSOCIATION = "remove_metadef_resource_type_association"
    GET_PROPERTY = "get_metadef_property"
    GET_PROPERTIES = "get_metadef_properties"
    MODIFY_PROPERTY = "modify_metadef_property"
    ADD_PROPERTY = "add_metadef_property"
    REMOVE_PROPERTY = "remove_metadef_property"
    GET_TAG = "get_metadef_tag"
    GET_TAGS = "get_metadef_tags"
    MODIFY_TAG = "modify_metadef_tag"
    ADD_TAG = "add_metadef_tag"
    ADD_TAGS = "add_metadef_tags"
    DELETE_TAG = "delete_metadef_tag"
    DELETE_TAGS = "delete_metadef_tags"


# Helper rules the metadef rules refer to, as Glance defines them: a policy file may
# redefine `metadef_admin` to open every metadef write at once.
METADEF_BASE_CHECK_STRINGS: Mapping[str, str] = {
    "metadef_default": "",
    "metadef_admin": "rule:context_is_admin",
}
_METADEF_ADMIN = "rule:metadef_admin"
_READER_OF_VISIBLE = (
    "rule:context_is_admin or (role:reader and (project_id:%(project_id)s"
    " or 'public':%(visibility)s))"
)
_READER_OF_PROJECT = "rule:context_is_admin or (role:reader and project_id:%(project_id)s)"
_WRITES = frozenset(
    {
        MetadefAction.MODIFY_NAMESPACE,
        MetadefAction.ADD_NAMESPACE,
        MetadefAction.DELETE_NAMESPACE,
        MetadefAction.MODIFY_OBJECT,
        MetadefAction.ADD_OBJECT,
        MetadefAction.DELETE_OBJECT,
        MetadefAction.ADD_ASSOCIATION,
        MetadefAction.REMOVE_ASSOCIATION,
        MetadefAction.MODIFY_PROPERTY,
        MetadefAction.ADD_PROPERTY,
        MetadefAction.REMOVE_PROPERTY,
        MetadefAction.MODIFY_TAG,
        MetadefAction.ADD_TAG,
        MetadefAction.ADD_TAGS,
        MetadefAction.DELETE_TAG,
        MetadefAction.DELETE_TAGS,
    }
)
# Glance 33's defaults (glance/policies/metadef.py, its base strings expanded): every
# write is `rule:metadef_admin` (admin), every read a reader of a visible namespace,
# and the namespace list a reader of the caller's project. All are project-scoped.
METADEF_CHECK_STRINGS: Mapping[MetadefAction, str] = {
    action: (
        _METADEF_ADMIN
        if action in _WRITES
        else _READER_OF_PROJECT
        if action is MetadefAction.GET_NAMESPACES
        else _READER_OF_VISIBLE
    )
    for action in MetadefAction
}


class MetadefPolicy(Protocol):
    """Decides Glance's metadef rules (`MetadefAction`) for a caller, over a
    namespace if any. The images' `Policy` implementations decide these too, so one
    policy file governs both."""

    def allows_metadef(
        self, context: RequestContext, action: MetadefAction, namespace: Namespace | None = None
    ) -> bool:
        """True if the rule named `action` allows the caller; never raises."""
        ...


def metadef_target(context: RequestContext, namespace: Namespace | None) -> dict[str, str | None]:
    """Glance's target: the namespace's owner and visibility, or the caller's project."""
    if namespace is None:
        return {"project_id": context.project_id}
    return {"project_id": namespace.owner, "visibility": namespace.visibility.value}


def metadef_allows(
    context: RequestContext, action: MetadefAction, namespace: Namespace | None = None
) -> bool:
    """`METADEF_CHECK_STRINGS` evaluated in plain Python, as oslo.policy reads them
    (a test proves the two agree over every caller, namespace and rule)."""
    if context.scope != "project":
        return False
    if ADMIN in context.roles:
        return True
    if action in _WRITES or READER not in context.roles:
        return False
    target = metadef_target(context, namespace)
    own = "project_id" in target and str(target["project_id"]) == str(context.project_id)
    if action is MetadefAction.GET_NAMESPACES:
        return own
    return own or target.get("visibility") == "public"


def authorize_metadef(
    policy: MetadefPolicy,
    context: RequestContext,
    action: MetadefAction,
    namespace: Namespace | None = None,
) -> None:
    """Glance's answer to a refused rule: 403, or 404 when the caller may not even
    see the namespace (so nobody learns that a private one exists)."""
    if policy.allows_metadef(context, action, namespace):
        return
    if action is MetadefAction.GET_NAMESPACE or not policy.allows_metadef(
        context, MetadefAction.GET_NAMESPACE, namespace
    ):
        raise NotFound("The resource could not be found.")
    raise Forbidden(f"You are not authorized to complete {action.value} action.")


# -- Glance's refusals ----------------------------------------------------------------


def namespace_not_found(name: str) -> NotFound:
    return NotFound(f"Metadata definition namespace={name} was not found.")


def namespace_forbidden(name: str) -> Forbidden:
    """Glance's database layer refusing a namespace the caller may not see."""
    return Forbidden(f"Forbidding request, metadata definition namespace={name} is not visible.")


def namespace_hidden(name: str) -> NotFound:
    """What the sub-resources answer for a namespace that is missing or not visible."""
    return NotFound(f"Namespace {name} not found")


def namespace_exists(name: str) -> Conflict:
    return Conflict(f"The metadata definition namespace={name} already exists.")


def namespace_rename_exists(name: str) -> Conflict:
    return Conflict(
        "Invalid update. It would result in a duplicate metadata definition namespace "
        f"with the same name of {name}"
    )


def namespace_protected(name: str) -> Forbidden:
    return Forbidden(f"Metadata definition namespace {name} is protected and cannot be deleted.")


def property_not_found(name: str, namespace: str) -> NotFound:
    return NotFound(
        f"The metadata definition property with name={name} was not found in namespace={namespace}."
    )


def property_exists(name: str, namespace: str) -> Conflict:
    return Conflict(
        f"A metadata definition property with name={name} already exists in namespace={namespace}."
    )


def property_protected(name: str) -> Forbidden:
    return Forbidden(f"Metadata definition property {name} is protected and cannot be deleted.")


def object_not_found(name: str, namespace: str) -> NotFound:
    return NotFound(
        f"The metadata definition object with name={name} was not found in namespace={namespace}."
    )


def object_exists(name: str, namespace: str) -> Conflict:
    return Conflict(
        f"A metadata definition object with name={name} already exists in namespace={namespace}."
    )


def object_protected(name: str) -> Forbidden:
    return Forbidden(f"Metadata definition object {name} is protected and cannot be deleted.")


def tag_not_found(name: str, namespace: str) -> NotFound:
    return NotFound(
        f"The metadata definition tag with name={name} was not found in namespace={namespace}."
    )


def tag_exists(name: str, namespace: str) -> Conflict:
    return Conflict(
        f"A metadata tag with name={name} already exists in namespace={namespace}. "
        "(Please note that metadata tag names are case insensitive)."
    )


def tag_protected(name: str) -> Forbidden:
    return Forbidden(f"Metadata definition tag {name} is protected and cannot be deleted.")


def association_exists(resource_type: str, namespace: str) -> Conflict:
    return Conflict(
        "The metadata definition resource-type association of "
        f"resource-type={resource_type} to namespace={namespace} already exists."
    )


def association_protected(resource_type: str) -> Forbidden:
    return Forbidden(
        f"Metadata definition resource-type-association {resource_type} is protected "
        "and cannot be deleted."
    )


def association_not_found(resource_type: str) -> NotFound:
    return NotFound(f"Failed to find resource type {resource_type} to delete")


def resource_type_not_associated(resource_type: str, namespace: str) -> NotFound:
    return NotFound(
        "The metadata definition resource-type association of "
        f"resource-type={resource_type} to namespace={namespace}, was not found."
    )


def unprefixed_property(name: str, prefix: str | None) -> NotFound:
    return NotFound(
        f"Property {name} does not start with the expected resource type association "
        f"prefix of '{prefix}'."
    )


def invalid_sort_dir(value: str) -> InvalidRequest:
    return InvalidRequest(f"Invalid sort direction: {value}")


# -- the port the database implements -----------------------------------------------


class MetadefRepository(Protocol):
    """Namespaces by name and their contents. Writes to a namespace that does not
    exist raise `namespace_hidden`; duplicates raise the matching `Conflict`.
    `update_*` and `remove_*` say whether the thing was there."""

    def get_namespace(self, name: str) -> Namespace | None: ...

    def list_namespaces(
        self, context: RequestContext, query: NamespaceQuery
    ) -> list[tuple[Namespace, tuple[Association, ...]]]: ...

    def namespace_detail(self, name: str) -> NamespaceDetail | None: ...

    def add_namespace(self, namespace: Namespace, contents: NamespaceContents) -> None: ...

    def update_namespace(self, name: str, namespace: Namespace) -> None: ...

    def delete_namespace(self, name: str) -> None: ...

    def clear(self, name: str, kind: str) -> None: ...

    def resource_types(self) -> list[ResourceType]: ...

    def associations(self, name: str) -> tuple[Association, ...]: ...

    def add_association(self, name: str, association: Association) -> None: ...

    def remove_association(self, name: str, resource_type: str) -> bool: ...

    def properties(self, name: str) -> dict[str, PropertySchema]: ...

    def get_property(self, name: str, property_name: str) -> PropertySchema | None: ...

    def add_property(
        self, name: str, property_name: str, schema: PropertySchema, now: dt.datetime
    ) -> None: ...

    def update_property(
        self, name: str, old: str, new: str, schema: PropertySchema, now: dt.datetime
    ) -> bool: ...

    def remove_property(self, name: str, property_name: str) -> bool: ...

    def objects(self, name: str) -> tuple[MetadefObject, ...]: ...

    def get_object(self, name: str, object_name: str) -> MetadefObject | None: ...

    def add_object(self, name: str, item: MetadefObject) -> None: ...

    def update_object(self, name: str, old: str, item: MetadefObject) -> bool: ...

    def remove_object(self, name: str, object_name: str) -> bool: ...

    def tags(self, name: str, query: TagQuery) -> tuple[MetadefTag, ...]: ...

    def get_tag(self, name: str, tag: str) -> MetadefTag | None: ...

    def add_tags(self, name: str, tags: Sequence[MetadefTag], replace: bool) -> None: ...

    def update_tag(self, name: str, old: str, tag: MetadefTag) -> bool: ...

    def remove_tag(self, name: str, tag: str) -> bool: ...

    def export(self) -> list[NamespaceDetail]: ...

    def load(self, details: Iterable[NamespaceDetail]) -> list[str]: ...

    def unload(self) -> int: ...

    def load_catalogue_once(self, details: Iterable[NamespaceDetail], now: dt.datetime) -> bool: ...


# -- documents: the API's bodies and Glance's catalogue files ------------------------

_EPOCH = dt.datetime(1970, 1, 1)


def namespace_of(document: Mapping[str, Any]) -> Namespace:
    """The namespace a (schema-valid) document describes; defaults as Glance's: a
    private, unprotected namespace, its owner None until the service sets it."""
    return Namespace(
        namespace=document["namespace"],
        display_name=document.get("display_name"),
        description=document.get("description"),
        visibility=NamespaceVisibility(document.get("visibility") or "private"),
        protected=bool(document.get("protected") or False),
        owner=document.get("owner"),
        created_at=_EPOCH,
        updated_at=_EPOCH,
    )


def association_of(document: Mapping[str, Any]) -> Association:
    return Association(
        name=document["name"],
        prefix=document.get("prefix"),
        properties_target=document.get("properties_target"),
        created_at=_EPOCH,
        updated_at=_EPOCH,
    )


def object_of(document: Mapping[str, Any]) -> MetadefObject:
    return MetadefObject(
        name=document["name"],
        description=document.get("description"),
        required=tuple(document.get("required") or ()),
        properties={
            name: property_schema(value)
            for name, value in (document.get("properties") or {}).items()
        },
        created_at=_EPOCH,
        updated_at=_EPOCH,
    )


def contents_of(document: Mapping[str, Any]) -> NamespaceContents:
    return NamespaceContents(
        associations=tuple(
            association_of(a) for a in document.get("resource_type_associations") or ()
        ),
        properties={
            name: property_schema(value)
            for name, value in (document.get("properties") or {}).items()
        },
        objects=tuple(object_of(o) for o in document.get("objects") or ()),
        tags=tuple(MetadefTag(t["name"], _EPOCH, _EPOCH) for t in document.get("tags") or ()),
    )


def catalogue_document(detail: NamespaceDetail) -> dict[str, Any]:
    """A namespace in the file format of Glance's `glance-manage db load_metadefs`
    (and `db export_metadefs`), which `namespace_of` and `contents_of` read back."""
    namespace, contents = detail.namespace, detail.contents
    document: dict[str, Any] = {
        "namespace": namespace.namespace,
        "display_name": namespace.display_name,
        "description": namespace.description,
        "visibility": namespace.visibility.value,
        "protected": namespace.protected,
    }
    if namespace.owner is not None:
        document["owner"] = namespace.owner
    document["resource_type_associations"] = [
        {
            key: value
            for key, value in (
                ("name", a.name),
                ("prefix", a.prefix),
                ("properties_target", a.properties_target),
            )
            if value is not None
        }
        for a in contents.associations
    ]
    document["properties"] = dict(contents.properties)
    document["objects"] = [
        {
            "name": o.name,
            "description": o.description,
            **({"required": list(o.required)} if o.required else {}),
            "properties": dict(o.properties),
        }
        for o in contents.objects
    ]
    document["tags"] = [{"name": t.name} for t in contents.tags]
    return document
