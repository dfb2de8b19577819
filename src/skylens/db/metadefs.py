"""`MetadefRepository` on SQLAlchemy Core.

Namespaces are addressed by name; their children by the namespace's id, looked up
in the statement (or transaction) that uses it. Every list is one query: property
definitions and objects are JSON text in their rows, and a namespace list carries
its associations as one JSON column.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import orjson
import sqlalchemy as sa

from skylens.db.engine import autocommit_reads, connected, transaction
from skylens.db.tables import (
    metadef_associations,
    metadef_catalogue,
    metadef_namespaces,
    metadef_objects,
    metadef_properties,
    metadef_resource_types,
    metadef_tags,
)
from skylens.domain.access import RequestContext
from skylens.domain.errors import InvalidRequest, SkylensError
from skylens.domain.metadefs import (
    Association,
    MetadefObject,
    MetadefTag,
    Namespace,
    NamespaceContents,
    NamespaceDetail,
    NamespaceQuery,
    NamespaceVisibility,
    PropertySchema,
    ResourceType,
    TagQuery,
    association_exists,
    namespace_exists,
    namespace_hidden,
    namespace_not_found,
    namespace_rename_exists,
    object_exists,
    property_exists,
    tag_exists,
)

_NS = metadef_namespaces
_NS_COLUMNS = (
    _NS.c.namespace,
    _NS.c.display_name,
    _NS.c.description,
    _NS.c.visibility,
    _NS.c.protected,
    _NS.c.owner,
    _NS.c.created_at,
    _NS.c.updated_at,
)
_SORTABLE = {
    column.name: column
    for column in _NS.c
    if column.name not in ("description",)  # Text: not a sort key anywhere
}
_SORTABLE["description"] = _NS.c.description
_CHILDREN = (metadef_properties, metadef_objects, metadef_tags, metadef_associations)


def _namespace_id(name: str) -> sa.ScalarSelect[int]:
    return sa.select(_NS.c.id).where(_NS.c.namespace == name).scalar_subquery()


def visible_namespaces(context: RequestContext) -> sa.ColumnElement[bool]:
    """The SQL twin of `skylens.domain.metadefs.is_namespace_visible`."""
    if context.is_admin:
        return sa.true()
    public = _NS.c.visibility == NamespaceVisibility.PUBLIC.value
    if context.project_id is None:
        return public
    return sa.or_(public, _NS.c.owner == context.project_id)


class SqlMetadefRepository:
    def __init__(self, engine: sa.Engine) -> None:
        self._engine = engine
        self._reader = autocommit_reads(engine)

    # -- namespaces ----------------------------------------------------------------

    def get_namespace(self, name: str) -> Namespace | None:
        with connected(self._reader) as connection:
            row = connection.execute(sa.select(*_NS_COLUMNS).where(_NS.c.namespace == name)).first()
        return None if row is None else _namespace_of(row)

    def list_namespaces(
        self, context: RequestContext, query: NamespaceQuery
    ) -> list[tuple[Namespace, tuple[Association, ...]]]:
        conditions = [visible_namespaces(context)]
        if query.visibility is not None:
            conditions.append(_NS.c.visibility == query.visibility.value)
        if query.resource_types:
            conditions.append(
                sa.exists().where(
                    metadef_associations.c.namespace_id == _NS.c.id,
                    metadef_associations.c.resource_type_id == metadef_resource_types.c.id,
                    metadef_resource_types.c.name.in_(query.resource_types),
                )
            )
        keys = _sort_keys(query.sort_key)
        descending = query.sort_dir == "desc"
        with connected(self._reader) as connection:
            if query.marker is not None:
                # The service has judged whether the caller may page from it.
                marker = connection.execute(
                    sa.select(*keys).where(_NS.c.namespace == query.marker)
                ).first()
                if marker is None:
                    raise namespace_not_found(query.marker)
                conditions.append(_after(keys, tuple(marker), descending))
            statement = (
                sa.select(_NS.c.id, *_NS_COLUMNS)
                .where(*conditions)
                .order_by(*(key.desc() if descending else key.asc() for key in keys))
                .limit(query.limit)
            )
            rows = connection.execute(statement).all()
            associations = _page_associations(connection, [row.id for row in rows])
        return [(_namespace_of(row[1:]), associations.get(row.id, ())) for row in rows]

    def namespace_detail(self, name: str) -> NamespaceDetail | None:
        with connected(self._reader) as connection:
            row = connection.execute(
                sa.select(_NS.c.id, *_NS_COLUMNS).where(_NS.c.namespace == name)
            ).first()
            if row is None:
                return None
            namespace_id = row.id
            contents = NamespaceContents(
                associations=_read_associations(connection, namespace_id),
                properties=_read_properties(connection, namespace_id),
                objects=_read_objects(connection, namespace_id),
                tags=_read_tags(connection, namespace_id, TagQuery(sort_dir="asc")),
            )
        return NamespaceDetail(_namespace_of(row[1:]), contents)

    def add_namespace(self, namespace: Namespace, contents: NamespaceContents) -> None:
        try:
            with transaction(self._engine) as connection:
                namespace_id = _insert_namespace(connection, namespace)
                _insert_contents(connection, namespace_id, contents, namespace.created_at)
        except sa.exc.IntegrityError as error:
            raise namespace_exists(namespace.namespace) from error

    def update_namespace(self, name: str, namespace: Namespace) -> None:
        try:
            with transaction(self._engine) as connection:
                changed = connection.execute(
                    _NS.update()
                    .where(_NS.c.namespace == name)
                    .values(**_namespace_values(namespace, with_created=False))
                )
                if changed.rowcount != 1:
                    raise namespace_hidden(name)
        except sa.exc.IntegrityError as error:
            raise namespace_rename_exists(namespace.namespace) from error

    def delete_namespace(self, name: str) -> None:
        with transaction(self._engine) as connection:
            namespace_id = _locked_id(connection, name)
            for child in _CHILDREN:
                connection.execute(child.delete().where(child.c.namespace_id == namespace_id))
            connection.execute(_NS.delete().where(_NS.c.id == namespace_id))

    def clear(self, name: str, kind: str) -> None:
        """Delete all of a namespace's `objects`, `properties` or `tags`."""
        child = {"objects": metadef_objects, "properties": metadef_properties}.get(
            kind, metadef_tags
        )
        with transaction(self._engine) as connection:
            namespace_id = _locked_id(connection, name)
            connection.execute(child.delete().where(child.c.namespace_id == namespace_id))

    # -- resource types ----------------------------------------------------------------

    def resource_types(self) -> list[ResourceType]:
        table = metadef_resource_types
        statement = sa.select(table.c.name, table.c.created_at, table.c.updated_at).order_by(
            table.c.name
        )
        with connected(self._reader) as connection:
            return [ResourceType(*row) for row in connection.execute(statement)]

    def associations(self, name: str) -> tuple[Association, ...]:
        with connected(self._reader) as connection:
            return _read_associations(connection, _namespace_id(name))

    def add_association(self, name: str, association: Association) -> None:
        try:
            with transaction(self._engine) as connection:
                namespace_id = _locked_id(connection, name)
                _insert_associations(connection, namespace_id, [association])
        except sa.exc.IntegrityError as error:
            raise association_exists(association.name, name) from error

    def remove_association(self, name: str, resource_type: str) -> bool:
        table = metadef_associations
        type_id = (
            sa.select(metadef_resource_types.c.id)
            .where(metadef_resource_types.c.name == resource_type)
            .scalar_subquery()
        )
        with transaction(self._engine) as connection:
            removed = connection.execute(
                table.delete().where(
                    table.c.namespace_id == _namespace_id(name), table.c.resource_type_id == type_id
                )
            )
        return bool(removed.rowcount)

    # -- properties ------------------------------------------------------------------

    def properties(self, name: str) -> dict[str, PropertySchema]:
        with connected(self._reader) as connection:
            return _read_properties(connection, _namespace_id(name))

    def get_property(self, name: str, property_name: str) -> PropertySchema | None:
        table = metadef_properties
        statement = sa.select(table.c.json_schema).where(
            table.c.namespace_id == _namespace_id(name), table.c.name == property_name
        )
        with connected(self._reader) as connection:
            found = connection.execute(statement).scalar()
        return None if found is None else _json(found)

    def add_property(
        self, name: str, property_name: str, schema: PropertySchema, now: dt.datetime
    ) -> None:
        try:
            with transaction(self._engine) as connection:
                namespace_id = _locked_id(connection, name)
                _insert_properties(connection, namespace_id, {property_name: schema}, now)
        except sa.exc.IntegrityError as error:
            raise property_exists(property_name, name) from error

    def update_property(
        self, name: str, old: str, new: str, schema: PropertySchema, now: dt.datetime
    ) -> bool:
        table = metadef_properties
        values = {"name": new, "json_schema": _text(schema), "updated_at": now}
        return self._update_child(table, name, old, values, property_exists(new, name))

    def remove_property(self, name: str, property_name: str) -> bool:
        return self._remove_child(metadef_properties, name, property_name)

    # -- objects ---------------------------------------------------------------------

    def objects(self, name: str) -> tuple[MetadefObject, ...]:
        with connected(self._reader) as connection:
            return _read_objects(connection, _namespace_id(name))

    def get_object(self, name: str, object_name: str) -> MetadefObject | None:
        with connected(self._reader) as connection:
            found = _read_objects(connection, _namespace_id(name), object_name)
        return found[0] if found else None

    def add_object(self, name: str, item: MetadefObject) -> None:
        try:
            with transaction(self._engine) as connection:
                namespace_id = _locked_id(connection, name)
                _insert_objects(connection, namespace_id, [item])
        except sa.exc.IntegrityError as error:
            raise object_exists(item.name, name) from error

    def update_object(self, name: str, old: str, item: MetadefObject) -> bool:
        values = {**_object_values(item), "updated_at": item.updated_at}
        del values["created_at"]
        return self._update_child(
            metadef_objects, name, old, values, object_exists(item.name, name)
        )

    def remove_object(self, name: str, object_name: str) -> bool:
        return self._remove_child(metadef_objects, name, object_name)

    # -- tags ------------------------------------------------------------------------

    def tags(self, name: str, query: TagQuery) -> tuple[MetadefTag, ...]:
        with connected(self._reader) as connection:
            namespace_id = connection.execute(sa.select(_namespace_id(name))).scalar()
            return _read_tags(connection, namespace_id, query)

    def get_tag(self, name: str, tag: str) -> MetadefTag | None:
        table = metadef_tags
        statement = sa.select(table.c.name, table.c.created_at, table.c.updated_at).where(
            table.c.namespace_id == _namespace_id(name), table.c.name == tag
        )
        with connected(self._reader) as connection:
            row = connection.execute(statement).first()
        return None if row is None else MetadefTag(*row)

    def add_tags(self, name: str, tags: Sequence[MetadefTag], replace: bool) -> None:
        """Add `tags`, after removing every other tag if `replace`; all or none."""
        try:
            with transaction(self._engine) as connection:
                namespace_id = _locked_id(connection, name)
                if replace:
                    connection.execute(
                        metadef_tags.delete().where(metadef_tags.c.namespace_id == namespace_id)
                    )
                for tag in tags:  # one by one: the conflict names the tag
                    try:
                        with connection.begin_nested():
                            _insert_tags(connection, namespace_id, [tag])
                    except sa.exc.IntegrityError as error:
                        raise tag_exists(tag.name, name) from error
        except sa.exc.IntegrityError as error:
            raise tag_exists(tags[0].name if tags else "", name) from error

    def update_tag(self, name: str, old: str, tag: MetadefTag) -> bool:
        values = {"name": tag.name, "updated_at": tag.updated_at}
        return self._update_child(metadef_tags, name, old, values, tag_exists(tag.name, name))

    def remove_tag(self, name: str, tag: str) -> bool:
        return self._remove_child(metadef_tags, name, tag)

    # -- the catalogue -------------------------------------------------------------------

    def export(self) -> list[NamespaceDetail]:
        with connected(self._reader) as connection:
            names = connection.execute(sa.select(_NS.c.namespace).order_by(_NS.c.namespace))
            found = [self.namespace_detail(name) for name in names.scalars()]
        return [detail for detail in found if detail is not None]

    def load(self, details: Iterable[NamespaceDetail]) -> list[str]:
        """Add each namespace that does not exist yet, in one transaction; the names added."""
        added = []
        with transaction(self._engine) as connection:
            for detail in details:
                name = detail.namespace.namespace
                exists = connection.execute(sa.select(_namespace_id(name))).scalar()
                if exists is not None:
                    continue
                namespace_id = _insert_namespace(connection, detail.namespace)
                _insert_contents(
                    connection, namespace_id, detail.contents, detail.namespace.created_at
                )
                added.append(name)
        return added

    def unload(self) -> int:
        """Delete every namespace and resource type; how many namespaces there were."""
        with transaction(self._engine) as connection:
            for child in _CHILDREN:
                connection.execute(child.delete())
            removed = connection.execute(_NS.delete()).rowcount
            connection.execute(metadef_resource_types.delete())
        return int(removed)

    def load_catalogue_once(self, details: Iterable[NamespaceDetail], now: dt.datetime) -> bool:
        """Load `details` unless a catalogue was ever loaded into this database (or
        its schema is not migrated yet: `database.auto_upgrade = false` starts on any)."""
        try:
            with transaction(self._engine) as connection:
                if not sa.inspect(connection).has_table(metadef_catalogue.name):
                    return False
                connection.execute(metadef_catalogue.insert().values(id=1, loaded_at=now))
                for detail in details:
                    name = detail.namespace.namespace
                    if connection.execute(sa.select(_namespace_id(name))).scalar() is None:
                        namespace_id = _insert_namespace(connection, detail.namespace)
                        _insert_contents(
                            connection, namespace_id, detail.contents, detail.namespace.created_at
                        )
        except sa.exc.IntegrityError:
            return False  # loaded before, or by another process starting now
        return True

    # -- shared ------------------------------------------------------------------------

    def _update_child(
        self,
        table: sa.Table,
        name: str,
        old: str,
        values: Mapping[str, Any],
        conflict: SkylensError,
    ) -> bool:
        try:
            with transaction(self._engine) as connection:
                changed = connection.execute(
                    table.update()
                    .where(table.c.namespace_id == _namespace_id(name), table.c.name == old)
                    .values(**values)
                )
        except sa.exc.IntegrityError as error:
            raise conflict from error
        return bool(changed.rowcount)

    def _remove_child(self, table: sa.Table, name: str, child: str) -> bool:
        with transaction(self._engine) as connection:
            removed = connection.execute(
                table.delete().where(
                    table.c.namespace_id == _namespace_id(name), table.c.name == child
                )
            )
        return bool(removed.rowcount)


