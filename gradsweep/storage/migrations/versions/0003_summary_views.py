"""Views for plain-SQL users: one row per trial, and static against adaptive per study.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

TRIAL_SUMMARY = """
CREATE VIEW gs_trial_summary AS
SELECT s.name AS study, t.key, t.arm, t.balancer, t.seed, t.alpha, t.status,
       t.objective, t.train_seconds, t.static_weights, t.weights_mean, t.weights_final,
       t.node, t.device, t.error, t.started_at, t.finished_at
FROM gs_trials t JOIN gs_studies s ON s.id = t.study_id
"""

STATIC_VS_ADAPTIVE = """
CREATE VIEW gs_static_vs_adaptive AS
WITH static_trials AS (
    SELECT study_id, objective FROM gs_trials
    WHERE arm IN ('static', 'grid', 'random', 'optuna') AND status = 'completed'
      AND objective IS NOT NULL
),
adaptive AS (
    SELECT study_id, balancer, alpha, COUNT(*) AS seeds, AVG(objective) AS objective
    FROM gs_trials
    WHERE arm NOT IN ('static', 'grid', 'random', 'optuna', 'retrain')
      AND status = 'completed' AND objective IS NOT NULL
    GROUP BY study_id, balancer, alpha
)
SELECT s.name AS study, a.balancer, a.alpha, a.seeds, a.objective AS adaptive_objective,
       (SELECT MIN(x.objective) FROM static_trials x WHERE x.study_id = a.study_id)
           AS best_static_trial_objective,
       (SELECT COUNT(*) FROM static_trials x WHERE x.study_id = a.study_id) AS static_trials,
       (SELECT COUNT(*) FROM static_trials x
         WHERE x.study_id = a.study_id AND x.objective > a.objective) AS static_trials_beaten
FROM adaptive a JOIN gs_studies s ON s.id = a.study_id
"""


def upgrade() -> None:
    op.execute(TRIAL_SUMMARY)
    op.execute(STATIC_VS_ADAPTIVE)
