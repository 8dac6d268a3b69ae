"""A spec's trials, each with a stable key, so a study can be resumed and never duplicated.

Keys are ``arm/label/s<seed>``: ``static/w=1,1,1/s0``, ``grid/w=0.75,0.75,1.5/s0``
(weights to 6 significant digits), ``random/i003/s1`` (index into the seeded Dirichlet
draws), ``optuna/t0007/s0`` (Optuna's trial number), ``retrain/a=0.12/s0``, and for a balancer
arm the label its declaration gives (``gradnorm/a=0.12/s0``, ``dwa/t=2/s0``,
``rlw/dirichlet=1/s0``…). They depend only on the spec and T, never on run order.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gradsweep.arms import weights_in_key
from gradsweep.plan.simplex import dirichlet_points, grid_points
from gradsweep.spec import BalancerArm, StudySpec
from gradsweep.spec.limits import check_plan_size
from gradsweep.trainers.balancers.gradnorm import alpha_label


@dataclass(frozen=True)
class TrialSpec:
    """One training run: arm + balancer parameters + seed, and its key.

    ``balancer`` is a built-in name or a user's ``package.module:Class``;
    ``balancer_params`` are its constructor arguments (static: ``weights``; gradnorm:
    ``alpha``, ``lr``, ``initial_loss``); ``weights`` and ``alpha`` repeat them typed, for
    queries and display.
    """

    key: str
    arm: str
    balancer: str
    balancer_params: dict[str, Any]
    seed: int
    weights: tuple[float, ...] | None = None
    alpha: float | None = None
    also_arms: tuple[str, ...] = ()  # other arms asking for this weighting: trained once

    def params(self) -> dict[str, Any]:
        """What is stored as the trial's parameters (JSON-able)."""
        return {"balancer": self.balancer, **self.balancer_params, "seed": self.seed}


def static_trial(
    arm: str,
    label: str,
    weights: tuple[float, ...],
    seed: int,
    alpha: float | None = None,
    also_arms: tuple[str, ...] = (),
) -> TrialSpec:
    return TrialSpec(
        key=f"{arm}/{label}/s{seed}",
        arm=arm,
        balancer="static",
        balancer_params={"weights": list(weights)},
        seed=seed,
        weights=weights,
        alpha=alpha,
        also_arms=also_arms,
    )


def balancer_trials(arm: BalancerArm, seed: int) -> list[TrialSpec]:
    """A balancer arm's runs on one seed: one per configuration its declaration gives."""
    return [
        TrialSpec(
            key=f"{arm.name}/{config.label}/s{seed}",
            arm=arm.name,
            balancer=arm.key,
            balancer_params=config.arguments,
            seed=seed,
            alpha=config.alpha,
        )
        for config in arm.declaration.configurations_of(arm.params)
    ]


@dataclass(frozen=True)
class PlannedWeighting:
    """A static weighting known up front: its arm, its label in the key, and the other
    arms that ask for the same weighting (it trains once per seed and belongs to each)."""

    arm: str
    label: str
    weights: tuple[float, ...]
    also_arms: tuple[str, ...] = ()


def planned_weightings(spec: StudySpec, tasks: int) -> list[PlannedWeighting]:
    """The static arms' weightings known up front, in plan order, each weighting once: a
    grid point equal to a listed static weighting (to 6 significant digits, as keys spell
    weights) is that static trial, which the grid then also claims."""
    arms = spec.arms
    points: list[PlannedWeighting] = []
    listed: dict[str, int] = {}  # a static weighting as keys spell it → its index
    if arms.static is not None:
        for weights in arms.static.weights:
            w = tuple(float(x) for x in weights)
            listed[weights_in_key(w)] = len(points)
            points.append(PlannedWeighting("static", f"w={weights_in_key(w)}", w))
    if arms.grid is not None:
        grid = arms.grid
        for w in grid_points(tasks, grid.resolution, grid.include_vertices, grid.min_count(tasks)):
            same = listed.get(weights_in_key(w))
            if same is None:
                points.append(PlannedWeighting("grid", f"w={weights_in_key(w)}", w))
            else:
                first = points[same]
                points[same] = PlannedWeighting(first.arm, first.label, first.weights, ("grid",))
    if arms.random is not None:
        for i, w in enumerate(dirichlet_points(tasks, arms.random.n, arms.random.seed)):
            points.append(PlannedWeighting("random", f"i{i:03d}", w))
    return points


