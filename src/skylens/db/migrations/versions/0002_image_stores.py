"""Image data: the stores that hold each image's bytes.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("images") as batch:
        batch.add_column(sa.Column("stores", sa.Text))


def downgrade() -> None:
    with op.batch_alter_table("images") as batch:
        batch.drop_column("stores")
