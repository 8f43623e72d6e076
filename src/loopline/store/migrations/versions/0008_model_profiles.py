"""Models: the digest of their drift reference profile (``loopline.monitor.ReferenceProfile`` as JSON).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06 00:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add the nullable column (versions registered before have no profile: monitoring reads their reference)."""
    op.add_column("models", sa.Column("profile_digest", sa.String(64), nullable=True))


def downgrade() -> None:
    """Drop the column."""
    with op.batch_alter_table("models") as batch:
        batch.drop_column("profile_digest")
