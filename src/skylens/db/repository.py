"""`ImageRepository` on SQLAlchemy Core: SQLite by default, PostgreSQL at scale."""

from __future__ import annotations

import builtins
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import sqlalchemy as sa

from skylens.db import listing, visibility
from skylens.db.tables import image_members, image_properties, image_tags, image_tombstones, images
from skylens.domain.access import RequestContext
from skylens.domain.errors import Conflict, ImageNotFound, InvalidFilter
from skylens.domain.images import Image, ImageStatus, MemberStatus, Visibility, utc_now
from skylens.domain.listing import ImagePage, ListQuery

_COLUMNS = tuple(column for column in images.c if column.name != "version")
_ATTRIBUTES = tuple(column.name for column in _COLUMNS)
_UPDATABLE = tuple(name for name in _ATTRIBUTES if name not in ("id", "created_at"))
_MAX_ATTEMPTS = 20


class SqlImageRepository:
    def __init__(self, engine: sa.Engine) -> None:
        self._engine = engine

    # -- reads -----------------------------------------------------------------

    def get(self, image_id: str) -> Image | None:
        with self._engine.connect() as connection:
            loaded = self._load(connection, image_id)
        return loaded[0] if loaded else None

    def membership(self, image_id: str, project_id: str) -> MemberStatus | None:
        statement = sa.select(image_members.c.status).where(
            image_members.c.image_id == image_id, image_members.c.member == project_id
        )
        with self._engine.connect() as connection:
            status = connection.execute(statement).scalar()
        return MemberStatus(status) if status else None

    def list(self, context: RequestContext, query: ListQuery) -> ImagePage:
        if query.limit <= 0:
            return ImagePage(images=(), next_marker=None)
        conditions = listing.filter_conditions(context, query)
        with self._engine.connect() as connection:
            if query.marker is not None:
                conditions.append(self._after_marker(connection, context, query))
            statement = (
                sa.select(*_COLUMNS)
                .where(*conditions)
                .order_by(*listing.order_by(query.sort, self._engine.dialect.name))
                .limit(query.limit)
            )
            rows = connection.execute(statement).all()
            found = self._hydrate(connection, rows)
        next_marker = found[-1].id if len(found) == query.limit else None
        return ImagePage(images=tuple(found), next_marker=next_marker)

    def _after_marker(
        self, connection: sa.Connection, context: RequestContext, query: ListQuery
    ) -> sa.ColumnElement[bool]:
        assert query.marker is not None
        statement = sa.select(*_COLUMNS).where(
            images.c.id == query.marker, visibility.visible(context)
        )
        marker = connection.execute(statement).first()
        if marker is None:
            raise InvalidFilter(f"No image found with ID {query.marker}")
        return listing.after_marker(query.sort, marker)

    # -- writes ----------------------------------------------------------------

    def add(self, image: Image) -> None:
        conflict = Conflict(f"Image ID {image.id} already exists!")
        try:
            with self._engine.begin() as connection:
                retired = connection.execute(
                    sa.select(image_tombstones.c.id).where(image_tombstones.c.id == image.id)
                ).first()
                if retired is not None:
                    raise conflict
                connection.execute(images.insert().values(**_columns_of(image), version=1))
                self._insert_children(connection, image.id, image.properties.items(), image.tags)
        except sa.exc.IntegrityError as error:
            raise conflict from error

    def update(self, image_id: str, change: Callable[[Image], Image]) -> Image:
        for _attempt in range(_MAX_ATTEMPTS):
            with self._engine.connect() as connection:
                loaded = self._load(connection, image_id)
            if loaded is None:
                raise ImageNotFound(image_id)
            current, version = loaded
            changed = change(current)
            if changed is current:
                return current
            with self._engine.begin() as connection:
                if changed.status is ImageStatus.DELETED:
                    stored = self._delete(connection, current, version)
                else:
                    stored = self._store(connection, current, changed, version)
            if stored:
                return changed
        raise Conflict(f"Image {image_id} is being changed by other requests; try again.")

    def _store(self, connection: sa.Connection, before: Image, after: Image, version: int) -> bool:
        values = _columns_of(after)
        result = connection.execute(
            images.update()
            .where(images.c.id == before.id, images.c.version == version)
            .values({**{name: values[name] for name in _UPDATABLE}, "version": version + 1})
        )
        if result.rowcount != 1:
            return False
        removed = [
            name for name, value in before.properties.items() if after.properties.get(name) != value
        ]
        if removed:
            connection.execute(
                image_properties.delete().where(
                    image_properties.c.image_id == before.id, image_properties.c.name.in_(removed)
                )
            )
        added = [
            (name, value)
            for name, value in after.properties.items()
            if before.properties.get(name) != value
        ]
        if before.tags - after.tags:
            connection.execute(
                image_tags.delete().where(
                    image_tags.c.image_id == before.id,
                    image_tags.c.value.in_(before.tags - after.tags),
                )
            )
        self._insert_children(connection, before.id, added, after.tags - before.tags)
        return True

    def _delete(self, connection: sa.Connection, image: Image, version: int) -> bool:
        # Claim the row first: the version check is what makes the delete atomic.
        claimed = connection.execute(
            images.update()
            .where(images.c.id == image.id, images.c.version == version)
            .values(version=version + 1)
        )
        if claimed.rowcount != 1:
            return False
        for child in (image_properties, image_tags, image_members):
            connection.execute(child.delete().where(child.c.image_id == image.id))
        connection.execute(images.delete().where(images.c.id == image.id))
        connection.execute(
            image_tombstones.insert().values(id=image.id, owner=image.owner, deleted_at=utc_now())
        )
        return True

    # -- rows <-> images -------------------------------------------------------

    @staticmethod
    def _insert_children(
        connection: sa.Connection,
        image_id: str,
        properties: Iterable[tuple[str, str | None]],
        tags: Iterable[str],
    ) -> None:
        property_rows = [{"image_id": image_id, "name": n, "value": v} for n, v in properties]
        if property_rows:
            connection.execute(image_properties.insert(), property_rows)
        tag_rows = [{"image_id": image_id, "value": tag} for tag in tags]
        if tag_rows:
            connection.execute(image_tags.insert(), tag_rows)

    def _load(self, connection: sa.Connection, image_id: str) -> tuple[Image, int] | None:
        row = connection.execute(
            sa.select(*_COLUMNS, images.c.version).where(images.c.id == image_id)
        ).first()
        if row is None:
            return None
        image = self._hydrate(connection, [row])[0]
        return image, row.version

    @staticmethod
    def _hydrate(connection: sa.Connection, rows: Sequence[Any]) -> builtins.list[Image]:
        if not rows:
            return []
        ids = [row.id for row in rows]
        properties: dict[str, dict[str, str | None]] = defaultdict(dict)
        for image_id, name, value in connection.execute(
            sa.select(
                image_properties.c.image_id, image_properties.c.name, image_properties.c.value
            ).where(image_properties.c.image_id.in_(ids))
        ):
            properties[image_id][name] = value
        tags: dict[str, set[str]] = defaultdict(set)
        for image_id, value in connection.execute(
            sa.select(image_tags.c.image_id, image_tags.c.value).where(
                image_tags.c.image_id.in_(ids)
            )
        ):
            tags[image_id].add(value)
        return [_image_of(row, properties.get(row.id, {}), tags.get(row.id, ())) for row in rows]


def _columns_of(image: Image) -> dict[str, Any]:
    values = {name: getattr(image, name) for name in _ATTRIBUTES}
    values["status"] = image.status.value
    values["visibility"] = image.visibility.value
    return values


def _image_of(row: sa.Row[Any], properties: dict[str, str | None], tags: Iterable[str]) -> Image:
    mapping = row._mapping
    values = {name: mapping[name] for name in _ATTRIBUTES}
    values["status"] = ImageStatus(values["status"])
    values["visibility"] = Visibility(values["visibility"])
    return Image(**values, tags=frozenset(tags), properties=properties)
