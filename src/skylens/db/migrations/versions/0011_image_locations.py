"""Images: the locations API's URLs in read-only stores (the http store).

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Nullable, with no default: adding it rewrites no row on either backend.
    with op.batch_alter_table("images") as batch:
        batch.add_column(sa.Column("locations", sa.Text, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("images") as batch:
        batch.drop_column("locations")
