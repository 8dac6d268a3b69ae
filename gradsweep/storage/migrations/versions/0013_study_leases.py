"""One driver per study: gs_study_leases, the lease a launch or resume holds while it runs
a study. Before, two launches of one spec on one database both trained every trial, and a
resume could start while another driver ran the study.

Revision ID: 0013
Revises: 0012
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "gs_study_leases",
        sa.Column(
            "study_id",
            sa.Integer,
            sa.ForeignKey("gs_studies.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("host", sa.Text, nullable=False),
        sa.Column("pid", sa.Integer, nullable=False),
        sa.Column("namespace", sa.Text, nullable=True),
        sa.Column("token", sa.String(32), nullable=False),
        sa.Column("acquired_at", TZ, nullable=False),
        sa.Column("renewed_at", TZ, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("gs_study_leases")
