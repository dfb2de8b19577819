"""`ImageRepository` on SQLAlchemy Core: SQLite by default, PostgreSQL at scale."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import orjson
import sqlalchemy as sa

from skylens.db import ims, quotas
from skylens.db.engine import autocommit_reads, connected, transaction
from skylens.db.image_rows import (
    ATTRIBUTES,
    GET,
    MEMBERSHIP,
    ListReading,
    image_of,
    stale_upload,
)
from skylens.db.tables import (
    image_members,
    image_properties,
    image_tags,
    image_tombstones,
    image_uploads,
    images,
)
from skylens.domain.access import RequestContext
from skylens.domain.errors import Conflict, ImageNotFound, MemberLimitExceeded
from skylens.domain.images import Image, ImageStatus, Location, MemberStatus, utc_now
from skylens.domain.listing import ImagePage, ListQuery
from skylens.domain.members import ImageMember
from skylens.domain.quotas import QuotaClaim, Resource

_UPDATABLE = tuple(name for name in ATTRIBUTES if name not in ("id", "created_at"))
_MEMBER_COLUMN_NAMES = ("image_id", "member", "status", "created_at", "updated_at")
_MEMBER_COLUMNS = tuple(image_members.c[name] for name in _MEMBER_COLUMN_NAMES)


class SqlImageRepository:
    def __init__(self, engine: sa.Engine) -> None:
        self._engine = engine
        # Every read is one statement (a list keeps what it read of its marker),
        # so none needs a transaction of its own.
        self._reader = autocommit_reads(engine)

    # -- reads -----------------------------------------------------------------

    def get(self, image_id: str) -> Image | None:
        with connected(self._reader) as connection:
            return self._load(connection, image_id)

    def data_locations(
        self, image_ids: Sequence[str]
    ) -> dict[str, tuple[ImageStatus, tuple[str, ...]]]:
        if not image_ids:
            return {}
        query = sa.select(images.c.id, images.c.status, images.c.stores).where(
            images.c.id.in_(image_ids)
        )
        with connected(self._reader) as connection:
            rows = connection.execute(query).all()
        return {
            row.id: (ImageStatus(row.status), tuple(row.stores.split(",")) if row.stores else ())
            for row in rows
        }

    def live_uploads(self, renewed_since: dt.datetime) -> list[str]:
        query = sa.select(image_uploads.c.image_id).where(
            image_uploads.c.renewed_at >= renewed_since
        )
        with self._reader.connect() as connection:
            return sorted(connection.execute(query).scalars())

    def stale_uploads(self, renewed_before: dt.datetime) -> list[str]:
        lease = image_uploads.c.renewed_at
        saving_without_live_lease = (
            sa.select(images.c.id)
            .outerjoin(image_uploads, image_uploads.c.image_id == images.c.id)
            .where(stale_upload(renewed_before))
        )
        expired_leases = sa.select(image_uploads.c.image_id).where(lease < renewed_before)
        with connected(self._reader) as connection:
            found = connection.execute(sa.union(saving_without_live_lease, expired_leases))
            return sorted(found.scalars())

    def membership(self, image_id: str, project_id: str) -> MemberStatus | None:
        with connected(self._reader) as connection:
            status = connection.execute(
                MEMBERSHIP, {"image_id": image_id, "member": project_id}
            ).scalar()
        return MemberStatus(status) if status else None

    def shared_out(self, image_ids: Sequence[str]) -> set[str]:
        with connected(self._reader) as connection:
            return ims.shared_out(connection, list(image_ids))

    def list(self, context: RequestContext, query: ListQuery) -> ImagePage:
        reading = ListReading(context, query, self._engine.dialect.name)
        if reading.statement is not None:
            with connected(self._reader) as connection:
                while reading.statement is not None:
                    reading.take(connection.execute(reading.statement).all())
        return reading.page

    # -- writes ----------------------------------------------------------------

    def usage(
        self, project_id: str, resources: Iterable[Resource] = tuple(Resource)
    ) -> dict[Resource, int]:
        with connected(self._reader) as connection:
            return {
                resource: quotas.usage(connection, project_id, resource) for resource in resources
            }

    def add(self, image: Image, claims: Sequence[QuotaClaim] = ()) -> None:
        conflict = Conflict(f"Image ID {image.id} already exists!")
        try:
            with transaction(self._engine) as connection:
                if claims and image.owner is not None:
                    quotas.lock_project(connection, image.owner)
                    quotas.check_claims(connection, image.owner, claims)
                retired = connection.execute(
                    sa.select(image_tombstones.c.id).where(image_tombstones.c.id == image.id)
                ).first()
                if retired is not None:
                    raise conflict
                connection.execute(images.insert().values(**_columns_of(image), version=1))
                self._insert_children(connection, image.id, image.properties.items(), image.tags)
        except sa.exc.IntegrityError as error:
            raise conflict from error

    # -- members ---------------------------------------------------------------

    def members(self, image_id: str) -> Sequence[ImageMember]:
        query = (
            sa.select(*_MEMBER_COLUMNS)
            .where(image_members.c.image_id == image_id)
            .order_by(image_members.c.created_at, image_members.c.member)
        )
        with connected(self._reader) as connection:
            return [_member_of(row) for row in connection.execute(query)]

    def add_member(self, member: ImageMember, quota: int) -> None:
        count = (
            sa.select(sa.func.count())
            .select_from(image_members)
            .where(image_members.c.image_id == member.image_id)
            .scalar_subquery()
        )
        row = sa.select(
            sa.literal(member.image_id),
            sa.literal(member.member_id),
            sa.literal(member.status.value),
            sa.literal(member.created_at, sa.DateTime),
            sa.literal(member.updated_at, sa.DateTime),
        )
        if quota >= 0:
            # One statement, so SQLite checks and inserts under one write lock;
            # PostgreSQL also takes the image row's lock first (below).
            row = row.where(count < quota)
        # RETURNING says whether a row went in: psycopg reports no rowcount for this.
        insert = (
            image_members.insert()
            .from_select(list(_MEMBER_COLUMN_NAMES), row)
            .returning(image_members.c.member)
        )
        try:
            with transaction(self._engine) as connection:
                locked = connection.execute(
                    sa.select(images.c.id).where(images.c.id == member.image_id).with_for_update()
                ).first()
                if locked is None:
                    raise ImageNotFound(member.image_id)
                if connection.execute(insert).first() is not None:
                    return
                current = connection.execute(sa.select(count)).scalar_one()
        except sa.exc.IntegrityError as error:
            raise Conflict(
                f"Member {member.member_id} is duplicated for image {member.image_id}"
            ) from error
        raise MemberLimitExceeded(member.image_id, current + 1, quota)

    def set_member_status(
        self, image_id: str, member_id: str, status: MemberStatus, now: dt.datetime
    ) -> ImageMember | None:
        where = (image_members.c.image_id == image_id, image_members.c.member == member_id)
        with transaction(self._engine) as connection:
            changed = connection.execute(
                image_members.update().where(*where).values(status=status.value, updated_at=now)
            )
            if changed.rowcount != 1:
                return None
            return _member_of(connection.execute(sa.select(*_MEMBER_COLUMNS).where(*where)).one())

    def remove_member(self, image_id: str, member_id: str) -> bool:
        with transaction(self._engine) as connection:
            removed = connection.execute(
                image_members.delete().where(
                    image_members.c.image_id == image_id, image_members.c.member == member_id
                )
            )
        return bool(removed.rowcount == 1)

    # -- upload leases -----------------------------------------------------------

    def renew_upload(self, image_id: str, now: dt.datetime, holder: str | None = None) -> None:
        with transaction(self._engine) as connection:
            renewed = connection.execute(
                sa.update(image_uploads)
                .where(image_uploads.c.image_id == image_id)
                .values(renewed_at=now, holder=holder)
            )
            if renewed.rowcount == 0:
                connection.execute(
                    sa.insert(image_uploads).values(
                        image_id=image_id, renewed_at=now, holder=holder
                    )
                )

    def end_upload(self, image_id: str) -> None:
        with transaction(self._engine) as connection:
            connection.execute(sa.delete(image_uploads).where(image_uploads.c.image_id == image_id))

    def update(
        self,
        image_id: str,
        change: Callable[[Image], Image],
        claims: Callable[[Image], Sequence[QuotaClaim]] | None = None,
    ) -> Image:
        # Writers of one image take turns on its row, so each changes the image as
        # the previous one left it: none is refused and no change is lost.
        claimed: Sequence[QuotaClaim] = ()
        claimed_for: str | None = None
        if claims is not None:
            # Limits may come from Keystone: ask before taking the lock, not under it.
            before = self.get(image_id)
            if before is None:
                raise ImageNotFound(image_id)
            claimed, claimed_for = claims(before), before.owner
        with transaction(self._engine) as connection:
            current = self._locked(connection, image_id)
            changed = change(current)
            if changed is current:
                return current
            if claims is not None and current.owner != claimed_for:
                claimed = claims(current)  # the owner changed meanwhile: rare
            if claimed and current.owner is not None:
                quotas.lock_project(connection, current.owner)
                quotas.check_claims(connection, current.owner, claimed)
            if changed.status is ImageStatus.DELETED:
                self._delete(connection, current)
            else:
                self._store(connection, current, changed)
        return changed

    def _locked(self, connection: sa.Connection, image_id: str) -> Image:
        """The image as the last writer left it, locked until the transaction ends.

        PostgreSQL: its row, FOR UPDATE (READ COMMITTED: the load after the lock sees
        the writer that held it). SQLite: the database's write lock, taken by a write
        that changes nothing (pysqlite begins the transaction at the first write).
        """
        if connection.dialect.name == "sqlite":
            connection.execute(images.update().where(sa.false()).values(version=images.c.version))
        else:
            connection.execute(
                sa.select(images.c.id).where(images.c.id == image_id).with_for_update()
            )
        loaded = self._load(connection, image_id)
        if loaded is None:
            raise ImageNotFound(image_id)
        return loaded

    def _store(self, connection: sa.Connection, before: Image, after: Image) -> None:
        values = _columns_of(after)
        connection.execute(
            images.update()
            .where(images.c.id == before.id)
            .values(
                {**{name: values[name] for name in _UPDATABLE}, "version": images.c.version + 1}
            )
        )
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

    @staticmethod
    def _delete(connection: sa.Connection, image: Image) -> None:
        for child in (image_properties, image_tags, image_members):
            connection.execute(child.delete().where(child.c.image_id == image.id))
        connection.execute(images.delete().where(images.c.id == image.id))
        connection.execute(
            image_tombstones.insert().values(id=image.id, owner=image.owner, deleted_at=utc_now())
        )

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

    @staticmethod
    def _load(connection: sa.Connection, image_id: str) -> Image | None:
        row = connection.execute(GET, {"image_id": image_id}).first()
        if row is None:
            return None
        return image_of(row, row.properties, row.tags)


def _member_of(row: Sequence[Any]) -> ImageMember:
    image_id, member_id, status, created_at, updated_at = row
    return ImageMember(image_id, member_id, MemberStatus(status), created_at, updated_at)


def _columns_of(image: Image) -> dict[str, Any]:
    values = {name: getattr(image, name) for name in ATTRIBUTES}
    values["status"] = image.status.value
    values["visibility"] = image.visibility.value
    values["stores"] = ",".join(image.stores) or None
    values["locations"] = _locations_column(image.locations)
    return values


def _locations_column(locations: Sequence[Location]) -> str | None:
    if not locations:
        return None
    rows = [
        {"url": loc.url, "store": loc.store, "metadata": dict(loc.metadata)} for loc in locations
    ]
    return orjson.dumps(rows).decode()