# -- reading -----------------------------------------------------------------------------


def _sort_keys(sort_key: str) -> tuple[sa.ColumnElement[Any], ...]:
    column = _SORTABLE.get(sort_key)
    if column is None:
        raise InvalidRequest(f"Invalid sort key: {sort_key}")
    keys = [sort_key, *(key for key in ("created_at", "id") if key != sort_key)]
    return tuple(_comparable(_SORTABLE[key]) for key in keys)


def _comparable(column: sa.ColumnElement[Any]) -> sa.ColumnElement[Any]:
    """NULL text sorts as the empty string, so that paging needs no NULL cases."""
    if isinstance(column.type, sa.String | sa.Text) and column.nullable:
        return sa.func.coalesce(column, "")
    return column


def _after(
    keys: Sequence[sa.ColumnElement[Any]], marker: Sequence[Any], descending: bool
) -> sa.ColumnElement[bool]:
    """Rows strictly after the marker's keys, in the sort order."""
    terms = []
    for index, key in enumerate(keys):
        beyond = key < marker[index] if descending else key > marker[index]
        earlier = [keys[i] == marker[i] for i in range(index)]
        terms.append(sa.and_(*earlier, beyond))
    return sa.or_(*terms)


def _page_associations(
    connection: sa.Connection, namespace_ids: Sequence[int] | int | sa.ScalarSelect[int]
) -> dict[int, tuple[Association, ...]]:
    """The associations of a page of namespaces (or of one), in one query."""
    which: sa.ColumnElement[bool]
    if isinstance(namespace_ids, Sequence):
        if not namespace_ids:
            return {}
        which = metadef_associations.c.namespace_id.in_(namespace_ids)
    else:
        which = metadef_associations.c.namespace_id == namespace_ids
    table, types = metadef_associations, metadef_resource_types
    statement = (
        sa.select(
            table.c.namespace_id,
            types.c.name,
            table.c.prefix,
            table.c.properties_target,
            table.c.created_at,
            table.c.updated_at,
        )
        .select_from(table.join(types, types.c.id == table.c.resource_type_id))
        .where(which)
        .order_by(table.c.namespace_id, types.c.name)
    )
    found: dict[int, list[Association]] = {}
    for row in connection.execute(statement):
        found.setdefault(row[0], []).append(Association(*row[1:]))
    return {key: tuple(value) for key, value in found.items()}


