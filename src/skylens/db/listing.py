"""Translate a `ListQuery` into the conditions and order of a SELECT with keyset
paging (`image_rows.page_statement` puts them together, in one branch or two)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa

from skylens.db import ims, visibility
from skylens.db.expressions import value_equals
from skylens.db.tables import image_properties, image_tags, images
from skylens.domain.access import RequestContext
from skylens.domain.errors import InvalidFilter
from skylens.domain.images import ImageStatus, Visibility
from skylens.domain.listing import (
    AttributeFilter,
    ListQuery,
    Operator,
    SortDirection,
    SortKey,
    TimeFilter,
)

_NULLABLE_SORT_KEYS = frozenset({"name", "container_format", "disk_format", "size"})

_COMPARATORS = {
    Operator.EQ: lambda column, value: column == value,
    Operator.NEQ: lambda column, value: column != value,
    Operator.GT: lambda column, value: column > value,
    Operator.GTE: lambda column, value: column >= value,
    Operator.LT: lambda column, value: column < value,
    Operator.LTE: lambda column, value: column <= value,
}


def listed(
    context: RequestContext, query: ListQuery, dialect: str
) -> tuple[sa.ColumnElement[bool], ...]:
    """The rows the caller may list: one condition per branch of the page's
    statement (see `visibility.listed_as`), never two admitting the same row."""
    shown = _shown(query)
    if shown is not None:
        # One branch on SQLite: the branches' statement (a compound of
        # parenthesised, limited SELECTs) is PostgreSQL's syntax; SQLite walks the
        # visibility's index as before.
        return visibility.listed_as(
            context, shown, query.member_status, branches=dialect == "postgresql"
        )
    # PostgreSQL probes memberships per row (see `visibility._member`).
    return (
        visibility.listed(
            context,
            query.member_status,
            query.visibility_filter_given,
            per_row_membership=dialect == "postgresql",
        ),
    )


def filter_conditions(query: ListQuery) -> list[sa.ColumnElement[bool]]:
    """Every condition of the list but who may see the rows (`listed`)."""
    conditions = [
        images.c.os_hidden == query.os_hidden,
        # Killed images are never listed (they can still be shown), as in Glance.
        images.c.status != ImageStatus.KILLED.value,
    ]
    shown = _shown(query)
    if shown is not None:
        conditions.append(images.c.visibility == shown.value)
    conditions.extend(_attribute_condition(f) for f in query.attributes)
    conditions.extend(_time_condition(f) for f in query.times)
    if query.ims is not None:
        conditions.extend(ims.conditions(query.ims, query.tags))
        return conditions + _property_conditions(query)
    tags = [image_tags.c.value == tag for tag in dict.fromkeys(query.tags)]
    return conditions + _all_of(image_tags, tags) + _property_conditions(query)


def _shown(query: ListQuery) -> Visibility | None:
    """The one visibility the list is filtered on; None when it is not, or when
    the IMS profile's visibilities take the place of the filter."""
    widened = query.ims is not None and query.ims.visibilities
    return None if widened else query.visibility


def _property_conditions(query: ListQuery) -> list[sa.ColumnElement[bool]]:
    matches = [
        sa.and_(
            image_properties.c.name == name,
            value_equals(image_properties.c.value, sa.literal(value, sa.Text)),
        )
        for name, value in query.properties.items()
    ]
    return _all_of(image_properties, matches)


def _all_of(
    children: sa.Table, matches: list[sa.ColumnElement[bool]]
) -> list[sa.ColumnElement[bool]]:
    """Images with a row of `children` for each of `matches` (which match
    distinct rows): at most two conditions, however many matches.

    The first match is an EXISTS, which PostgreSQL may turn into a join and so
    drive the query from the child's index when few rows match. The rest are
    counted by one correlated subquery, which both backends probe per candidate.
    One EXISTS each instead, PostgreSQL plans as that many joins and searches
    their orders: 3 s of planning for 100 tags, 13 s for 100 properties.
    """
    if not matches:
        return []
    own = children.c.image_id == images.c.id
    found: list[sa.ColumnElement[bool]] = [sa.exists().where(own, matches[0])]
    rest = matches[1:]
    if rest:
        count = sa.select(sa.func.count()).where(own, sa.or_(*rest)).scalar_subquery()
        found.append(count == len(rest))
    return found


def _attribute_condition(attribute_filter: AttributeFilter) -> sa.ColumnElement[bool]:
    column = images.c[attribute_filter.attribute]
    if attribute_filter.operator is Operator.IN:
        return column.in_(attribute_filter.values)
    compare = _COMPARATORS.get(attribute_filter.operator)
    if compare is None:
        raise InvalidFilter(f"Unable to filter by unknown operator '{attribute_filter.operator}'.")
    # gte/lte come from `<attribute>_min`/`_max` range filters.
    result: sa.ColumnElement[bool] = compare(column, attribute_filter.values[0])
    return result


def _time_condition(time_filter: TimeFilter) -> sa.ColumnElement[bool]:
    compare = _COMPARATORS.get(time_filter.operator)
    if compare is None:
        raise InvalidFilter(f"Unable to filter by unknown operator '{time_filter.operator}'.")
    result: sa.ColumnElement[bool] = compare(images.c[time_filter.attribute], time_filter.value)
    return result


def order_by(
    sort: tuple[SortKey, ...], dialect: str, columns: sa.ColumnCollection[str, Any] = images.c
) -> list[sa.UnaryExpression[Any]]:
    """ORDER BY with NULL as the smallest value (SQLite's own order, so only
    PostgreSQL is told; saying it to SQLite would keep it off the indexes).

    `columns`: those of `images`, or of a subquery selecting them."""
    clauses = []
    for key in sort:
        column = columns[key.attribute]
        explicit_nulls = dialect != "sqlite" and key.attribute in _NULLABLE_SORT_KEYS
        if key.direction is SortDirection.ASC:
            clause = column.asc().nulls_first() if explicit_nulls else column.asc()
        else:
            clause = column.desc().nulls_last() if explicit_nulls else column.desc()
        clauses.append(clause)
    return clauses


def after_marker(sort: tuple[SortKey, ...], marker: Mapping[Any, Any]) -> sa.ColumnElement[bool]:
    """Rows strictly after `marker` in `sort` order, with NULL as the smallest value.

    Nested from the last key out, `a > x OR (a = x AND (b > y OR (b = y AND ...)))`,
    so the condition grows with the number of keys, not with its square."""
    condition: sa.ColumnElement[bool] | None = None
    for key in reversed(sort):
        column = images.c[key.attribute]
        value = marker[key.attribute]
        nullable = key.attribute in _NULLABLE_SORT_KEYS
        after, equal = _after_and_equal(column, value, key.direction, nullable)
        condition = after if condition is None else sa.or_(after, sa.and_(equal, condition))
    assert condition is not None, "a list's order is never empty"
    return condition


def _after_and_equal(
    column: sa.Column[Any], value: Any, direction: SortDirection, nullable: bool
) -> tuple[sa.ColumnElement[bool], sa.ColumnElement[bool]]:
    if value is None:
        equal = column.is_(None)
        after = column.is_not(None) if direction is SortDirection.ASC else sa.false()
        return after, equal
    if direction is SortDirection.ASC:
        return column > value, column == value
    if nullable:
        return sa.or_(column < value, column.is_(None)), column == value
    return column < value, column == value
