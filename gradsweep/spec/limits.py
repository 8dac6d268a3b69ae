"""How large a spec may make a study: every count bounded, the whole plan counted first.

A spec is a few lines that can ask for billions of trials (``random: {n: 1000000000}``, or
20,000 seeds times a grid), and a trial whose buffers grow with its steps. Each count a
spec holds has an upper bound in its model (one line naming the field); the whole plan's
size is counted here by arithmetic, without building one trial, and capped at
``limits.max_trials`` (100,000 unless the spec raises it, up to 1,000,000) before the
problem is built, a trial planned or anything written.

``limits`` guards a spec's size; it changes no trial, so it is left out of the spec's hash
and of the fields a relaunch compares, and stored with the spec only when set (resume
honours it).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pydantic import Field

from gradsweep.arms import weights_in_key
from gradsweep.spec.base import SpecError, SpecModel

if TYPE_CHECKING:
    from gradsweep.spec import StudySpec
    from gradsweep.spec.arms import GridArm

#: trials a study may plan unless ``limits.max_trials`` says otherwise
DEFAULT_MAX_TRIALS = 100_000
#: the most ``limits.max_trials`` may allow: planning a million trials takes about a GiB
MAX_TRIALS = 1_000_000
#: ``budget.steps`` (and ``eval_every``, ``trace_every``); a step is stored as a 32-bit integer
MAX_STEPS = 1_000_000_000
#: a seed (``gs_trials.seed`` is a 32-bit integer on PostgreSQL)
MAX_SEED = 2**31 - 1
#: seeds a study may list
MAX_SEEDS = 10_000
#: ``w(t)`` points a trial records: ⌈steps / trace_every⌉
MAX_TRACE_POINTS = 1_000_000
#: evaluations a trial makes: ⌈steps / eval_every⌉ (eval_every defaults to one epoch)
MAX_EVALUATIONS = 100_000
#: ``arms.grid.resolution``
MAX_RESOLUTION = 10_000
#: ``arms.static.weights``
MAX_WEIGHTINGS = 10_000
#: ``arms.optuna.n_trials`` and ``confirm`` (suggestions run one after another)
MAX_OPTUNA_TRIALS = 100_000
#: the items of a balancer's list parameter (GradNorm's ``alphas``)
MAX_PARAM_ITEMS = 1_000
#: the random and Optuna arms' seeds (numpy's RandomState, under Optuna's samplers)
MAX_SAMPLER_SEED = 2**32 - 1
#: ``max_concurrent`` and ``max_failures``
MAX_CONCURRENT = 10_000
MAX_FAILURES = 100


class LimitsSpec(SpecModel):
    """Guards on the study's size, raised deliberately; they change no trial."""

    max_trials: int = Field(
        default=DEFAULT_MAX_TRIALS,
        ge=1,
        le=MAX_TRIALS,
        description=f"the most trials the spec may plan (default {DEFAULT_MAX_TRIALS:,}, at "
        f"most {MAX_TRIALS:,}): a larger plan is refused before anything is built; raise it "
        "to run one deliberately (left out of the spec's hash)",
    )


@dataclass(frozen=True)
class PlanSize:
    """A spec's trials, counted: ``per_seed`` up front on each of ``seeds``, then ``later``
    (the Optuna arm's suggestions and confirm runs, retrain's one a seed)."""

    per_seed: int
    seeds: int
    later: int

    @property
    def up_front(self) -> int:
        return self.per_seed * self.seeds

    @property
    def total(self) -> int:
        return self.up_front + self.later

    def __str__(self) -> str:
        parts = [f"{self.seeds:,} seed(s) × {self.per_seed:,} trials each"]
        if self.later:
            parts.append(f"{self.later:,} Optuna and retrain trials")
        return " + ".join(parts)


