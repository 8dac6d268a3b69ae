"""The other arms that asked for a trial's weighting: a static weighting that a grid also
holds trains once per seed, under its first arm's key, and belongs to both.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("gs_trials") as batch:
        batch.add_column(
            sa.Column("also_arms", sa.JSON().with_variant(JSONB(), "postgresql"), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("gs_trials") as batch:
        batch.drop_column("also_arms")
