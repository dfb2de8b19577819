"""The image cache's index: each node's cached images and its prefetch queue.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "cached_images",
        sa.Column("node", sa.String(255), nullable=False),
        sa.Column("image_id", sa.String(36), nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("hits", sa.Integer, nullable=False),
        sa.Column("last_accessed", sa.DateTime, nullable=False),
        sa.Column("last_modified", sa.DateTime, nullable=False),
        sa.Column("checksum", sa.String(128)),
        sa.Column("fingerprint", sa.String(100), nullable=False),
        sa.PrimaryKeyConstraint("node", "image_id", name=op.f("pk_cached_images")),
    )
    op.create_index("ix_cached_images_image_id", "cached_images", ["image_id"])
    op.create_table(
        "cache_queue",
        sa.Column("node", sa.String(255), nullable=False),
        sa.Column("image_id", sa.String(36), nullable=False),
        sa.Column("queued_at", sa.DateTime, nullable=False),
        sa.PrimaryKeyConstraint("node", "image_id", name=op.f("pk_cache_queue")),
    )


def downgrade() -> None:
    op.drop_table("cache_queue")
    op.drop_index("ix_cached_images_image_id", table_name="cached_images")
    op.drop_table("cached_images")
