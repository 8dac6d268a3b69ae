"""Core tables: studies, trials, per-epoch metrics, comparisons.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

JSONType = sa.JSON().with_variant(JSONB(), "postgresql")
TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "gs_studies",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(200), nullable=False, unique=True),
        sa.Column("spec_text", sa.Text, nullable=False),
        sa.Column("spec_hash", sa.String(64), nullable=False),
        sa.Column("problem", sa.String(300), nullable=False),
        sa.Column("task_names", JSONType, nullable=False),
        sa.Column("objective_name", sa.String(100), nullable=False),
        sa.Column("objective_direction", sa.String(3), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("updated_at", TZ, nullable=False),
    )
    op.create_table(
        "gs_trials",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column(
            "study_id",
            sa.Integer,
            sa.ForeignKey("gs_studies.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("key", sa.String(300), nullable=False),
        sa.Column("arm", sa.String(30), nullable=False),
        sa.Column("balancer", sa.String(30), nullable=False),
        sa.Column("params", JSONType, nullable=False),
        sa.Column("static_weights", JSONType),
        sa.Column("alpha", sa.Float),
        sa.Column("seed", sa.Integer, nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("error", sa.Text),
        sa.Column("node", sa.String(300)),
        sa.Column("device", sa.String(100)),
        sa.Column("started_at", TZ),
        sa.Column("finished_at", TZ),
        sa.Column("train_seconds", sa.Float),
        sa.Column("objective", sa.Float),
        sa.Column("weights_final", JSONType),
        sa.Column("weights_mean", JSONType),
        sa.UniqueConstraint("study_id", "key", name="uq_gs_trials_study_key"),
    )
    op.create_index("ix_gs_trials_study_status", "gs_trials", ["study_id", "status"])
    op.create_table(
        "gs_epoch_metrics",
        sa.Column(
            "trial_id",
            sa.Integer,
            sa.ForeignKey("gs_trials.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("epoch", sa.Integer, primary_key=True),
        sa.Column("task", sa.String(100), primary_key=True),
        sa.Column("step", sa.Integer, nullable=False),
        sa.Column("train_loss", sa.Float),
        sa.Column("test_loss", sa.Float),
        sa.Column("metric_name", sa.String(100)),
        sa.Column("metric_value", sa.Float),
        sa.Column("metrics", JSONType, nullable=False),
        sa.Column("weight", sa.Float),
    )
    op.create_table(
        "gs_comparisons",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column(
            "study_id",
            sa.Integer,
            sa.ForeignKey("gs_studies.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("payload", JSONType, nullable=False),
    )
