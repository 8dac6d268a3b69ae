"""The validation split: every evaluation's per-task loss and metrics on validation beside
test, and per trial its final validation values, normalised loss and best validation step.
Rows from before stay null: their studies are selected on test (and say so).

The views compare like with like, as ``compare`` does (``results/selection.py``):
``gs_trial_scores`` scores every completed trial by its study's objective (normalised loss
or Δm% against the equal-weight trials) on test and on the selection split (validation;
test for a study without validation values) at its checkpoint (``selection.checkpoint``);
``gs_static_vs_adaptive`` holds each adaptive configuration against the static optimum:
among the static weightings run on every seed, the best mean selection objective, reported
by its mean test objective.

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


# Dialect pieces: SQLite's JSON1 and PostgreSQL's jsonb say the same things differently.
SQLITE = {
    "study_tasks": (
        "SELECT s.id AS study_id, n.value AS task, json_extract(m.value, '$.direction') "
        "AS direction FROM gs_studies s, json_each(s.task_names) n, json_each(s.task_metrics) m "
        "WHERE n.key = m.key"
    ),
    "checkpoint": "json_extract(s.spec_text, '$.selection.checkpoint')",
    "seed_count": "json_array_length(json_extract(s.spec_text, '$.seeds'))",
    "spread": "(SELECT MAX(value) - MIN(value) FROM json_each(t.static_weights))",
}
POSTGRESQL = {
    "study_tasks": (
        "SELECT s.id AS study_id, n.value AS task, m.value ->> 'direction' AS direction "
        "FROM gs_studies s, jsonb_array_elements_text(s.task_names) WITH ORDINALITY n(value, i), "
        "jsonb_array_elements(s.task_metrics) WITH ORDINALITY m(value, i) WHERE n.i = m.i"
    ),
    "checkpoint": "(CAST(s.spec_text AS jsonb) #>> '{selection,checkpoint}')",
    "seed_count": "jsonb_array_length(CAST(s.spec_text AS jsonb) -> 'seeds')",
    "spread": (
        "(SELECT MAX(CAST(value AS double precision)) - MIN(CAST(value AS double precision)) "
        "FROM jsonb_array_elements_text(t.static_weights))"
    ),
}

TRIAL_SCORES = """
CREATE VIEW gs_trial_scores AS
WITH study_tasks AS ({study_tasks}),
studies AS (
    SELECT s.id AS study_id, s.name AS study, s.objective_name,
           COALESCE({checkpoint}, 'final') AS checkpoint
    FROM gs_studies s
),
done AS (
    SELECT t.id AS trial_id, t.study_id, t.key, t.arm, t.balancer, t.alpha, t.seed,
           t.static_weights, t.normalized_loss, t.val_normalized_loss, t.best_val_step,
           CASE WHEN t.arm = 'static' AND {spread} < 1e-9 THEN 1 ELSE 0 END AS equal_weights
    FROM gs_trials t
    WHERE t.status = 'completed' AND t.normalized_loss IS NOT NULL
),
validated AS (
    SELECT study_id,
           CASE WHEN COUNT(*) = COUNT(val_normalized_loss) THEN 'validation' ELSE 'test' END
               AS split
    FROM done GROUP BY study_id
),
chosen AS (
    SELECT d.*, st.study, st.objective_name, v.split,
           CASE WHEN v.split = 'validation' AND st.checkpoint = 'best_validation'
                THEN d.best_val_step END AS checkpoint_step
    FROM done d
    JOIN studies st ON st.study_id = d.study_id
    JOIN validated v ON v.study_id = d.study_id
),
last_epoch AS (SELECT trial_id, MAX(epoch) AS epoch FROM gs_epoch_metrics GROUP BY trial_id),
task_values AS (
    SELECT c.trial_id, c.study_id, c.equal_weights, m.task, m.metric_value,
           m.val_metric_value, m.test_loss / f.test_loss AS test_ratio,
           m.val_loss / f.val_loss AS val_ratio
    FROM chosen c
    JOIN last_epoch l ON l.trial_id = c.trial_id
    JOIN gs_epoch_metrics m ON m.trial_id = c.trial_id
    JOIN gs_epoch_metrics f ON f.trial_id = c.trial_id AND f.task = m.task AND f.epoch = 0
    WHERE (c.checkpoint_step IS NULL AND m.epoch = l.epoch)
       OR (c.checkpoint_step IS NOT NULL AND m.step = c.checkpoint_step)
),
baselines AS (
    SELECT study_id, task, AVG(metric_value) AS test_base, AVG(val_metric_value) AS val_base
    FROM task_values WHERE equal_weights = 1 GROUP BY study_id, task
),
per_trial AS (
    SELECT v.trial_id,
           100.0 * AVG(CASE WHEN k.direction = 'min' THEN 1.0 ELSE -1.0 END
                       * (v.metric_value - b.test_base) / b.test_base) AS test_delta,
           100.0 * AVG(CASE WHEN k.direction = 'min' THEN 1.0 ELSE -1.0 END
                       * (v.val_metric_value - b.val_base) / b.val_base) AS val_delta,
           AVG(v.test_ratio) AS test_ratio, AVG(v.val_ratio) AS val_ratio
    FROM task_values v
    LEFT JOIN study_tasks k ON k.study_id = v.study_id AND k.task = v.task
    LEFT JOIN baselines b ON b.study_id = v.study_id AND b.task = v.task
    GROUP BY v.trial_id
),
scored AS (
    SELECT c.*, p.val_delta, p.val_ratio,
           CASE WHEN c.objective_name = 'delta_m' THEN p.test_delta
                WHEN c.checkpoint_step IS NULL THEN c.normalized_loss
                ELSE p.test_ratio END AS objective
    FROM chosen c LEFT JOIN per_trial p ON p.trial_id = c.trial_id
)
SELECT c.study, c.study_id, c.trial_id, c.key, c.arm, c.balancer, c.alpha, c.seed,
       CAST(c.static_weights AS TEXT) AS weighting, c.objective,
       CASE WHEN c.split = 'test' THEN c.objective
            WHEN c.objective_name = 'delta_m' THEN c.val_delta
            WHEN c.checkpoint_step IS NULL THEN c.val_normalized_loss
            ELSE c.val_ratio END AS selection_objective,
       c.split AS selected_on, c.checkpoint_step
