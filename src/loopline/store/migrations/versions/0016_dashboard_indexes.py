"""Indexes the dashboard's per-model reads need on a big store: a model's newest closed window (the overview,
the monitoring pages) and a model's newest loop decision, without sorting or scanning the whole table.

Revision ID: 0016
Revises: 0014
Create Date: 2026-12-07 00:00:00
"""

from __future__ import annotations

from alembic import op

revision = "0016"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Index monitor_windows by (model_name, end_at) and loop_events by (model, id)."""
    op.create_index("ix_monitor_windows_model_end", "monitor_windows", ["model_name", "end_at"])
    op.create_index("ix_loop_events_model_id", "loop_events", ["model", "id"])


def downgrade() -> None:
    """Drop both indexes."""
    op.drop_index("ix_loop_events_model_id", table_name="loop_events")
    op.drop_index("ix_monitor_windows_model_end", table_name="monitor_windows")
