"""The SQL twins of `skylens.domain.access.is_visible` and `is_listed`."""

from __future__ import annotations

import sqlalchemy as sa

from skylens.db.expressions import unindexed
from skylens.db.tables import image_members, images
from skylens.domain.access import RequestContext
from skylens.domain.images import MemberStatus, Visibility

_OPEN = (Visibility.PUBLIC.value, Visibility.COMMUNITY.value)
# An OR of these must not become one index lookup per term: see `unindexed`.
_owner_column = unindexed(images.c.owner)
_visibility_column = unindexed(images.c.visibility)


def _owned(context: RequestContext) -> sa.ColumnElement[bool]:
    if context.project_id is None:
        return sa.false()
    return _owner_column == context.project_id


def _member(context: RequestContext, status: MemberStatus | None) -> sa.ColumnElement[bool]:
    if context.project_id is None:
        return sa.false()
    condition = sa.exists().where(
        image_members.c.image_id == images.c.id,
        image_members.c.member == context.project_id,
    )
    if status is not None:
        condition = condition.where(image_members.c.status == status.value)
    return sa.and_(_visibility_column == Visibility.SHARED.value, condition)


def visible(context: RequestContext) -> sa.ColumnElement[bool]:
    """Rows `is_visible` admits."""
    if context.is_admin:
        return sa.true()
    return sa.or_(
        _owner_column.is_(None),
        _visibility_column.in_(_OPEN),
        _owned(context),
        _member(context, None),
    )


def listed(
    context: RequestContext, member_status: MemberStatus | None, visibility_filter_given: bool
) -> sa.ColumnElement[bool]:
    """Rows `is_listed` admits."""
    conditions: list[sa.ColumnElement[bool]] = []
    if not visibility_filter_given:
        conditions.append(sa.or_(_owned(context), _visibility_column != Visibility.COMMUNITY.value))
    if not context.is_admin:
        conditions.append(
            sa.or_(
                _visibility_column.in_(_OPEN),
                _owned(context),
                _member(context, member_status),
            )
        )
    return sa.and_(sa.true(), *conditions)
