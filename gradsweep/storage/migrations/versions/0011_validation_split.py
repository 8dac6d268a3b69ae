"""The validation split: every evaluation's per-task loss and metrics on validation beside
test, and per trial its final validation values, normalised loss and best validation step.
Rows from before stay null: their studies are selected on test (and say so).

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

TRIAL_JSON = ("initial_val_losses", "val_losses", "val_final_metrics")


def _json() -> sa.types.TypeEngine:
    return sa.JSON().with_variant(JSONB(), "postgresql")


def upgrade() -> None:
    with op.batch_alter_table("gs_trials") as batch:
        for name in TRIAL_JSON:
            batch.add_column(sa.Column(name, _json(), nullable=True))
        batch.add_column(sa.Column("val_normalized_loss", sa.Float(), nullable=True))
        batch.add_column(sa.Column("best_val_step", sa.Integer(), nullable=True))
    with op.batch_alter_table("gs_epoch_metrics") as batch:
        batch.add_column(sa.Column("val_loss", sa.Float(), nullable=True))
        batch.add_column(sa.Column("val_metric_value", sa.Float(), nullable=True))
        batch.add_column(sa.Column("val_metrics", _json(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("gs_epoch_metrics") as batch:
        for name in ("val_metrics", "val_metric_value", "val_loss"):
            batch.drop_column(name)
    with op.batch_alter_table("gs_trials") as batch:
        for name in ("best_val_step", "val_normalized_loss", *reversed(TRIAL_JSON)):
            batch.drop_column(name)
