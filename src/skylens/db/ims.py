"""The SQL twin of `skylens.domain.ims.image_type`, and the IMS list filters."""

from __future__ import annotations

import sqlalchemy as sa

from skylens.db.tables import image_members, image_tags, images
from skylens.domain.images import Visibility
from skylens.domain.ims import ImageType, ImsQuery, legacy_tag


def has_members() -> sa.ColumnElement[bool]:
    return sa.exists().where(image_members.c.image_id == images.c.id)


def of_type(image_type: ImageType) -> sa.ColumnElement[bool]:
    """Rows whose `image_type` is `image_type`."""
    shared = sa.and_(images.c.visibility == Visibility.SHARED.value, has_members())
    if image_type is ImageType.GOLD:
        return images.c.visibility == Visibility.PUBLIC.value
    if image_type is ImageType.SHARED:
        return shared
    return sa.and_(images.c.visibility != Visibility.PUBLIC.value, sa.not_(shared))


def conditions(query: ImsQuery, tags: tuple[str, ...]) -> list[sa.ColumnElement[bool]]:
    """The profile's conditions; `tags` are those the standard filter leaves to it."""
    found: list[sa.ColumnElement[bool]] = []
    if not query.registered:
        found.append(sa.false())
    if query.image_type is not None:
        found.append(of_type(query.image_type))
    if query.visibilities:
        found.append(images.c.visibility.in_([v.value for v in query.visibilities]))
    for tag in tags:
        legacy = legacy_tag(tag) if query.legacy_tags else None
        forms = [tag] if legacy is None else [tag, legacy]
        found.append(
            sa.exists().where(image_tags.c.image_id == images.c.id, image_tags.c.value.in_(forms))
        )
    return found


def shared_out(connection: sa.Connection, image_ids: list[str]) -> set[str]:
    """Which of `image_ids` have at least one member."""
    if not image_ids:
        return set()
    statement = (
        sa.select(image_members.c.image_id)
        .where(image_members.c.image_id.in_(image_ids))
        .distinct()
    )
    return set(connection.execute(statement).scalars())