FROM scored c
"""

STATIC_VS_ADAPTIVE = """
CREATE VIEW gs_static_vs_adaptive AS
WITH scores AS (
    SELECT * FROM gs_trial_scores
    WHERE objective IS NOT NULL AND selection_objective IS NOT NULL
),
static_trials AS (SELECT * FROM scores WHERE arm IN ('static', 'grid', 'random', 'optuna')),
weightings AS (
    SELECT study_id, weighting, COUNT(*) AS trials, COUNT(DISTINCT seed) AS seeds,
           AVG(objective) AS objective, AVG(selection_objective) AS selection_objective
    FROM static_trials GROUP BY study_id, weighting
),
needed AS (
    SELECT w.study_id, MAX(w.seeds) AS most, MAX({seed_count}) AS planned
    FROM weightings w JOIN gs_studies s ON s.id = w.study_id GROUP BY w.study_id
),
candidates AS (
    SELECT w.* FROM weightings w JOIN needed n ON n.study_id = w.study_id
    WHERE w.seeds >= CASE WHEN n.planned > 0 AND n.planned < n.most THEN n.planned
                          ELSE n.most END
),
best AS (
    SELECT c.study_id, MIN(c.weighting) AS weighting FROM candidates c
    WHERE c.selection_objective = (
        SELECT MIN(x.selection_objective) FROM candidates x WHERE x.study_id = c.study_id
    )
    GROUP BY c.study_id
),
optimum AS (
    SELECT c.* FROM candidates c
    JOIN best b ON b.study_id = c.study_id AND b.weighting = c.weighting
),
adaptive AS (
    SELECT study_id, SUBSTR(key, 1, LENGTH(key) - LENGTH('/s' || CAST(seed AS TEXT))) AS config,
           balancer, alpha, seed, objective, selection_objective, selected_on
    FROM scores WHERE balancer <> 'static'
),
configs AS (
    SELECT study_id, config, MIN(balancer) AS balancer, MIN(alpha) AS alpha,
           COUNT(*) AS seeds, AVG(objective) AS objective,
           AVG(selection_objective) AS selection_objective, MIN(selected_on) AS selected_on
    FROM adaptive GROUP BY study_id, config
)
SELECT s.name AS study, a.config, a.balancer, a.alpha, a.seeds,
       a.objective AS adaptive_objective,
       a.selection_objective AS adaptive_selection_objective,
       o.weighting AS static_optimum_weights,
       o.objective AS static_optimum_objective,
       o.selection_objective AS static_optimum_selection_objective,
       a.objective - o.objective AS gap_to_static_optimum,
       (SELECT COUNT(*) FROM static_trials x WHERE x.study_id = a.study_id) AS static_trials,
       (SELECT COUNT(*) FROM static_trials x
         WHERE x.study_id = a.study_id AND x.objective > a.objective) AS static_trials_beaten,
       a.selected_on
FROM configs a
JOIN gs_studies s ON s.id = a.study_id
LEFT JOIN optimum o ON o.study_id = a.study_id
"""

# the view of revision 0009, for the downgrade
OLD_STATIC_VS_ADAPTIVE = """
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
    WHERE balancer <> 'static'
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


def _pieces() -> dict[str, str]:
    return POSTGRESQL if op.get_bind().dialect.name == "postgresql" else SQLITE


def upgrade() -> None:
    op.execute("DROP VIEW IF EXISTS gs_static_vs_adaptive")
    with op.batch_alter_table("gs_trials") as batch:
        for name in TRIAL_JSON:
            batch.add_column(sa.Column(name, _json(), nullable=True))
        batch.add_column(sa.Column("val_normalized_loss", sa.Float(), nullable=True))
        batch.add_column(sa.Column("best_val_step", sa.Integer(), nullable=True))
    with op.batch_alter_table("gs_epoch_metrics") as batch:
        batch.add_column(sa.Column("val_loss", sa.Float(), nullable=True))
        batch.add_column(sa.Column("val_metric_value", sa.Float(), nullable=True))
        batch.add_column(sa.Column("val_metrics", _json(), nullable=True))
    pieces = _pieces()
    op.execute(TRIAL_SCORES.format(**pieces))
    op.execute(STATIC_VS_ADAPTIVE.format(**pieces))


def downgrade() -> None:
    op.execute("DROP VIEW IF EXISTS gs_static_vs_adaptive")
    op.execute("DROP VIEW IF EXISTS gs_trial_scores")
    with op.batch_alter_table("gs_epoch_metrics") as batch:
        for name in ("val_metrics", "val_metric_value", "val_loss"):
            batch.drop_column(name)
    with op.batch_alter_table("gs_trials") as batch:
        for name in ("best_val_step", "val_normalized_loss", *reversed(TRIAL_JSON)):
            batch.drop_column(name)
    op.execute(OLD_STATIC_VS_ADAPTIVE)
