"""The weight trace table, trial attempts, and the per-arm trial index.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

JSONType = sa.JSON().with_variant(JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "gs_weight_trace",
        sa.Column(
            "trial_id",
            sa.Integer,
            sa.ForeignKey("gs_trials.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("step", sa.Integer, primary_key=True),
        sa.Column("weights", JSONType, nullable=False),
    )
    with op.batch_alter_table("gs_trials") as batch:
        batch.add_column(sa.Column("attempts", sa.Integer, nullable=False, server_default="0"))
    op.create_index("ix_gs_trials_study_arm", "gs_trials", ["study_id", "arm"])
