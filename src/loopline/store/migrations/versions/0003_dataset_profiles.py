"""Dataset versions: the digest of their profile (a JSON artifact, computed when first asked for).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02 00:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add the nullable ``profile_digest`` column (existing versions have no profile yet)."""
    op.add_column("dataset_versions", sa.Column("profile_digest", sa.String(64), nullable=True))


def downgrade() -> None:
    """Drop the column (the profile artifacts stay in the artifact store)."""
    with op.batch_alter_table("dataset_versions") as batch:
        batch.drop_column("profile_digest")
