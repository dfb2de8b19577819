"""The migrations build exactly `skylens.db.tables.metadata`, on both backends.

Some indexes exist on one dialect only (`Index.ddl_if`): PostgreSQL gets
NULLS FIRST sort keys and a hash index, SQLite plain btrees. Alembic's
autogenerate does not know `ddl_if`, so the comparison first keeps the
indexes meant for the dialect under test, then checks what autogenerate
cannot see (PostgreSQL sort order and index method) against the reflected
indexes.
"""

from __future__ import annotations

import datetime as dt
import uuid
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.sql import operators

from skylens.db.engine import alembic_config, create_engine, current_revision, upgrade
from skylens.db.tables import images, metadata
from tests.support.servers import postgres_database


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[sa.Engine]:
    """An engine on a fresh, empty database of each backend."""
    if request.param == "sqlite":
        fresh = create_engine(f"sqlite:///{tmp_path / 'fresh.db'}", pool_size=1)
        yield fresh
        fresh.dispose()
        return
    with postgres_database(f"skylens_migrations_{uuid.uuid4().hex[:12]}") as url:
        fresh = create_engine(url, pool_size=1)
        yield fresh
        fresh.dispose()


def _head(engine: sa.Engine) -> str:
    head = ScriptDirectory.from_config(alembic_config(engine)).get_current_head()
    assert head is not None
    return head


def _for_dialect(dialect: str) -> Any:
    """An autogenerate filter: drop metadata indexes `ddl_if`-ed to another dialect."""

    def include(obj: Any, _name: Any, type_: str, reflected: bool, _compare_to: Any) -> bool:
        if reflected or type_ != "index":
            return True
        ddl_if = getattr(obj, "_ddl_if", None)
        return ddl_if is None or ddl_if.dialect in (None, dialect)

    return include


def _schema_drift(engine: sa.Engine) -> list[Any]:
    with engine.connect() as connection:
        context = MigrationContext.configure(
            connection,
            opts={
                "compare_type": True,
                "compare_server_default": True,
                "include_object": _for_dialect(engine.dialect.name),
            },
        )
        with warnings.catch_warnings():
            # Alembic cannot compare expression indexes on SQLite, where this one
            # (PostgreSQL's only) is not built anyway; `_index_drift` compares it.
            warnings.filterwarnings(
                "ignore", "autogenerate skipping metadata-specified expression-based index"
            )
            return list(compare_metadata(context, metadata))


_SORTING = {
    operators.desc_op: "desc",
    operators.nulls_first_op: "nulls_first",
    operators.nulls_last_op: "nulls_last",
}


def _expected_index(index: sa.Index, dialect: str) -> tuple[Any, ...]:
    columns: list[str] = []
    sorting: dict[str, tuple[str, ...]] = {}
    for expression in index.expressions:
        modifiers: list[str] = []
        while isinstance(expression, sa.UnaryExpression):
            if expression.modifier in _SORTING:
                modifiers.insert(0, _SORTING[expression.modifier])
            expression = expression.element
        if isinstance(expression, sa.sql.functions.Function):  # an expression index
            arguments = ", ".join(column.name for column in expression.clauses)
            columns.append(f"{expression.name}({arguments})")
            continue
        assert isinstance(expression, sa.Column), expression
        columns.append(expression.name)
        if modifiers and dialect == "postgresql":
            sorting[expression.name] = tuple(modifiers)
    using = index.dialect_options["postgresql"]["using"] if dialect == "postgresql" else None
    return (
        tuple(columns),
        bool(index.unique),
        sorting,
        None if using == "btree" else using or None,
    )


def _reflected_index(reflected: Any) -> tuple[Any, ...]:
    using = reflected.get("dialect_options", {}).get("postgresql_using")
    return (
        tuple(reflected.get("expressions") or reflected["column_names"]),
        bool(reflected["unique"]),
        dict(reflected.get("column_sorting", {})),
        None if using == "btree" else using,
    )