def _read_associations(
    connection: sa.Connection, namespace_id: int | sa.ScalarSelect[int]
) -> tuple[Association, ...]:
    found = _page_associations(connection, namespace_id)
    return next(iter(found.values()), ())


def _read_properties(
    connection: sa.Connection, namespace_id: int | sa.ScalarSelect[int]
) -> dict[str, PropertySchema]:
    table = metadef_properties
    statement = (
        sa.select(table.c.name, table.c.json_schema)
        .where(table.c.namespace_id == namespace_id)
        .order_by(table.c.name)
    )
    return {name: _json(text) for name, text in connection.execute(statement)}


def _read_objects(
    connection: sa.Connection,
    namespace_id: int | sa.ScalarSelect[int],
    name: str | None = None,
) -> tuple[MetadefObject, ...]:
    table = metadef_objects
    statement = (
        sa.select(
            table.c.name,
            table.c.description,
            table.c.required,
            table.c.json_schema,
            table.c.created_at,
            table.c.updated_at,
        )
        .where(table.c.namespace_id == namespace_id)
        .order_by(table.c.name)
    )
    if name is not None:
        statement = statement.where(table.c.name == name)
    return tuple(
        MetadefObject(
            name=row.name,
            description=row.description,
            required=tuple(_json(row.required) or ()) if row.required else (),
            properties=_json(row.json_schema) or {} if row.json_schema else {},
            created_at=row.created_at,
            updated_at=row.updated_at,
        )
        for row in connection.execute(statement)
    )


