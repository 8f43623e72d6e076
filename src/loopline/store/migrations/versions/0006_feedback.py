"""Feedback: the ground-truth labels of served predictions (late, partial, before or after their prediction).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06 00:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    """Create the feedback table and its (model_name, received_at) index."""
    op.create_table(
        "feedback",
        sa.Column("model_name", sa.String(200), primary_key=True),
        sa.Column("prediction_id", sa.String(64), primary_key=True),
        sa.Column("label", sa.JSON(), nullable=False),
        sa.Column("source", sa.String(200), nullable=False),
        sa.Column("received_at", _TS, nullable=False),
        sa.Column("updated_at", _TS, nullable=True),
        sa.Column("event_time", _TS, nullable=True),
    )
    op.create_index("ix_feedback_model_received", "feedback", ["model_name", "received_at"])


def downgrade() -> None:
    """Drop the table (its index goes with it)."""
    op.drop_index("ix_feedback_model_received", table_name="feedback")
    op.drop_table("feedback")
