"""SQL expressions that each backend spells its own way.

- `unindexed(column)`: the column, but SQLite's planner may not drive a query
  through one of its indexes. SQLite, which keeps no statistics unless told to
  ANALYZE, turns `visibility IN (...) OR owner = ?` into one index lookup per
  term and then sorts every visible row, where walking the sort-order index and
  stopping after `limit` rows is a thousand times cheaper. The documented way to
  say so is a unary `+` (a no-op on any value, keeping the column's collation).
  PostgreSQL plans from statistics and gets the plain column.
- `value_equals(column, value)`: `column = value`, said so that PostgreSQL can use
  its index of the column's md5 (`ix_image_properties_name_md5_value`).
- `json_object_agg(key, value)` and `json_array_agg(value)`: the rows of a
  child table as one JSON text, so an image comes back as one row whatever its
  number of properties and tags.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement


class unindexed(FunctionElement[Any]):  # noqa: N801 - reads as the SQL it stands for
    inherit_cache = True

    def __init__(self, column: sa.ColumnElement[Any]) -> None:
        super().__init__(column)
        self.type = column.type


@compiles(unindexed)
def _unindexed(element: unindexed, compiler: SQLCompiler, **kw: Any) -> str:
    return compiler.process(element.clauses, **kw)


@compiles(unindexed, "sqlite")
def _unindexed_sqlite(element: unindexed, compiler: SQLCompiler, **kw: Any) -> str:
    return "+" + compiler.process(element.clauses, **kw)


class json_object_agg(FunctionElement[str]):  # noqa: N801
    """`{key: value, ...}` as JSON text; NULL (PostgreSQL) or `{}` over no rows."""

    type = sa.Text()
    inherit_cache = True


@compiles(json_object_agg)
def _json_object_agg(element: json_object_agg, compiler: SQLCompiler, **kw: Any) -> str:
    key, value = (compiler.process(clause, **kw) for clause in element.clauses)
    return f"CAST(json_object_agg({key}, {value} ORDER BY {key}) AS TEXT)"


@compiles(json_object_agg, "sqlite")
def _json_object_agg_sqlite(element: json_object_agg, compiler: SQLCompiler, **kw: Any) -> str:
    return f"json_group_object({compiler.process(element.clauses, **kw)})"


class json_array_agg(FunctionElement[str]):  # noqa: N801
    """`[value, ...]` as JSON text; NULL (PostgreSQL) or `[]` over no rows."""

    type = sa.Text()
    inherit_cache = True


@compiles(json_array_agg)
def _json_array_agg(element: json_array_agg, compiler: SQLCompiler, **kw: Any) -> str:
    return f"CAST(json_agg({compiler.process(element.clauses, **kw)}) AS TEXT)"


@compiles(json_array_agg, "sqlite")
def _json_array_agg_sqlite(element: json_array_agg, compiler: SQLCompiler, **kw: Any) -> str:
    return f"json_group_array({compiler.process(element.clauses, **kw)})"


class value_equals(FunctionElement[bool]):  # noqa: N801
    """`column = value`; on PostgreSQL also `md5(column) = md5(value)`, the form
    its btree index of long text values can answer."""

    type = sa.Boolean()
    inherit_cache = True


@compiles(value_equals)
def _value_equals(element: value_equals, compiler: SQLCompiler, **kw: Any) -> str:
    column, value = (compiler.process(clause, **kw) for clause in element.clauses)
    return f"(md5({column}) = md5({value}) AND {column} = {value})"


@compiles(value_equals, "sqlite")
def _value_equals_sqlite(element: value_equals, compiler: SQLCompiler, **kw: Any) -> str:
    column, value = (compiler.process(clause, **kw) for clause in element.clauses)
    return f"{column} = {value}"