def _index_drift(engine: sa.Engine) -> dict[str, tuple[Any, Any]]:
    """Indexes whose columns, uniqueness, sort order or method differ."""
    dialect = engine.dialect.name
    include = _for_dialect(dialect)
    expected = {
        str(index.name): _expected_index(index, dialect)
        for table in metadata.sorted_tables
        for index in table.indexes
        if include(index, index.name, "index", False, None)
    }
    inspector = sa.inspect(engine)
    actual = {
        str(reflected["name"]): _reflected_index(reflected)
        for table in metadata.sorted_tables
        for reflected in inspector.get_indexes(table.name)
    }
    return {
        name: (expected.get(name), actual.get(name))
        for name in expected.keys() | actual.keys()
        if expected.get(name) != actual.get(name)
    }


def test_upgrade_builds_exactly_the_declared_schema(engine: sa.Engine) -> None:
    assert current_revision(engine) is None

    upgrade(engine)

    assert current_revision(engine) == _head(engine)
    assert set(sa.inspect(engine).get_table_names()) == {
        *metadata.tables,
        "alembic_version",
    }
    assert _schema_drift(engine) == []
    assert _index_drift(engine) == {}


def test_dialect_specific_indexes_exist_only_where_meant(engine: sa.Engine) -> None:
    upgrade(engine)

    indexes = {index["name"]: index for index in sa.inspect(engine).get_indexes("image_properties")}

    if engine.dialect.name == "postgresql":
        assert set(indexes) == {"ix_image_properties_name_md5_value"}
        assert indexes["ix_image_properties_name_md5_value"]["expressions"] == [
            "name",
            "md5(value)",
        ]
        with engine.connect() as connection:
            statistics = connection.exec_driver_sql("SELECT stxname FROM pg_statistic_ext")
            assert "st_image_properties_name_value" in set(statistics.scalars())
    else:
        assert set(indexes) == {"ix_image_properties_name_value"}


def test_the_comparison_sees_drift(engine: sa.Engine) -> None:
    upgrade(engine)
    # PostgreSQL: the same columns without NULLS FIRST. SQLite reflects no sort
    # order (and needs none here), so there a column goes missing instead.
    columns = "size, created_at, id" if engine.dialect.name == "postgresql" else "size, id"
    with engine.begin() as connection:
        connection.execute(sa.text("DROP INDEX ix_images_size_created_at_id"))
        connection.execute(
            sa.text(f"CREATE INDEX ix_images_size_created_at_id ON images ({columns})")
        )
        connection.execute(sa.text("DROP INDEX ix_images_status"))

    drift = _index_drift(engine)

    assert set(drift) == {"ix_images_size_created_at_id", "ix_images_status"}
    assert ("add_index", "ix_images_status") in {
        (change[0], change[1].name) for change in _schema_drift(engine) if len(change) == 2
    }


def test_downgrade_to_base_then_upgrade_again(engine: sa.Engine) -> None:
    upgrade(engine)

    command.downgrade(alembic_config(engine), "base")

    assert current_revision(engine) is None
    assert set(sa.inspect(engine).get_table_names()) <= {"alembic_version"}
    upgrade(engine)
    assert current_revision(engine) == _head(engine)
    assert _schema_drift(engine) == []
    assert _index_drift(engine) == {}


def test_upgrade_is_idempotent_and_keeps_data(engine: sa.Engine) -> None:
    upgrade(engine)
    now = dt.datetime(2024, 1, 1)
    with engine.begin() as connection:
        connection.execute(
            images.insert().values(
                id=str(uuid.uuid4()),
                status="queued",
                visibility="shared",
                protected=False,
                os_hidden=False,
                min_ram=0,
                min_disk=0,
                created_at=now,
                updated_at=now,
                version=1,
            )
        )

    upgrade(engine)
    upgrade(engine, "head")

    assert current_revision(engine) == _head(engine)
    with engine.connect() as connection:
        assert connection.execute(sa.select(sa.func.count()).select_from(images)).scalar() == 1
    assert _schema_drift(engine) == []
