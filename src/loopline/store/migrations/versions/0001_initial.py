"""Initial schema: runs, steps, models, model_events, predictions.

Revision ID: 0001
Revises:
Create Date: 2025-01-01 00:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_TS = sa.DateTime(timezone=True)
_PRODUCTION = sa.text("stage = 'production'")


def upgrade() -> None:
    """Create the five tables with their indexes and constraints."""
    _create_runs()
    _create_models()
    _create_model_events()
    _create_predictions()


def downgrade() -> None:
    """Drop every table this revision created."""
    for table in ("predictions", "model_events", "models", "steps", "runs"):
        op.drop_table(table)


def _create_runs() -> None:
    op.create_table(
        "runs",
        sa.Column("run_id", sa.String(32), primary_key=True),
        sa.Column("pipeline", sa.String(200), nullable=False),
        sa.Column("pipeline_hash", sa.String(64), nullable=False),
        sa.Column("spec", sa.JSON, nullable=False),
        sa.Column("params", sa.JSON, nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("started_at", _TS, nullable=False),
        sa.Column("finished_at", _TS, nullable=True),
        sa.Column("error", sa.Text, nullable=True),
    )
    op.create_index("ix_runs_pipeline", "runs", ["pipeline"])
    op.create_index("ix_runs_started_at", "runs", ["started_at"])
    op.create_table(
        "steps",
        sa.Column(
            "run_id",
            sa.String(32),
            sa.ForeignKey("runs.run_id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("step", sa.String(200), primary_key=True),
        sa.Column("type", sa.Text(), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("cache_key", sa.String(64), nullable=True),
        sa.Column("started_at", _TS, nullable=False),
        sa.Column("finished_at", _TS, nullable=False),
        sa.Column("duration_s", sa.Float, nullable=False),
        sa.Column("config", sa.JSON, nullable=False),
        sa.Column("outputs", sa.JSON, nullable=False),
        sa.Column("error", sa.Text, nullable=True),
        sa.Column("attempt", sa.Integer, nullable=False),
    )
    op.create_index("ix_steps_cache_key", "steps", ["cache_key"])


def _create_models() -> None:
    op.create_table(
        "models",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("stage", sa.String(20), nullable=False),
        sa.Column("algorithm", sa.String(200), nullable=False),
        sa.Column("bundle_digest", sa.String(64), nullable=False),
        sa.Column("reference_digest", sa.String(64), nullable=True),
        sa.Column("metrics", sa.JSON, nullable=False),
        sa.Column("params", sa.JSON, nullable=False),
        sa.Column("config", sa.JSON, nullable=False),
        sa.Column("input_schema", sa.JSON, nullable=False),
        sa.Column("data_fingerprint", sa.String(64), nullable=False),
        sa.Column("run_id", sa.String(32), nullable=True),
        sa.Column("timings", sa.JSON, nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("promoted_at", _TS, nullable=True),
        sa.UniqueConstraint("name", "version", name="uq_models_name_version"),
        sa.CheckConstraint("stage IN ('candidate', 'production', 'archived')", name="ck_models_stage"),
    )
    op.create_index(
        "uq_models_one_production",
        "models",
        ["name"],
        unique=True,
        sqlite_where=_PRODUCTION,
        postgresql_where=_PRODUCTION,
    )


def _create_model_events() -> None:
    op.create_table(
        "model_events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("action", sa.String(20), nullable=False),
        sa.Column("from_version", sa.Integer, nullable=True),
        sa.Column("to_version", sa.Integer, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("at", _TS, nullable=False),
    )
    op.create_index("ix_model_events_name", "model_events", ["name"])


def _create_predictions() -> None:
    op.create_table(
        "predictions",
        sa.Column("prediction_id", sa.String(64), primary_key=True),
        sa.Column("model_name", sa.String(200), nullable=False),
        sa.Column("model_version", sa.Integer, nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("inputs", sa.JSON, nullable=False),
        sa.Column("output", sa.JSON, nullable=False),
        sa.Column("latency_ms", sa.Float, nullable=False),
    )
    op.create_index("ix_predictions_model_created", "predictions", ["model_name", "created_at"])
