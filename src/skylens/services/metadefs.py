"""Metadata definitions: Glance's checks, in Glance's order, around the repository.

Every call finds the namespace first and answers 404 if the caller may not see it;
then the policy rule of the call decides (`authorize_metadef`, through the same
`Policy` as the images, so a policy file overrides metadef rules too); then the
protected rules, and the repository.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable, Iterable, Sequence

from skylens.domain.access import RequestContext
from skylens.domain.errors import NotFound
from skylens.domain.images import utc_now
from skylens.domain.metadefs import (
    Association,
    MetadefAction,
    MetadefObject,
    MetadefPolicy,
    MetadefRepository,
    MetadefTag,
    Namespace,
    NamespaceContents,
    NamespaceDetail,
    NamespaceQuery,
    PropertySchema,
    ResourceType,
    TagQuery,
    association_not_found,
    association_protected,
    authorize_metadef,
    is_namespace_visible,
    namespace_forbidden,
    namespace_hidden,
    namespace_not_found,
    namespace_protected,
    object_not_found,
    object_protected,
    prefixed,
    property_not_found,
    property_protected,
    resource_type_not_associated,
    tag_not_found,
    tag_protected,
    unprefixed_property,
)

A = MetadefAction
Missing = Callable[[str], NotFound]


class MetadefService:
    def __init__(
        self,
        repository: MetadefRepository,
        policy: MetadefPolicy,
        clock: Callable[[], dt.datetime] = utc_now,
    ) -> None:
        self._repository = repository
        self._policy = policy
        self._clock = clock

    # -- namespaces ------------------------------------------------------------------

    def list_namespaces(
        self, context: RequestContext, query: NamespaceQuery
    ) -> list[tuple[Namespace, tuple[Association, ...]]]:
        self._authorize(context, A.GET_NAMESPACES)
        self._authorize(context, A.LIST_RESOURCE_TYPES)
        if query.marker is not None:
            marker = self._repository.get_namespace(query.marker)
            if marker is None:
                raise namespace_not_found(query.marker)
            # Glance's database refuses a marker it would not list, with 403; one
            # without owner it lists (only the policy below then hides it).
            if marker.owner is not None and not is_namespace_visible(context, marker):
                raise namespace_forbidden(query.marker)
        page = self._repository.list_namespaces(context, query)
        # As Glance: each listed namespace must also pass `get_metadef_namespace`
        # (the same rows under the default rules; fewer under a stricter file).
        return [
            (namespace, associations)
            for namespace, associations in page
            if self._policy.allows_metadef(context, A.GET_NAMESPACE, namespace)
        ]

    def show_namespace(
        self, context: RequestContext, name: str, resource_type: str | None = None
    ) -> NamespaceDetail:
        detail = self._repository.namespace_detail(name)
        if detail is None:
            raise namespace_not_found(name)
        if not is_namespace_visible(context, detail.namespace):
            raise NotFound("The resource could not be found.")
        for action in (A.GET_NAMESPACE, A.LIST_RESOURCE_TYPES, A.GET_OBJECTS):
            self._authorize(context, action, detail.namespace)
        self._authorize(context, A.GET_PROPERTIES, detail.namespace)
        self._authorize(context, A.GET_TAGS, detail.namespace)
        return prefixed(detail, resource_type) if resource_type else detail

    def create_namespace(
        self, context: RequestContext, namespace: Namespace, contents: NamespaceContents
    ) -> NamespaceDetail:
        """`namespace` as the client gave it: its owner None if none was given."""
        self._authorize(context, A.ADD_NAMESPACE)
        for given, action in (
            (contents.associations, A.ADD_ASSOCIATION),
            (contents.objects, A.ADD_OBJECT),
            (contents.properties, A.ADD_PROPERTY),
            (contents.tags, A.ADD_TAG),
        ):
            if given:
                self._authorize(context, action)
        owner = namespace.owner if namespace.owner is not None else context.project_id
        detail = _stamped(
            NamespaceDetail(dataclasses.replace(namespace, owner=owner), contents), self._clock()
        )
        self._repository.add_namespace(detail.namespace, detail.contents)
        return detail

    def update_namespace(self, context: RequestContext, name: str, changed: Namespace) -> Namespace:
        """Glance's PUT: what the body leaves out goes back to its default."""
        current = self._namespace(context, name)
        self._authorize(context, A.MODIFY_NAMESPACE, current)
        updated = dataclasses.replace(
            changed,
            owner=changed.owner or context.project_id,
            created_at=current.created_at,
            updated_at=self._clock(),
        )
        self._repository.update_namespace(name, updated)
        return updated

    def delete_namespace(self, context: RequestContext, name: str) -> None:
        namespace = self._namespace(context, name)
        self._authorize(context, A.DELETE_NAMESPACE, namespace)
        if namespace.protected:
            raise namespace_protected(name)
        self._repository.delete_namespace(name)

    def clear_namespace(self, context: RequestContext, name: str, kind: str) -> None:
        """Delete all of its `objects`, `properties` or `tags`."""
        namespace = self._namespace(context, name)
        self._authorize(context, A.DELETE_NAMESPACE, namespace)
        if kind == "tags":
            self._authorize(context, A.DELETE_TAGS, namespace)
        if namespace.protected:
            raise namespace_protected(name)
        self._repository.clear(name, kind)

    # -- resource types ------------------------------------------------------------------

    def resource_types(self, context: RequestContext) -> list[ResourceType]:
        self._authorize(context, A.LIST_RESOURCE_TYPES)
        return self._repository.resource_types()

    def associations(self, context: RequestContext, name: str) -> tuple[Association, ...]:
        namespace = self._namespace(context, name)
        self._authorize(context, A.LIST_RESOURCE_TYPES, namespace)
        self._authorize(context, A.GET_RESOURCE_TYPE, namespace)
        return self._repository.associations(name)

    def associate(
        self, context: RequestContext, name: str, association: Association
    ) -> Association:
        namespace = self._namespace(context, name)
        self._authorize(context, A.ADD_ASSOCIATION, namespace)
        now = self._clock()
        created = dataclasses.replace(association, created_at=now, updated_at=now)
        self._repository.add_association(name, created)
        return created

    def dissociate(self, context: RequestContext, name: str, resource_type: str) -> None:
        namespace = self._namespace(context, name)
        self._authorize(context, A.REMOVE_ASSOCIATION, namespace)
        if not any(a.name == resource_type for a in self._repository.associations(name)):
            raise association_not_found(resource_type)
        if namespace.protected:
            raise association_protected(resource_type)
        if not self._repository.remove_association(name, resource_type):
            raise association_not_found(resource_type)

    # -- properties ----------------------------------------------------------------------

    def properties(self, context: RequestContext, name: str) -> dict[str, PropertySchema]:
        namespace = self._namespace(context, name)
        self._authorize(context, A.GET_PROPERTIES, namespace)
        return self._repository.properties(name)

    def show_property(
        self,
        context: RequestContext,
        name: str,
        property_name: str,
        resource_type: str | None = None,
    ) -> tuple[str, PropertySchema]:
        """The property's name (as asked, prefix included) and definition."""
        namespace = self._namespace(context, name)
        self._authorize(context, A.GET_PROPERTY, namespace)
        stored_name = property_name
        if resource_type:
            self._authorize(context, A.GET_RESOURCE_TYPE, namespace)
            association = next(
                (a for a in self._repository.associations(name) if a.name == resource_type), None
            )
            if association is None:
                raise resource_type_not_associated(resource_type, name)
            prefix = association.prefix
            if not prefix or not property_name.startswith(prefix):
                raise unprefixed_property(property_name, prefix)
            stored_name = property_name[len(prefix) :]
        found = self._repository.get_property(name, stored_name)
        if found is None:
            raise property_not_found(stored_name, name)
        return stored_name, found

    def add_property(
        self, context: RequestContext, name: str, property_name: str, schema: PropertySchema
    ) -> PropertySchema:
        namespace = self._namespace(context, name)
        self._authorize(context, A.ADD_PROPERTY, namespace)
        self._repository.add_property(name, property_name, schema, self._clock())
        return schema

    def update_property(
        self,
        context: RequestContext,
        name: str,
        property_name: str,
        new_name: str,
        schema: PropertySchema,
    ) -> PropertySchema:
        namespace = self._namespace(context, name)
        self._authorize(context, A.MODIFY_PROPERTY, namespace)
        if not self._repository.update_property(
            name, property_name, new_name, schema, self._clock()
        ):
            raise property_not_found(property_name, name)
        return schema

    def remove_property(self, context: RequestContext, name: str, property_name: str) -> None:
        namespace = self._namespace(context, name)
        self._authorize(context, A.REMOVE_PROPERTY, namespace)
        if self._repository.get_property(name, property_name) is None:
            raise property_not_found(property_name, name)
        if namespace.protected:
            raise property_protected(property_name)
        if not self._repository.remove_property(name, property_name):
            raise property_not_found(property_name, name)

    # -- objects ---------------------------------------------------------------------------

    def objects(self, context: RequestContext, name: str) -> tuple[MetadefObject, ...]:
        namespace = self._namespace(context, name, missing=namespace_not_found)
        self._authorize(context, A.GET_OBJECTS, namespace)
        return self._repository.objects(name)

    def show_object(self, context: RequestContext, name: str, object_name: str) -> MetadefObject:
        namespace = self._namespace(context, name, missing=namespace_not_found)
        self._authorize(context, A.GET_OBJECT, namespace)
        found = self._repository.get_object(name, object_name)
        if found is None:
            raise object_not_found(object_name, name)
        return found

    def add_object(self, context: RequestContext, name: str, item: MetadefObject) -> MetadefObject:
        namespace = self._namespace(context, name, missing=namespace_not_found)
        self._authorize(context, A.ADD_OBJECT, namespace)
        now = self._clock()
        created = dataclasses.replace(item, created_at=now, updated_at=now)
        self._repository.add_object(name, created)
        return created

    def update_object(
        self, context: RequestContext, name: str, object_name: str, item: MetadefObject
    ) -> MetadefObject:
        namespace = self._namespace(context, name, missing=namespace_not_found)
        self._authorize(context, A.MODIFY_OBJECT, namespace)
        current = self._repository.get_object(name, object_name)
        if current is None:
            raise object_not_found(object_name, name)
        updated = dataclasses.replace(item, created_at=current.created_at, updated_at=self._clock())
        if not self._repository.update_object(name, object_name, updated):
            raise object_not_found(object_name, name)
        return updated

    def remove_object(self, context: RequestContext, name: str, object_name: str) -> None:
        namespace = self._namespace(context, name, missing=namespace_not_found)
        self._authorize(context, A.DELETE_OBJECT, namespace)
        if self._repository.get_object(name, object_name) is None:
            raise object_not_found(object_name, name)
        if namespace.protected:
            raise object_protected(object_name)
        if not self._repository.remove_object(name, object_name):
            raise object_not_found(object_name, name)

    # -- tags ------------------------------------------------------------------------------

    def tags(self, context: RequestContext, name: str, query: TagQuery) -> tuple[MetadefTag, ...]:
        namespace = self._namespace(context, name)
        self._authorize(context, A.GET_TAGS, namespace)
        return self._repository.tags(name, query)

    def show_tag(self, context: RequestContext, name: str, tag: str) -> MetadefTag:
        namespace = self._namespace(context, name)
        self._authorize(context, A.GET_TAG, namespace)
        found = self._repository.get_tag(name, tag)
        if found is None:
            raise tag_not_found(tag, name)
        return found

    def add_tag(self, context: RequestContext, name: str, tag: str) -> MetadefTag:
        namespace = self._namespace(context, name)
        self._authorize(context, A.ADD_TAG, namespace)
        now = self._clock()
        created = MetadefTag(tag, now, now)
        self._repository.add_tags(name, [created], replace=False)
        return created

    def add_tags(
        self, context: RequestContext, name: str, tags: Sequence[str], append: bool
    ) -> tuple[MetadefTag, ...]:
        """Replace the namespace's tags with `tags`, or add them if `append`."""
        namespace = self._namespace(context, name)
        self._authorize(context, A.ADD_TAGS, namespace)
        now = self._clock()
        created = tuple(MetadefTag(tag, now, now) for tag in tags)
        if created:
            self._repository.add_tags(name, created, replace=not append)
        return created

    def update_tag(self, context: RequestContext, name: str, tag: str, new_name: str) -> MetadefTag:
        namespace = self._namespace(context, name)
        self._authorize(context, A.MODIFY_TAG, namespace)
        current = self._repository.get_tag(name, tag)
        if current is None:
            raise tag_not_found(tag, name)
        updated = MetadefTag(new_name, current.created_at, self._clock())
        if not self._repository.update_tag(name, tag, updated):
            raise tag_not_found(tag, name)
        return updated

    def remove_tag(self, context: RequestContext, name: str, tag: str) -> None:
        namespace = self._namespace(context, name)
        self._authorize(context, A.DELETE_TAG, namespace)
        if self._repository.get_tag(name, tag) is None:
            raise tag_not_found(tag, name)
        if namespace.protected:
            raise tag_protected(tag)
        if not self._repository.remove_tag(name, tag):
            raise tag_not_found(tag, name)

    # -- the catalogue (administration, no caller) ----------------------------------------

    def export(self) -> list[NamespaceDetail]:
        return self._repository.export()

    def load(self, details: Iterable[NamespaceDetail]) -> list[str]:
        now = self._clock()
        return self._repository.load(_stamped(detail, now) for detail in details)

    def unload(self) -> int:
        return self._repository.unload()

    def load_catalogue_once(self, details: Iterable[NamespaceDetail]) -> bool:
        now = self._clock()
        stamped = [_stamped(detail, now) for detail in details]
        return self._repository.load_catalogue_once(stamped, now)

    # -- rules ---------------------------------------------------------------------------

    def _authorize(
        self, context: RequestContext, action: MetadefAction, namespace: Namespace | None = None
    ) -> None:
        authorize_metadef(self._policy, context, action, namespace)

    def _namespace(
        self, context: RequestContext, name: str, missing: Missing = namespace_hidden
    ) -> Namespace:
        """The namespace if the caller may see it; 404 otherwise (`missing` words the
        404 of one that does not exist, as each of Glance's controllers does)."""
        namespace = self._repository.get_namespace(name)
        if namespace is None:
            raise missing(name)
        if not is_namespace_visible(context, namespace):
            raise namespace_hidden(name)
        return namespace


def _stamped(detail: NamespaceDetail, now: dt.datetime) -> NamespaceDetail:
    """`detail` with everything in it created (and updated) at `now`."""
    contents = detail.contents
    return NamespaceDetail(
        dataclasses.replace(detail.namespace, created_at=now, updated_at=now),
        NamespaceContents(
            associations=tuple(
                dataclasses.replace(a, created_at=now, updated_at=now)
                for a in contents.associations
            ),
            properties=contents.properties,
            objects=tuple(
                dataclasses.replace(o, created_at=now, updated_at=now) for o in contents.objects
            ),
            tags=tuple(
                dataclasses.replace(t, created_at=now, updated_at=now) for t in contents.tags
            ),
        ),
    )
