"""An image as one row: the statements that read images, and the row -> `Image`.

Shared by the repository (SQLAlchemy, either backend) and the PostgreSQL fast
reads (`db/reads.py`), so both read exactly the same columns the same way.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Generator, Mapping, Sequence
from typing import Any

import orjson
import sqlalchemy as sa

from skylens.db import listing, visibility
from skylens.db.expressions import json_array_agg, json_object_agg
from skylens.db.tables import image_members, image_properties, image_tags, image_uploads, images
from skylens.domain.access import RequestContext
from skylens.domain.errors import InvalidFilter
from skylens.domain.images import Image, ImageStatus, Location, Visibility
from skylens.domain.listing import ImagePage, ListQuery

COLUMNS = tuple(column for column in images.c if column.name != "version")
ATTRIBUTES = tuple(column.name for column in COLUMNS)


def children(image_id: sa.ColumnElement[str]) -> tuple[sa.Label[str], sa.Label[str]]:
    """An image's properties and tags as two JSON columns, so one row is one image."""
    properties = (
        sa.select(json_object_agg(image_properties.c.name, image_properties.c.value))
        .where(image_properties.c.image_id == image_id)
        .scalar_subquery()
    )
    tags = (
        sa.select(json_array_agg(image_tags.c.value))
        .where(image_tags.c.image_id == image_id)
        .scalar_subquery()
    )
    return properties.label("properties"), tags.label("tags")


# Built once: executing a ready statement skips its construction and cache key.
GET = sa.select(*COLUMNS, *children(images.c.id)).where(images.c.id == sa.bindparam("image_id"))
MEMBERSHIP = sa.select(image_members.c.status).where(
    image_members.c.image_id == sa.bindparam("image_id"),
    image_members.c.member == sa.bindparam("member"),
)


def stale_upload(before: dt.datetime) -> sa.ColumnElement[bool]:
    """An upload (`saving`) or a stage under way (`uploading` without a size: staged
    data has one and waits for its import) whose lease was last renewed before
    `before`, or that holds no lease and has not changed since: its process is gone.
    The statement outer-joins `image_uploads` on the image."""
    lease = image_uploads.c.renewed_at
    return sa.and_(
        sa.or_(
            images.c.status == ImageStatus.SAVING.value,
            sa.and_(images.c.status == ImageStatus.UPLOADING.value, images.c.size.is_(None)),
        ),
        sa.or_(lease < before, sa.and_(lease.is_(None), images.c.updated_at < before)),
    )


class ListReading:
    """One list's reads, for the caller to run on its own connection: the marker
    image's row (if the list has a marker), then the page after it. Shared by the
    repository (SQLAlchemy, on a thread) and the PostgreSQL reads (psycopg,
    awaited), so both page alike.

    Run `statement` and `take` its rows until `statement` is None; then `page` is
    the answer. A statement that failed may be run again (on another connection).
    """

    def __init__(self, context: RequestContext, query: ListQuery, dialect: str) -> None:
        self._steps = _list_steps(context, query, dialect)
        self._page: ImagePage | None = None
        self.statement: sa.Select[Any] | None = None
        self._advance(None)

    def take(self, rows: Sequence[Sequence[Any]]) -> None:
        """The rows `statement` returned: the next statement, or the page, follows."""
        self._advance(rows)

    @property
    def page(self) -> ImagePage:
        assert self._page is not None, "the page comes after the last statement"
        return self._page

    def _advance(self, rows: Sequence[Sequence[Any]] | None) -> None:
        try:
            self.statement = next(self._steps) if rows is None else self._steps.send(rows)
        except StopIteration as done:
            self.statement, self._page = None, done.value


def _list_steps(
    context: RequestContext, query: ListQuery, dialect: str
) -> Generator[sa.Select[Any], Sequence[Sequence[Any]], ImagePage]:
    """Yields each statement, is sent the rows it returned, returns the page."""
    if query.limit <= 0:
        return ImagePage(images=(), next_marker=None)
    marker = None
    if query.marker is not None:
        found = yield marker_statement(context, query.marker)
        if not found:
            raise InvalidFilter(f"No image found with ID {query.marker}")
        marker = dict(zip(ATTRIBUTES, found[0], strict=True))
    rows = yield page_statement(context, query, dialect, marker)
    listed = [image_of(row, row[-2], row[-1]) for row in rows]
    next_marker = listed[-1].id if len(listed) == query.limit else None
    return ImagePage(images=tuple(listed), next_marker=next_marker)


def marker_statement(context: RequestContext, marker_id: str) -> sa.Select[Any]:
    """The columns of a list's marker image, if the caller may see it."""
    return sa.select(*COLUMNS).where(images.c.id == marker_id, visibility.visible(context))


def page_statement(
    context: RequestContext,
    query: ListQuery,
    dialect: str,
    marker: Mapping[Any, Any] | None,
) -> sa.Select[Any]:
    """One page of a list: the filtered, ordered, limited images as a subquery, and
    around it the children of its rows only (their subqueries run once per row of
    the page, after the filtering and the limit).

    Where who may list the rows comes in branches (`listing.listed`), each branch
    is ordered and limited on its own and the page is the first `limit` rows of
    their union: the planner plans each branch for its own rows."""
    conditions = listing.filter_conditions(query)
    if marker is not None:
        conditions.append(listing.after_marker(query.sort, marker))
    order = listing.order_by(query.sort, dialect)
    branches = [
        sa.select(*COLUMNS).where(listed, *conditions).order_by(*order).limit(query.limit)
        for listed in listing.listed(context, query, dialect)
    ]
    if len(branches) == 1:
        page = branches[0].subquery("page")
    else:
        union = sa.union_all(*branches).subquery("branches")
        page = (
            sa.select(union)
            .order_by(*listing.order_by(query.sort, dialect, union.c))
            .limit(query.limit)
            .subquery("page")
        )
    return sa.select(page, *children(page.c.id)).order_by(
        *listing.order_by(query.sort, dialect, page.c)
    )


def image_of(row: Sequence[Any], properties: str | None, tags: str | None) -> Image:
    """An image from its `COLUMNS` (first in `row`) and its children's JSON."""
    values = dict(zip(ATTRIBUTES, row, strict=False))
    values["status"] = ImageStatus(values["status"])
    values["visibility"] = Visibility(values["visibility"])
    values["stores"] = tuple(values["stores"].split(",")) if values["stores"] else ()
    values["locations"] = _locations_of(values["locations"])
    return Image(
        **values,
        tags=frozenset(orjson.loads(tags)) if tags else frozenset(),
        properties=orjson.loads(properties) if properties else {},
    )


def _locations_of(column: str | None) -> tuple[Location, ...]:
    if not column:
        return ()
    return tuple(
        Location(row["url"], row["store"], row["metadata"]) for row in orjson.loads(column)
    )