def _read_tags(
    connection: sa.Connection, namespace_id: int | sa.ScalarSelect[int] | None, query: TagQuery
) -> tuple[MetadefTag, ...]:
    if namespace_id is None:
        return ()
    table = metadef_tags
    if query.sort_key not in ("created_at", "updated_at", "name"):
        raise InvalidRequest(f"Invalid sort key: {query.sort_key}")
    keys: tuple[sa.ColumnElement[Any], ...] = tuple(
        table.c[key] for key in dict.fromkeys((query.sort_key, "created_at", "name"))
    )
    descending = query.sort_dir == "desc"
    conditions = [table.c.namespace_id == namespace_id]
    if query.marker is not None:
        marker = connection.execute(
            sa.select(*keys).where(*conditions, table.c.name == query.marker)
        ).first()
        if marker is not None:
            conditions.append(_after(keys, tuple(marker), descending))
    statement = (
        sa.select(table.c.name, table.c.created_at, table.c.updated_at)
        .where(*conditions)
        .order_by(*(key.desc() if descending else key.asc() for key in keys))
    )
    if query.limit is not None:
        statement = statement.limit(query.limit)
    return tuple(MetadefTag(*row) for row in connection.execute(statement))


def _namespace_of(row: Sequence[Any]) -> Namespace:
    namespace, display_name, description, visibility, protected, owner, created, updated = row[:8]
    return Namespace(
        namespace=namespace,
        display_name=display_name,
        description=description,
        visibility=NamespaceVisibility(visibility),
        protected=bool(protected),
        owner=owner,
        created_at=created,
        updated_at=updated,
    )


