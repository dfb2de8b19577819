"""Image data: leases of uploads in progress.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "image_uploads",
        sa.Column("image_id", sa.String(36), nullable=False),
        sa.Column("renewed_at", sa.DateTime, nullable=False),
        sa.PrimaryKeyConstraint("image_id", name=op.f("pk_image_uploads")),
    )


def downgrade() -> None:
    op.drop_table("image_uploads")
