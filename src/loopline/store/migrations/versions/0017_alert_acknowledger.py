"""Who acknowledged an alert (the OS user or ``LOOPLINE_ACTOR`` for the CLI, ``ui:token:NAME`` for the dashboard):
an acknowledgement is part of the audit trail, like a promotion.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-07 00:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add alerts.acknowledged_by (null for alerts acknowledged before it, and for open ones)."""
    with op.batch_alter_table("alerts") as batch:
        batch.add_column(sa.Column("acknowledged_by", sa.String(200), nullable=True))


def downgrade() -> None:
    """Drop alerts.acknowledged_by."""
    with op.batch_alter_table("alerts") as batch:
        batch.drop_column("acknowledged_by")
