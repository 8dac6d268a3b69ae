"""How many trials a spec plans, counted from the plan itself, for every reader that
shows a count: ``spec check``, the live progress, ``status`` and the pages."""

from __future__ import annotations

from gradsweep.arms import ArmKind
from gradsweep.plan.trials import plan_up_front, planned_weightings
from gradsweep.spec import StudySpec


def planned_count(spec: StudySpec, tasks: int) -> int:
    """Every trial the study will run at T = ``tasks``: those planned up front, plus the
    Optuna arm's trials with its confirmed suggestions on the other seeds, and retrain's
    one per seed (planned later, from results)."""
    arm = spec.arms.optuna
    optuna = 0 if arm is None else arm.n_trials + confirm_count(arm.n_trials, arm.confirm, spec)
    retrain = len(spec.seeds) if spec.arms.retrain is not None else 0
    return len(plan_up_front(spec, tasks)) + optuna + retrain


def confirm_count(n_trials: int, confirm: int, spec: StudySpec) -> int:
    """The Optuna arm's confirm trials: its best ``confirm`` suggestions on every other seed."""
    return min(confirm, n_trials) * (len(spec.seeds) - 1)


def shared_weightings(spec: StudySpec, tasks: int) -> list[tuple[float, ...]]:
    """The static arm's weightings that the grid also holds: each trains once a seed."""
    return [p.weights for p in planned_weightings(spec, tasks) if ArmKind.GRID in p.also_arms]
