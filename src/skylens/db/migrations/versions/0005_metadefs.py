"""Metadata definitions: namespaces, resource types and their associations,
properties, objects, tags; and whether the shipped catalogue was loaded.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def _namespace_child(name: str, *columns: sa.Column[object]) -> None:
    op.create_table(
        name,
        sa.Column("namespace_id", sa.Integer, nullable=False),
        sa.Column("name", sa.String(80), nullable=False),
        *columns,
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("updated_at", sa.DateTime, nullable=False),
        sa.ForeignKeyConstraint(
            ["namespace_id"], ["metadef_namespaces.id"], name=op.f(f"fk_{name}_namespace_id")
        ),
        sa.PrimaryKeyConstraint("namespace_id", "name", name=op.f(f"pk_{name}")),
    )


def upgrade() -> None:
    op.create_table(
        "metadef_namespaces",
        sa.Column("id", sa.Integer, nullable=False, autoincrement=True),
        sa.Column("namespace", sa.String(80), nullable=False),
        sa.Column("display_name", sa.String(80)),
        sa.Column("description", sa.Text),
        sa.Column("visibility", sa.String(32), nullable=False),
        sa.Column("protected", sa.Boolean, nullable=False),
        sa.Column("owner", sa.String(255)),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("updated_at", sa.DateTime, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_metadef_namespaces")),
    )
    op.create_index(
        "ix_metadef_namespaces_namespace", "metadef_namespaces", ["namespace"], unique=True
    )
    op.create_index(
        "ix_metadef_namespaces_created_at_id", "metadef_namespaces", ["created_at", "id"]
    )
    op.create_table(
        "metadef_resource_types",
        sa.Column("id", sa.Integer, nullable=False, autoincrement=True),
        sa.Column("name", sa.String(80), nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("updated_at", sa.DateTime, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_metadef_resource_types")),
    )
    op.create_index(
        "ix_metadef_resource_types_name", "metadef_resource_types", ["name"], unique=True
    )
    op.create_table(
        "metadef_associations",
        sa.Column("namespace_id", sa.Integer, nullable=False),
        sa.Column("resource_type_id", sa.Integer, nullable=False),
        sa.Column("prefix", sa.String(80)),
        sa.Column("properties_target", sa.String(80)),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("updated_at", sa.DateTime, nullable=False),
        sa.ForeignKeyConstraint(
            ["namespace_id"],
            ["metadef_namespaces.id"],
            name=op.f("fk_metadef_associations_namespace_id"),
        ),
        sa.ForeignKeyConstraint(
            ["resource_type_id"],
            ["metadef_resource_types.id"],
            name=op.f("fk_metadef_associations_resource_type_id"),
        ),
        sa.PrimaryKeyConstraint(
            "namespace_id", "resource_type_id", name=op.f("pk_metadef_associations")
        ),
    )
    op.create_index(
        "ix_metadef_associations_resource_type_id", "metadef_associations", ["resource_type_id"]
    )
    _namespace_child("metadef_properties", sa.Column("json_schema", sa.Text, nullable=False))
    _namespace_child(
        "metadef_objects",
        sa.Column("description", sa.Text),
        sa.Column("required", sa.Text),
        sa.Column("json_schema", sa.Text),
    )
    _namespace_child("metadef_tags")
    op.create_index(
        "ix_metadef_tags_namespace_id_created_at", "metadef_tags", ["namespace_id", "created_at"]
    )
    op.create_table(
        "metadef_catalogue",
        sa.Column("id", sa.Integer, nullable=False, autoincrement=False),
        sa.Column("loaded_at", sa.DateTime, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_metadef_catalogue")),
    )


def downgrade() -> None:
    for table in (
        "metadef_catalogue",
        "metadef_tags",
        "metadef_objects",
        "metadef_properties",
        "metadef_associations",
        "metadef_resource_types",
        "metadef_namespaces",
    ):
        op.drop_table(table)
