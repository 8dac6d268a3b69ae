"""One word, one meaning: a trial's stored score is its normalised loss; per-task finals.

``gs_trials.objective`` held the normalised loss for every study, also where the study's
objective is Δm% (which needs a baseline and is scored on read). It is renamed
``normalized_loss``; "objective" now always means the study's objective. The views are
rebuilt on the new name. ``gs_studies.planned`` keeps the number of trials the study
plans (null for studies launched before this revision: read from their spec).
``gs_trials.initial_test_losses``, ``test_losses`` and ``final_metrics`` keep a completed
trial's per-task test losses at its first and last evaluation and its final primary
metrics (the Pareto view and Δm% read them without scanning every evaluation row; null
before this revision: read from gs_epoch_metrics).

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

JSONType = sa.JSON().with_variant(JSONB(), "postgresql")

TRIAL_SUMMARY = """
CREATE VIEW gs_trial_summary AS
SELECT s.name AS study, t.key, t.arm, t.balancer, t.seed, t.alpha, t.status,
       t.normalized_loss, t.train_seconds, t.static_weights, t.weights_mean, t.weights_final,
       t.node, t.device, t.pack, t.error, t.started_at, t.finished_at
FROM gs_trials t JOIN gs_studies s ON s.id = t.study_id
"""

STATIC_VS_ADAPTIVE = """
CREATE VIEW gs_static_vs_adaptive AS
WITH static_trials AS (
    SELECT study_id, normalized_loss FROM gs_trials
    WHERE arm IN ('static', 'grid', 'random', 'optuna') AND status = 'completed'
      AND normalized_loss IS NOT NULL
),
adaptive AS (
    SELECT study_id, balancer, alpha, COUNT(*) AS seeds,
           AVG(normalized_loss) AS normalized_loss
    FROM gs_trials
    WHERE arm IN ('gradnorm', 'uncertainty', 'dwa', 'rlw')
      AND status = 'completed' AND normalized_loss IS NOT NULL
    GROUP BY study_id, balancer, alpha
)
SELECT s.name AS study, a.balancer, a.alpha, a.seeds,
       a.normalized_loss AS adaptive_normalized_loss,
       (SELECT MIN(x.normalized_loss) FROM static_trials x WHERE x.study_id = a.study_id)
           AS best_static_normalized_loss,
       (SELECT COUNT(*) FROM static_trials x WHERE x.study_id = a.study_id) AS static_trials,
       (SELECT COUNT(*) FROM static_trials x
         WHERE x.study_id = a.study_id AND x.normalized_loss > a.normalized_loss)
           AS static_trials_beaten
FROM adaptive a JOIN gs_studies s ON s.id = a.study_id
"""


def upgrade() -> None:
    op.execute("DROP VIEW IF EXISTS gs_static_vs_adaptive")
    op.execute("DROP VIEW IF EXISTS gs_trial_summary")
    # a plain rename (SQLite ≥ 3.25 and PostgreSQL): no table rebuild, so no cascade
    op.execute("ALTER TABLE gs_trials RENAME COLUMN objective TO normalized_loss")
    op.add_column("gs_studies", sa.Column("planned", sa.Integer, nullable=True))
    for name in ("initial_test_losses", "test_losses", "final_metrics"):
        op.add_column("gs_trials", sa.Column(name, JSONType, nullable=True))
    op.execute(TRIAL_SUMMARY)
    op.execute(STATIC_VS_ADAPTIVE)
