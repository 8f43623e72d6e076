"""Model aliases and a fuller audit trail: ``model_aliases``; who, which alias and details on ``model_events``.

Each version that was production (``stage = 'production'``) becomes the target of the ``production`` alias and
its stage ``candidate`` (the stage column now holds ``candidate`` or ``archived``; production is the alias). The
promotions and rollbacks already in ``model_events`` are marked as moves of ``production``; an archived
version's ``archived_at`` is when a promotion moved production away from it (else its creation time).

Revision ID: 0010
Revises: 0008
Create Date: 2026-12-06 00:00:00
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

_TS = sa.DateTime(timezone=True)
_PRODUCTION = sa.text("stage = 'production'")
_OLD_STAGES = "stage IN ('candidate', 'production', 'archived')"
_NEW_STAGES = "stage IN ('candidate', 'archived')"

_models = sa.table(
    "models",
    sa.column("name", sa.String),
    sa.column("version", sa.Integer),
    sa.column("stage", sa.String),
    sa.column("created_at", _TS),
    sa.column("promoted_at", _TS),
    sa.column("archived_at", _TS),
)
_events = sa.table(
    "model_events",
    sa.column("name", sa.String),
    sa.column("action", sa.String),
    sa.column("from_version", sa.Integer),
    sa.column("to_version", sa.Integer),
    sa.column("alias", sa.String),
    sa.column("at", _TS),
)
_aliases = sa.table(
    "model_aliases",
    sa.column("name", sa.String),
    sa.column("alias", sa.String),
    sa.column("version", sa.Integer),
    sa.column("set_at", _TS),
    sa.column("set_by", sa.String),
)


def upgrade() -> None:
    """Move production from the stage column to the ``production`` alias; widen the audit trail."""
    conn = op.get_bind()
    op.drop_index("uq_models_one_production", table_name="models")
    production = conn.execute(
        sa.select(
            _models.c.name, _models.c.version, sa.func.coalesce(_models.c.promoted_at, _models.c.created_at)
        ).where(_models.c.stage == "production")
    ).all()
    conn.execute(sa.update(_models).where(_models.c.stage == "production").values(stage="candidate"))
    with op.batch_alter_table("models") as batch:
        batch.add_column(sa.Column("archived_at", _TS, nullable=True))
        batch.drop_constraint("ck_models_stage", type_="check")
        batch.create_check_constraint("ck_models_stage", sa.text(_NEW_STAGES))
    moved_away = (
        sa.select(sa.func.max(_events.c.at))
        .where(_events.c.name == _models.c.name, _events.c.from_version == _models.c.version)
        .scalar_subquery()
    )
    conn.execute(
        sa.update(_models)
        .where(_models.c.stage == "archived")
        .values(archived_at=sa.func.coalesce(moved_away, _models.c.created_at))
    )
    _create_aliases()
    rows: list[dict[str, Any]] = [
        {"name": name, "alias": "production", "version": version, "set_at": at, "set_by": "migration 0010"}
        for name, version, at in production
    ]
    if rows:
        conn.execute(sa.insert(_aliases), rows)
    with op.batch_alter_table("model_events") as batch:
        batch.alter_column("to_version", existing_type=sa.Integer, nullable=True)
        batch.add_column(sa.Column("alias", sa.String(64), nullable=True))
        batch.add_column(sa.Column("actor", sa.String(200), nullable=True))
        batch.add_column(sa.Column("details", sa.JSON, nullable=True))
    conn.execute(sa.update(_events).where(_events.c.action.in_(("promote", "rollback"))).values(alias="production"))


def downgrade() -> None:
    """Production back to the stage column; other aliases and the events 0008 cannot hold are dropped."""
    conn = op.get_bind()
    production = conn.execute(
        sa.select(_aliases.c.name, _aliases.c.version).where(_aliases.c.alias == "production")
    ).all()
    conn.execute(
        sa.delete(_events).where(
            sa.or_(_events.c.to_version.is_(None), sa.not_(_events.c.action.in_(("promote", "rollback"))))
        )
    )
    with op.batch_alter_table("model_events") as batch:
        batch.drop_column("details")
        batch.drop_column("actor")
        batch.drop_column("alias")
        batch.alter_column("to_version", existing_type=sa.Integer, nullable=False)
    op.drop_table("model_aliases")
    with op.batch_alter_table("models") as batch:
        batch.drop_constraint("ck_models_stage", type_="check")
        batch.create_check_constraint("ck_models_stage", sa.text(_OLD_STAGES))
        batch.drop_column("archived_at")
    for name, version in production:
        conn.execute(
            sa.update(_models).where(_models.c.name == name, _models.c.version == version).values(stage="production")
        )
    op.create_index(
        "uq_models_one_production",
        "models",
        ["name"],
        unique=True,
        sqlite_where=_PRODUCTION,
        postgresql_where=_PRODUCTION,
    )


def _create_aliases() -> None:
    op.create_table(
        "model_aliases",
        sa.Column("name", sa.String(200), primary_key=True),
        sa.Column("alias", sa.String(64), primary_key=True),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("set_at", _TS, nullable=False),
        sa.Column("set_by", sa.String(200), nullable=False),
        sa.ForeignKeyConstraint(
            ["name", "version"], ["models.name", "models.version"], name="fk_model_aliases_version"
        ),
    )
