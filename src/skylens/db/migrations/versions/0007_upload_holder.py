"""Upload leases: which process holds each (`skylens images stuck` names it).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Nullable, no default: no row is rewritten, and leases taken by processes of
    # the previous release (which do not know the column) simply name no holder.
    with op.batch_alter_table("image_uploads") as batch:
        batch.add_column(sa.Column("holder", sa.String(255), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("image_uploads") as batch:
        batch.drop_column("holder")
