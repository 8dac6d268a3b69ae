"""A spec's trials, their keys and their counts: torch-free and Ray-free, below the driver
(search/) and the readers (results/), so that every count shown is the plan's."""

from gradsweep.plan.counts import (
    StudyCounts,
    count_trials,
    planned_count,
    shared_weightings,
)
from gradsweep.plan.trials import (
    PlannedWeighting,
    TrialSpec,
    balancer_trials,
    optuna_key,
    optuna_trial,
    plan_up_front,
    planned_weightings,
    retrain_trials,
)

__all__ = [
    "PlannedWeighting",
    "StudyCounts",
    "TrialSpec",
    "balancer_trials",
    "count_trials",
    "optuna_key",
    "optuna_trial",
    "plan_up_front",
    "planned_count",
    "planned_weightings",
    "retrain_trials",
    "shared_weightings",
]