def plan_size(spec: StudySpec, tasks: int | None) -> PlanSize:
    """The trials ``spec`` plans at T = ``tasks`` (``plan.planned_count`` without the
    superseded confirm runs), by arithmetic alone. ``tasks=None`` (T not known yet)
    leaves the grid out: a lower bound, enough to refuse a plan before the problem is
    built."""
    arms = spec.arms
    per_seed = sum(
        len(arm.declaration.configurations_of(arm.params)) for arm in arms.balancer_arms()
    )
    if arms.static is not None:
        per_seed += len(arms.static.weights)
    if arms.grid is not None and tasks is not None:
        per_seed += arms.grid.size(tasks) - shared_with_grid(spec, tasks)
    if arms.random is not None:
        per_seed += arms.random.n
    later = len(spec.seeds) if arms.retrain is not None else 0
    if arms.optuna is not None:
        optuna = arms.optuna
        later += optuna.n_trials + min(optuna.confirm, optuna.n_trials) * (len(spec.seeds) - 1)
    return PlanSize(per_seed, len(spec.seeds), later)


def shared_with_grid(spec: StudySpec, tasks: int) -> int:
    """How many listed static weightings are also points of the grid (each trains once a
    seed), found without enumerating the grid."""
    grid, static = spec.arms.grid, spec.arms.static
    if grid is None or static is None:
        return 0
    return sum(1 for weights in static.weights if on_grid(weights, tasks, grid))


def on_grid(weights: list[float], tasks: int, grid: GridArm) -> bool:
    """Whether the grid keeps a point that trial keys spell as ``weights`` (6 significant
    digits). Its counts can only be ``round(w_i·R/T)``: keys that agree put ``w_i`` within
    1e-5 of a point's relative to it, and ``k_i ≤ R ≤ MAX_RESOLUTION`` keeps that under ½."""
    resolution = grid.resolution
    if len(weights) != tasks:
        return False
    counts = [round(w * resolution / tasks) for w in weights]
    if sum(counts) != resolution:
        return False
    point = tuple(tasks * k / resolution for k in counts)
    if weights_in_key(point) != weights_in_key(weights):
        return False
    if not grid.include_vertices and max(counts) == resolution:
        return False
    return min(counts) >= grid.min_count(tasks)


def check_plan_size(spec: StudySpec, tasks: int | None, source: str) -> None:
    """Refuse, in one line, a spec that plans more trials than ``limits.max_trials``."""
    size = plan_size(spec, tasks)
    limit = spec.limits.max_trials
    if size.total <= limit:
        return
    raise SpecError(
        f"{source}: {size.total:,} trials planned ({size}), more than limits.max_trials "
        f"({limit:,}): shrink the spec, or set limits: {{max_trials: N}} (at most "
        f"{MAX_TRIALS:,}) to run it deliberately"
    )


def check_trial_size(steps: int, eval_every: int | None, trace_every: int) -> str | None:
    """Why one trial of this budget would keep too much, or None: its recorded ``w(t)``
    points and its evaluations grow with the steps."""
    points = math.ceil(steps / trace_every)
    if points > MAX_TRACE_POINTS:
        least = math.ceil(steps / MAX_TRACE_POINTS)
        return (
            f"trace_every: {steps:,} steps record {points:,} w(t) points a trial (at most "
            f"{MAX_TRACE_POINTS:,}): set trace_every to at least {least:,}"
        )
    if eval_every is not None:
        return evaluations_problem(steps, eval_every, "eval_every")
    return None


def evaluations_problem(steps: int, eval_every: int, said: str) -> str | None:
    """Why ``steps`` evaluated every ``eval_every`` steps are too many evaluations, or None."""
    evaluations = math.ceil(steps / eval_every)
    if evaluations <= MAX_EVALUATIONS:
        return None
    least = math.ceil(steps / MAX_EVALUATIONS)
    return (
        f"{said}: {steps:,} steps make {evaluations:,} evaluations a trial (at most "
        f"{MAX_EVALUATIONS:,}): set budget.eval_every to at least {least:,}"
    )
