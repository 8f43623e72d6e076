"""The metadata tables: runs, steps, models, predictions, serve errors, feedback, datasets, monitor windows,
alerts, the loop.

This is the schema the repositories query. Migrations under ``migrations/versions`` create it; they are
written by hand and must be kept in step with this module (a test compares the two).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    CheckConstraint,
    Column,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.types import TypeDecorator

VERSION_TABLE = "loopline_alembic_version"
STAGES = ("candidate", "production", "archived")
"""What :attr:`ModelVersion.stage` reports; the ``stage`` column holds the first and last only (production is
the ``production`` alias)."""


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp stored in UTC and always read back timezone-aware.

    Naive datetimes are taken to be UTC. SQLite keeps no zone, so its values come back naive and get
    ``tzinfo=UTC`` attached here.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        aware = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
        return aware.replace(tzinfo=None) if dialect.name == "sqlite" else aware

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if not isinstance(value, datetime):
            raise TypeError(f"expected a datetime from the database, got {type(value).__name__}")
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


metadata = MetaData()

runs = Table(
    "runs",
    metadata,
    Column("run_id", String(32), primary_key=True),
    Column("pipeline", String(200), nullable=False, index=True),
    Column("pipeline_hash", String(64), nullable=False),
    Column("spec", JSON, nullable=False),
    Column("params", JSON, nullable=False),
    Column("status", String(20), nullable=False),
    Column("started_at", UTCDateTime, nullable=False, index=True),
    Column("finished_at", UTCDateTime, nullable=True),
    Column("error", Text, nullable=True),
    Column("pipeline_file", Text, nullable=True),
    Column("owner_host", String(255), nullable=True),
    Column("owner_pid", Integer, nullable=True),
    Column("heartbeat_at", UTCDateTime, nullable=True),
)

steps = Table(
    "steps",
    metadata,
    Column("run_id", String(32), ForeignKey("runs.run_id", ondelete="CASCADE"), primary_key=True),
    Column("step", String(200), primary_key=True),
    Column("type", Text, nullable=False),
    Column("status", String(20), nullable=False),
    Column("cache_key", String(64), nullable=True, index=True),
    Column("started_at", UTCDateTime, nullable=False),
    Column("finished_at", UTCDateTime, nullable=False),
    Column("duration_s", Float, nullable=False),
    Column("config", JSON, nullable=False),
    Column("outputs", JSON, nullable=False),
    Column("error", Text, nullable=True),
    Column("attempt", Integer, nullable=False),
)

models = Table(
    "models",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(200), nullable=False),
    Column("version", Integer, nullable=False),
    Column("stage", String(20), nullable=False),
    Column("algorithm", String(200), nullable=False),
    Column("bundle_digest", String(64), nullable=False),
    Column("reference_digest", String(64), nullable=True),
    Column("profile_digest", String(64), nullable=True),
    Column("metrics", JSON, nullable=False),
    Column("params", JSON, nullable=False),
    Column("config", JSON, nullable=False),
    Column("input_schema", JSON, nullable=False),
    Column("data_fingerprint", String(64), nullable=False),
    Column("run_id", String(32), nullable=True),
    Column("timings", JSON, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("promoted_at", UTCDateTime, nullable=True),
    Column("archived_at", UTCDateTime, nullable=True),
    UniqueConstraint("name", "version", name="uq_models_name_version"),
    CheckConstraint("stage IN ('candidate', 'archived')", name="ck_models_stage"),
)

# Named pointers to versions (``production``, ``staging``, ``shadow``, ``canary``, custom names). The primary key
# makes one version per alias per model (so one production per model) a rule of the database itself; the foreign
# key makes a version an alias points at impossible to delete.
model_aliases = Table(
    "model_aliases",
    metadata,
    Column("name", String(200), primary_key=True),
    Column("alias", String(64), primary_key=True),
    Column("version", Integer, nullable=False),
    Column("set_at", UTCDateTime, nullable=False),
    Column("set_by", String(200), nullable=False),
    ForeignKeyConstraint(["name", "version"], ["models.name", "models.version"], name="fk_model_aliases_version"),
)

# The audit trail: every alias change (promote and rollback move ``production``), archive and gc, with who and why.
model_events = Table(
    "model_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(200), nullable=False, index=True),
    Column("action", String(20), nullable=False),
    Column("from_version", Integer, nullable=True),
    Column("to_version", Integer, nullable=True),
    Column("reason", Text, nullable=False),
    Column("at", UTCDateTime, nullable=False),
    Column("alias", String(64), nullable=True),
    Column("actor", String(200), nullable=True),
    Column("details", JSON, nullable=True),
)

predictions = Table(
    "predictions",
    metadata,
    Column("prediction_id", String(64), primary_key=True),
    Column("model_name", String(200), nullable=False),
    Column("model_version", Integer, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("inputs", JSON, nullable=False),
    Column("output", JSON, nullable=False),
    Column("latency_ms", Float, nullable=False),
    Index("ix_predictions_model_created", "model_name", "created_at"),
)

# Failed prediction requests, counted by the service and flushed with its prediction log: one row per
# (model, version, kind, cause) and flush, ``count`` requests since the previous flush, the first at ``created_at``.
serve_errors = Table(
    "serve_errors",
    metadata,
    Column("error_id", String(64), primary_key=True),
    Column("model_name", String(200), nullable=False),
    Column("model_version", Integer, nullable=False),
    Column("kind", String(20), nullable=False),
    Column("cause", String(100), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("count", Integer, nullable=False),
    Index("ix_serve_errors_model_created", "model_name", "created_at"),
)

# Ground-truth labels of served predictions. No foreign key to ``predictions``: a label may arrive before the
# service's asynchronous log has flushed its prediction (or for one never logged); readers join on both keys.
feedback = Table(
    "feedback",
    metadata,
    Column("model_name", String(200), primary_key=True),
    Column("prediction_id", String(64), primary_key=True),
    Column("label", JSON, nullable=False),
    Column("source", String(200), nullable=False),
    Column("received_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=True),
    Column("event_time", UTCDateTime, nullable=True),
    Index("ix_feedback_model_received", "model_name", "received_at"),
)

# How far each model's label source (a dataset) was read: the last dataset part synced (``seq``), the rows read
# in all and when. A sync reads only the parts after it (and the ones committed just before it: see run/_feedback).
label_syncs = Table(
    "label_syncs",
    metadata,
    Column("model_name", String(200), primary_key=True),
    Column("dataset", String(200), primary_key=True),
    Column("seq", Integer, nullable=False),
    Column("rows", Integer, nullable=False),
    Column("synced_at", UTCDateTime, nullable=False),
)

# -- datasets (ingestion) -------------------------------------------------------------------------

dataset_parts = Table(
    "dataset_parts",
    metadata,
    Column("dataset", String(200), primary_key=True),
    Column("seq", Integer, primary_key=True),
    Column("source", String(200), nullable=False),
    Column("digest", String(64), nullable=False),
    Column("rows", Integer, nullable=False),
    Column("bytes", Integer, nullable=False),
    Column("position", JSON, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
)

checkpoints = Table(
    "checkpoints",
    metadata,
    Column("dataset", String(200), primary_key=True),
    Column("source", String(200), primary_key=True),
    Column("position", JSON, nullable=True),
    Column("rows", Integer, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

ingested_ids = Table(
    "ingested_ids",
    metadata,
    Column("dataset", String(200), primary_key=True),
    Column("source", String(200), primary_key=True),
    Column("message_id", String(200), primary_key=True),
)

dead_letters = Table(
    "dead_letters",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("dataset", String(200), nullable=False, index=True),
    Column("source", String(200), nullable=False),
    Column("reason", Text, nullable=False),
    Column("position", JSON, nullable=True),
    Column("raw", Text, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("replayed_at", UTCDateTime, nullable=True),
)

dataset_schemas = Table(
    "dataset_schemas",
    metadata,
    Column("dataset", String(200), primary_key=True),
    Column("schema", JSON, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
)

dataset_versions = Table(
    "dataset_versions",
    metadata,
    Column("dataset", String(200), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("rows", Integer, nullable=False),
    Column("upto_seq", Integer, nullable=False),
    Column("checksum", String(64), nullable=False),
    Column("schema", JSON, nullable=False),
    Column("positions", JSON, nullable=False),
    Column("run_id", String(32), nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("profile_digest", String(64), nullable=True),
)

# -- the loop service (leases, events) ------------------------------------------------------------

LOOP_EVENT_KINDS = (
    "tick", "trigger", "warning", "skip", "retrain", "gate", "promotion", "probation", "rollback", "error", "request",
)  # fmt: skip

loop_leases = Table(
    "loop_leases",
    metadata,
    Column("name", String(200), primary_key=True),
    Column("holder", String(100), nullable=False),
    Column("owner_host", String(255), nullable=False),
    Column("owner_pid", Integer, nullable=False),
    Column("acquired_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    Column("heartbeat", UTCDateTime, nullable=False),
)

loop_events = Table(
    "loop_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("pipeline", String(200), nullable=False),
    Column("model", String(200), nullable=True),
    Column("kind", String(20), nullable=False),
    Column("reason", Text, nullable=False),
    Column("details", JSON, nullable=False),
    Column("at", UTCDateTime, nullable=False),
    Index("ix_loop_events_pipeline_at", "pipeline", "at"),
    Index("ix_loop_events_model_id", "model", "id"),
)

# -- monitoring (windows over the prediction log, alerts) ----------------------------------------------------

monitor_windows = Table(
    "monitor_windows",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("model_name", String(200), nullable=False),
    Column("spec", String(20), nullable=False),
    Column("seq", Integer, nullable=False),
    Column("start_at", UTCDateTime, nullable=False),
    Column("end_at", UTCDateTime, nullable=False),
    Column("last_id", String(64), nullable=True),
    Column("rows", Integer, nullable=False),
    Column("drifted", Integer, nullable=True),
    Column("result", JSON, nullable=False),
    Column("closed_at", UTCDateTime, nullable=False),
    UniqueConstraint("model_name", "spec", "seq", name="uq_monitor_windows_key"),
    Index("ix_monitor_windows_model_end", "model_name", "end_at"),
)

alerts = Table(
    "alerts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("window_id", Integer, ForeignKey("monitor_windows.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("model_name", String(200), nullable=False, index=True),
    Column("spec", String(20), nullable=False),
    Column("window_start", UTCDateTime, nullable=False),
    Column("window_end", UTCDateTime, nullable=False),
    Column("rule", String(300), nullable=False),
    Column("metric", String(300), nullable=False),
    Column("op", String(10), nullable=False),
    Column("threshold", Float, nullable=False),
    Column("value", Float, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("acknowledged_at", UTCDateTime, nullable=True),
    Column("delivery", String(20), nullable=False),
    Column("delivery_error", Text, nullable=True),
    Column("acknowledged_by", String(200), nullable=True),
)
