"""Label syncs: how far each model's label source (a dataset) has been read, so that a loop tick reads only
the dataset parts committed since (``loopline.run.sync_label_source(incremental=True)``).

Revision ID: 0014
Revises: 0008
Create Date: 2026-12-06 00:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create label_syncs (one row per model and label dataset: the last part read, and when)."""
    op.create_table(
        "label_syncs",
        sa.Column("model_name", sa.String(200), primary_key=True),
        sa.Column("dataset", sa.String(200), primary_key=True),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.Column("synced_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    """Drop the table (the next sync reads the whole label dataset once)."""
    op.drop_table("label_syncs")
