"""How many trials a spec plans, counted from the plan itself, for every reader that
shows a count: ``spec check``, the live progress, ``status`` and the pages."""

from __future__ import annotations

from gradsweep.arms import ArmKind
from gradsweep.plan.trials import plan_up_front, planned_weightings
from gradsweep.spec import StudySpec


def planned_count(spec: StudySpec, tasks: int) -> int:
    """Every trial the study will run at T = ``tasks``: those planned up front, plus the
    Optuna arm's trials and retrain's one per seed (planned later, from results)."""
    optuna = spec.arms.optuna.n_trials if spec.arms.optuna is not None else 0
    retrain = len(spec.seeds) if spec.arms.retrain is not None else 0
    return len(plan_up_front(spec, tasks)) + optuna + retrain


def shared_weightings(spec: StudySpec, tasks: int) -> list[tuple[float, ...]]:
    """The static arm's weightings that the grid also holds: each trains once a seed."""
    return [p.weights for p in planned_weightings(spec, tasks) if ArmKind.GRID in p.also_arms]
