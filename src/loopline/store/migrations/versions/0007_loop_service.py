"""The loop service: its leases (one retrain at a time) and its events (every decision).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06 00:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    """Create loop_leases and loop_events."""
    op.create_table(
        "loop_leases",
        sa.Column("name", sa.String(200), primary_key=True),
        sa.Column("holder", sa.String(100), nullable=False),
        sa.Column("owner_host", sa.String(255), nullable=False),
        sa.Column("owner_pid", sa.Integer(), nullable=False),
        sa.Column("acquired_at", _TS, nullable=False),
        sa.Column("expires_at", _TS, nullable=False),
        sa.Column("heartbeat", _TS, nullable=False),
    )
    op.create_table(
        "loop_events",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("pipeline", sa.String(200), nullable=False),
        sa.Column("model", sa.String(200), nullable=True),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.Column("at", _TS, nullable=False),
    )
    op.create_index("ix_loop_events_pipeline_at", "loop_events", ["pipeline", "at"])


def downgrade() -> None:
    """Drop the two tables."""
    op.drop_index("ix_loop_events_pipeline_at", table_name="loop_events")
    op.drop_table("loop_events")
    op.drop_table("loop_leases")
