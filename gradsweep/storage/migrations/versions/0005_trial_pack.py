"""The pack a trial ran in (several trials trained together in one Ray trial).

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("gs_trials") as batch:
        batch.add_column(sa.Column("pack", sa.String(200), nullable=True))
