"""Monitoring: the closed windows over the prediction log and the alerts they fired.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06 00:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    """Create monitor_windows (one row per closed window) and alerts (one row per fired rule)."""
    op.create_table(
        "monitor_windows",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("model_name", sa.String(200), nullable=False),
        sa.Column("spec", sa.String(20), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("start_at", _TS, nullable=False),
        sa.Column("end_at", _TS, nullable=False),
        sa.Column("last_id", sa.String(64), nullable=True),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.Column("drifted", sa.Integer(), nullable=True),
        sa.Column("result", sa.JSON(), nullable=False),
        sa.Column("closed_at", _TS, nullable=False),
        sa.UniqueConstraint("model_name", "spec", "seq", name="uq_monitor_windows_key"),
    )
    op.create_table(
        "alerts",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("window_id", sa.Integer(), sa.ForeignKey("monitor_windows.id", ondelete="CASCADE"), nullable=False),
        sa.Column("model_name", sa.String(200), nullable=False),
        sa.Column("spec", sa.String(20), nullable=False),
        sa.Column("window_start", _TS, nullable=False),
        sa.Column("window_end", _TS, nullable=False),
        sa.Column("rule", sa.String(300), nullable=False),
        sa.Column("metric", sa.String(300), nullable=False),
        sa.Column("op", sa.String(10), nullable=False),
        sa.Column("threshold", sa.Float(), nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("acknowledged_at", _TS, nullable=True),
        sa.Column("delivery", sa.String(20), nullable=False),
        sa.Column("delivery_error", sa.Text(), nullable=True),
    )
    op.create_index("ix_alerts_window_id", "alerts", ["window_id"])
    op.create_index("ix_alerts_model_name", "alerts", ["model_name"])


def downgrade() -> None:
    """Drop the alerts, then the windows."""
    op.drop_table("alerts")
    op.drop_table("monitor_windows")
