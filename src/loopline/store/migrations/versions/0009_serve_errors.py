"""Serve errors: the prediction service's failed requests, counted per model version, kind and cause.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06 00:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    """Create the serve_errors table and its (model_name, created_at) index."""
    op.create_table(
        "serve_errors",
        sa.Column("error_id", sa.String(64), primary_key=True),
        sa.Column("model_name", sa.String(200), nullable=False),
        sa.Column("model_version", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("cause", sa.String(100), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
    )
    op.create_index("ix_serve_errors_model_created", "serve_errors", ["model_name", "created_at"])


def downgrade() -> None:
    """Drop the table (its index goes with it)."""
    op.drop_index("ix_serve_errors_model_created", table_name="serve_errors")
    op.drop_table("serve_errors")