# -- writing -----------------------------------------------------------------------------


def _locked_id(connection: sa.Connection, name: str) -> int:
    """The namespace's id, its row locked until the transaction ends (PostgreSQL)."""
    statement = sa.select(_NS.c.id).where(_NS.c.namespace == name)
    if connection.dialect.name != "sqlite":
        statement = statement.with_for_update()
    namespace_id = connection.execute(statement).scalar()
    if namespace_id is None:
        raise namespace_hidden(name)
    return int(namespace_id)


def _namespace_values(namespace: Namespace, with_created: bool = True) -> dict[str, Any]:
    values = {
        "namespace": namespace.namespace,
        "display_name": namespace.display_name,
        "description": namespace.description,
        "visibility": namespace.visibility.value,
        "protected": namespace.protected,
        "owner": namespace.owner,
        "updated_at": namespace.updated_at,
    }
    if with_created:
        values["created_at"] = namespace.created_at
    return values


def _insert_namespace(connection: sa.Connection, namespace: Namespace) -> int:
    inserted = connection.execute(
        _NS.insert().values(**_namespace_values(namespace)).returning(_NS.c.id)
    )
    return int(inserted.scalar_one())


def _insert_contents(
    connection: sa.Connection, namespace_id: int, contents: NamespaceContents, now: dt.datetime
) -> None:
    """`contents` of a namespace created at `now`, the time its properties get."""
    _insert_associations(connection, namespace_id, contents.associations)
    _insert_properties(connection, namespace_id, contents.properties, now)
    _insert_objects(connection, namespace_id, contents.objects)
    _insert_tags(connection, namespace_id, contents.tags)


