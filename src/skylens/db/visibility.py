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


def _member(
    context: RequestContext, status: MemberStatus | None, *, per_row: bool = False
) -> sa.ColumnElement[bool]:
    """Shared with the project (as a member with `status`, None: any).

    `per_row`: for PostgreSQL, probe the members' index for each candidate row.
    Left to itself, PostgreSQL evaluates an EXISTS under an OR as a "hashed
    SubPlan": before the first row, it hashes every membership of the project
    (14,000 at a million images: 10-20 ms), because it costs the filter as if
    the whole index walk ran, not the 25 rows a page stops at. An OFFSET in the
    subquery (OFFSET 0 changes no result) is what keeps PostgreSQL from turning
    the EXISTS into the hashable `id IN (...)` (its documented optimisation
    fence); each probe is then one lookup in (member, status, image_id)."""
    if context.project_id is None:
        return sa.false()
    probe = sa.select(image_members.c.image_id).where(
        image_members.c.image_id == images.c.id,
        image_members.c.member == context.project_id,
    )
    if status is not None:
        probe = probe.where(image_members.c.status == status.value)
    if per_row:
        probe = probe.offset(0)
    return sa.and_(_visibility_column == Visibility.SHARED.value, probe.exists())


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
    context: RequestContext,
    member_status: MemberStatus | None,
    visibility_filter_given: bool,
    *,
    per_row_membership: bool = False,
) -> sa.ColumnElement[bool]:
    """Rows `is_listed` admits.

    `per_row_membership`: see `_member`; for a page walked in sort order, where
    a few dozen probes beat hashing every membership of the project."""
    conditions: list[sa.ColumnElement[bool]] = []
    if not visibility_filter_given:
        conditions.append(sa.or_(_owned(context), _visibility_column != Visibility.COMMUNITY.value))
    if not context.is_admin:
        conditions.append(
            sa.or_(
                _visibility_column.in_(_OPEN),
                _owned(context),
                _member(context, member_status, per_row=per_row_membership),
            )
        )
    return sa.and_(sa.true(), *conditions)


def listed_as(
    context: RequestContext,
    shown: Visibility,
    member_status: MemberStatus | None,
    *,
    branches: bool = False,
) -> tuple[sa.ColumnElement[bool], ...]:
    """Rows `is_listed` admits in a list filtered on visibility `shown` (the
    statement's own condition keeps the other visibilities out): `listed` without
    the terms that condition makes false. One condition, or with `branches` two
    for `shared` that never admit the same row: the project's own shared images,
    and those shared with it that it does not own.

    Two branches, each ordered and limited by the page, for PostgreSQL. An OR of
    ownership and an EXISTS of membership can only be checked row by row, so the
    planner walks every shared image in order (1.8 s at a million images for a
    project that is a member of a few); alone in its branch, the EXISTS becomes a
    join the planner may drive from the project's memberships, and the owner's
    branch walks the owner's index."""
    if context.is_admin or shown.value in _OPEN:
        return (sa.true(),)
    if shown is Visibility.PRIVATE or context.project_id is None:
        return (_owned(context),)
    member = _member(context, member_status)
    if not branches:
        return (sa.or_(_owned(context), member),)
    return (_owned(context), sa.and_(_owner_column.is_distinct_from(context.project_id), member))
