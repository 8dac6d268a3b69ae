"""``gs_static_vs_adaptive`` takes every adaptive balancer: a trial whose balancer is not
the static one (a new built-in or a user's ``package.module:Class``), instead of a list
of four names that silently dropped any other.

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

_VIEW = """
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
    WHERE {adaptive}
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
    op.execute(_VIEW.format(adaptive="balancer <> 'static'"))


def downgrade() -> None:
    op.execute("DROP VIEW IF EXISTS gs_static_vs_adaptive")
    op.execute(_VIEW.format(adaptive="arm IN ('gradnorm', 'uncertainty', 'dwa', 'rlw')"))
