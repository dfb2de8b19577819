"""PostgreSQL: property values indexed by (name, md5(value)) instead of a hash index.

A hash index keeps equal values in one bucket chain, and each insertion walks the
chain to its end: with a million images, adding os_type=linux walked thousands of
pages, and building the index took over 20 minutes. A btree of (name, md5(value))
has no such chain and also tells the planner which name a value goes with.

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
    if op.get_bind().dialect.name != "postgresql":
        return
    op.drop_index("ix_image_properties_value", table_name="image_properties")
    op.create_index(
        "ix_image_properties_name_md5_value",
        "image_properties",
        ["name", sa.text("md5(value)")],
    )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.drop_index("ix_image_properties_name_md5_value", table_name="image_properties")
    op.create_index(
        "ix_image_properties_value", "image_properties", ["value"], postgresql_using="hash"
    )