def plan_up_front(spec: StudySpec, tasks: int) -> list[TrialSpec]:
    """The trials known before anything runs: static, grid, random and the balancer arms,
    per seed.

    Seed by seed, so that every arm has results early in a long study. Counted first, by
    arithmetic: a plan beyond ``limits.max_trials`` is refused before one trial is built
    (a stored study resumed, or a spec that skipped ``validate_spec``)."""
    check_plan_size(spec, tasks, f"study {spec.study}")
    points = planned_weightings(spec, tasks)
    balancer_arms = spec.arms.balancer_arms()
    trials: list[TrialSpec] = []
    for seed in spec.seeds:
        trials.extend(
            static_trial(p.arm, p.label, p.weights, seed, also_arms=p.also_arms) for p in points
        )
        for arm in balancer_arms:
            trials.extend(balancer_trials(arm, seed))
    return trials


def optuna_trial(spec: StudySpec, number: int, weights: tuple[float, ...]) -> TrialSpec:
    """Optuna trial ``number`` as a static run on the study's FIRST seed only.

    One suggestion is one training run: the sampler learns from every result at once
    instead of waiting for a mean over seeds, and ``n_trials`` is the arm's whole cost.
    """
    return static_trial("optuna", optuna_label(number), weights, spec.seeds[0])


def optuna_label(number: int) -> str:
    """The key label of Optuna suggestion ``number`` (``t0007``), on every seed it runs."""
    return f"t{number:04d}"


def optuna_number(key: str) -> int:
    """The suggestion number in an Optuna trial's key (``optuna/t0007/s1`` → 7)."""
    return int(key.split("/")[1].removeprefix("t"))


def optuna_key(number: int, seed: int) -> str:
    """The key of Optuna suggestion ``number``'s run on ``seed``."""
    return f"optuna/{optuna_label(number)}/s{seed}"


def key_seed(key: str) -> int:
    """The seed a trial's key ends with (``optuna/t0007/s1`` → 1)."""
    return int(key.rpartition("/s")[2])


def is_suggestion(spec: StudySpec, key: str) -> bool:
    """Whether ``key`` is one of the Optuna arm's suggestions (its run on the first seed),
    as opposed to a confirm run of one on another seed: ``n_trials`` counts these alone."""
    return key.startswith("optuna/") and key_seed(key) == spec.seeds[0]


def is_confirm(spec: StudySpec, key: str) -> bool:
    """Whether ``key`` is a confirm run: an Optuna suggestion on a seed but the first."""
    return key.startswith("optuna/") and key_seed(key) != spec.seeds[0]


def confirm_trials(
    spec: StudySpec, suggestions: list[tuple[int, tuple[float, ...]]]
) -> list[TrialSpec]:
    """The Optuna arm's confirm phase: each chosen suggestion (its number and weights) on
    every seed but the first, under the suggestion's label, so the weighting has every seed
    and can be the static optimum on the same terms as the grid's."""
    return [
        static_trial("optuna", optuna_label(number), weights, seed)
        for number, weights in suggestions
        for seed in spec.seeds[1:]
    ]


def retrain_trials(
    spec: StudySpec, gradnorm_weights_mean: dict[int, list[float]]
) -> list[TrialSpec]:
    """Static training at GradNorm's time-averaged weights ("GradNorm Static"), one per seed.

    ``gradnorm_weights_mean`` maps a seed to ``E_t[w(t)]`` of the retrain α's GradNorm run;
    the weights are their mean over seeds renormalised to Σ = T, the same for every seed so
    that seeds measure the weighting, not GradNorm's seed-to-seed spread.
    """
    arm = spec.arms.retrain
    if arm is None or not gradnorm_weights_mean:
        return []
    columns = list(zip(*gradnorm_weights_mean.values(), strict=True))
    mean = [sum(column) / len(column) for column in columns]
    scale = len(mean) / sum(mean)
    weights = tuple(w * scale for w in mean)
    label = alpha_label(arm.alpha)
    return [static_trial("retrain", label, weights, seed, alpha=arm.alpha) for seed in spec.seeds]
