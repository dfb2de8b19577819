"""Images: when each first became active (the IMS profile's `active_at`).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Nullable, with no default: adding it rewrites no row on either backend. Images
    # already active keep NULL: the moment they became active was never recorded.
    with op.batch_alter_table("images") as batch:
        batch.add_column(sa.Column("active_at", sa.DateTime, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("images") as batch:
        batch.drop_column("active_at")
