"""The weights a step applied, beside the recorded ones: a balancer whose own weights sum
to something else than T (MGDA's to 1, uncertainty's precisions) keeps them in
``raw_weights``; null where they are the recorded ``weights``.

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("gs_weight_trace") as batch:
        batch.add_column(
            sa.Column("raw_weights", sa.JSON().with_variant(JSONB(), "postgresql"), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("gs_weight_trace") as batch:
        batch.drop_column("raw_weights")