def _insert_associations(
    connection: sa.Connection, namespace_id: int, associations: Iterable[Association]
) -> None:
    types = metadef_resource_types
    for association in associations:
        type_id = connection.execute(
            sa.select(types.c.id).where(types.c.name == association.name)
        ).scalar()
        if type_id is None:
            type_id = connection.execute(
                types.insert()
                .values(
                    name=association.name,
                    created_at=association.created_at,
                    updated_at=association.created_at,
                )
                .returning(types.c.id)
            ).scalar_one()
        connection.execute(
            metadef_associations.insert().values(
                namespace_id=namespace_id,
                resource_type_id=type_id,
                prefix=association.prefix,
                properties_target=association.properties_target,
                created_at=association.created_at,
                updated_at=association.updated_at,
            )
        )


def _insert_properties(
    connection: sa.Connection,
    namespace_id: int,
    properties: Mapping[str, PropertySchema],
    now: dt.datetime,
) -> None:
    rows = [
        {
            "namespace_id": namespace_id,
            "name": name,
            "json_schema": _text(schema),
            "created_at": now,
            "updated_at": now,
        }
        for name, schema in properties.items()
    ]
    if rows:
        connection.execute(metadef_properties.insert(), rows)


def _object_values(item: MetadefObject) -> dict[str, Any]:
    return {
        "name": item.name,
        "description": item.description,
        "required": _text(list(item.required)) if item.required else None,
        "json_schema": _text(item.properties),
        "created_at": item.created_at,
        "updated_at": item.updated_at,
    }


def _insert_objects(
    connection: sa.Connection, namespace_id: int, objects: Iterable[MetadefObject]
) -> None:
    rows = [{"namespace_id": namespace_id, **_object_values(item)} for item in objects]
    if rows:
        connection.execute(metadef_objects.insert(), rows)


def _insert_tags(connection: sa.Connection, namespace_id: int, tags: Iterable[MetadefTag]) -> None:
    rows = [
        {
            "namespace_id": namespace_id,
            "name": tag.name,
            "created_at": tag.created_at,
            "updated_at": tag.updated_at,
        }
        for tag in tags
    ]
    if rows:
        connection.execute(metadef_tags.insert(), rows)


def _text(value: Any) -> str:
    return orjson.dumps(value).decode()


def _json(text: str | None) -> Any:
    return None if text is None else orjson.loads(text)
