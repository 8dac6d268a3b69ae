"""Each study's primary metric and its better direction per task (for the Δm% objective).

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

JSONType = sa.JSON().with_variant(JSONB(), "postgresql")


def upgrade() -> None:
    with op.batch_alter_table("gs_studies") as batch:
        batch.add_column(sa.Column("task_metrics", JSONType, nullable=True))
