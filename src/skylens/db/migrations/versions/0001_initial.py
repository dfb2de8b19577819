"""The image catalogue: images, properties, tags, members, tombstones.

Revision ID: 0001
Revises:
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "images",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("name", sa.String(255)),
        sa.Column("status", sa.String(30), nullable=False),
        sa.Column("visibility", sa.String(20), nullable=False),
        sa.Column("protected", sa.Boolean, nullable=False),
        sa.Column("os_hidden", sa.Boolean, nullable=False),
        sa.Column("owner", sa.String(255)),
        sa.Column("checksum", sa.String(32)),
        sa.Column("os_hash_algo", sa.String(64)),
        sa.Column("os_hash_value", sa.String(128)),
        sa.Column("size", sa.BigInteger),
        sa.Column("virtual_size", sa.BigInteger),
        sa.Column("min_ram", sa.Integer, nullable=False),
        sa.Column("min_disk", sa.Integer, nullable=False),
        sa.Column("container_format", sa.String(32)),
        sa.Column("disk_format", sa.String(32)),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("updated_at", sa.DateTime, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_images"),
    )
    op.create_index("ix_images_created_at_id", "images", ["created_at", "id"])
    op.create_index("ix_images_updated_at_id", "images", ["updated_at", "id"])
    postgresql = op.get_context().dialect.name == "postgresql"
    for column in ("name", "size"):
        # NULL sorts first ascending everywhere; only PostgreSQL needs telling.
        first = sa.text(f"{column} ASC NULLS FIRST") if postgresql else column
        op.create_index(f"ix_images_{column}_created_at_id", "images", [first, "created_at", "id"])
    op.create_index("ix_images_owner_created_at", "images", ["owner", "created_at"])
    op.create_index("ix_images_visibility_created_at", "images", ["visibility", "created_at"])
    op.create_index("ix_images_status", "images", ["status"])
    op.create_index("ix_images_checksum", "images", ["checksum"])
    op.create_index("ix_images_os_hash_value", "images", ["os_hash_value"])

    op.create_table(
        "image_properties",
        sa.Column("image_id", sa.String(36), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("value", sa.Text),
        sa.ForeignKeyConstraint(["image_id"], ["images.id"], name="fk_image_properties_image_id"),
        sa.PrimaryKeyConstraint("image_id", "name", name="pk_image_properties"),
    )
    if postgresql:
        op.create_index(
            "ix_image_properties_value", "image_properties", ["value"], postgresql_using="hash"
        )
    else:
        op.create_index("ix_image_properties_name_value", "image_properties", ["name", "value"])

    op.create_table(
        "image_tags",
        sa.Column("image_id", sa.String(36), nullable=False),
        sa.Column("value", sa.String(255), nullable=False),
        sa.ForeignKeyConstraint(["image_id"], ["images.id"], name="fk_image_tags_image_id"),
        sa.PrimaryKeyConstraint("image_id", "value", name="pk_image_tags"),
    )
    op.create_index("ix_image_tags_value", "image_tags", ["value"])

    op.create_table(
        "image_members",
        sa.Column("image_id", sa.String(36), nullable=False),
        sa.Column("member", sa.String(255), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("updated_at", sa.DateTime, nullable=False),
        sa.ForeignKeyConstraint(["image_id"], ["images.id"], name="fk_image_members_image_id"),
        sa.PrimaryKeyConstraint("image_id", "member", name="pk_image_members"),
    )
    op.create_index(
        "ix_image_members_member_status_image_id",
        "image_members",
        ["member", "status", "image_id"],
    )

    op.create_table(
        "image_tombstones",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("owner", sa.String(255)),
        sa.Column("deleted_at", sa.DateTime, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_image_tombstones"),
    )


def downgrade() -> None:
    for table in ("image_tombstones", "image_members", "image_tags", "image_properties", "images"):
        op.drop_table(table)
