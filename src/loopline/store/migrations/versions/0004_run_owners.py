"""Runs: the pipeline file they came from, their owner (host, pid) and its heartbeat.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-06 00:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_COLUMNS = ("pipeline_file", "owner_host", "owner_pid", "heartbeat_at")


def upgrade() -> None:
    """Add the four nullable columns (runs recorded before have no owner: their status is trusted)."""
    op.add_column("runs", sa.Column("pipeline_file", sa.Text(), nullable=True))
    op.add_column("runs", sa.Column("owner_host", sa.String(255), nullable=True))
    op.add_column("runs", sa.Column("owner_pid", sa.Integer(), nullable=True))
    op.add_column("runs", sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    """Drop the columns."""
    with op.batch_alter_table("runs") as batch:
        for column in reversed(_COLUMNS):
            batch.drop_column(column)
