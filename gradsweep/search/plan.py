"""A spec's trials, each with a stable key, so a study can be resumed and never duplicated.

Keys: ``static/w=1,1,1/s0``, ``grid/w=0.75,0.75,1.5/s0``, ``random/i003/s1``,
``gradnorm/a=0.12/s0``, ``optuna/t0007/s0``, ``retrain/a=0.12/s0``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gradsweep.search.simplex import dirichlet_points, format_weights, grid_points, grid_size
from gradsweep.spec import StudySpec


@dataclass(frozen=True)
class TrialSpec:
    """One training run: arm + balancer parameters + seed, and its key."""

    key: str
    arm: str
    balancer: str
    balancer_params: dict[str, Any]
    seed: int
    weights: tuple[float, ...] | None = None
    alpha: float | None = None

    def params(self) -> dict[str, Any]:
        """What is stored as the trial's parameters."""
        return {"balancer": self.balancer, **self.balancer_params, "seed": self.seed}


def static_trial(arm: str, label: str, weights: tuple[float, ...], seed: int) -> TrialSpec:
    return TrialSpec(
        key=f"{arm}/{label}/s{seed}",
        arm=arm,
        balancer="static",
        balancer_params={"weights": list(weights)},
        seed=seed,
        weights=weights,
    )


def gradnorm_trial(spec: StudySpec, alpha: float, seed: int) -> TrialSpec:
    arm = spec.arms.gradnorm
    assert arm is not None
    return TrialSpec(
        key=f"gradnorm/a={alpha:g}/s{seed}",
        arm="gradnorm",
        balancer="gradnorm",
        balancer_params={"alpha": alpha, "lr": arm.lr, "initial_loss": arm.initial_loss},
        seed=seed,
        alpha=alpha,
    )


def plan_up_front(spec: StudySpec, tasks: int) -> list[TrialSpec]:
    """The trials known before anything runs: static, grid, random and GradNorm × seeds."""
    arms = spec.arms
    trials: list[TrialSpec] = []
    for seed in spec.seeds:
        if arms.static is not None:
            for weights in arms.static.weights:
                w = tuple(float(x) for x in weights)
                trials.append(static_trial("static", f"w={format_weights(w)}", w, seed))
        if arms.grid is not None:
            for w in grid_points(tasks, arms.grid.resolution, arms.grid.include_vertices):
                trials.append(static_trial("grid", f"w={format_weights(w)}", w, seed))
        if arms.random is not None:
            for i, w in enumerate(dirichlet_points(tasks, arms.random.n, arms.random.seed)):
                trials.append(static_trial("random", f"i{i:03d}", w, seed))
        if arms.gradnorm is not None:
            trials.extend(gradnorm_trial(spec, alpha, seed) for alpha in arms.gradnorm.alphas)
    return trials


def optuna_trial(spec: StudySpec, number: int, weights: tuple[float, ...]) -> TrialSpec:
    """An Optuna suggestion is one training run, on the study's first seed."""
    return static_trial("optuna", f"t{number:04d}", weights, spec.seeds[0])


def retrain_trials(
    spec: StudySpec, gradnorm_weights_mean: dict[int, list[float]]
) -> list[TrialSpec]:
    """Static training at GradNorm's time-averaged weights ("GradNorm Static"), one per seed.

    The weights are the mean over seeds of the retrain α's ``E_t[w(t)]``, renormalised to T.
    """
    arm = spec.arms.retrain
    if arm is None or not gradnorm_weights_mean:
        return []
    columns = list(zip(*gradnorm_weights_mean.values(), strict=True))
    mean = [sum(column) / len(column) for column in columns]
    scale = len(mean) / sum(mean)
    weights = tuple(w * scale for w in mean)
    return [
        TrialSpec(
            key=f"retrain/a={arm.alpha:g}/s{seed}",
            arm="retrain",
            balancer="static",
            balancer_params={"weights": list(weights)},
            seed=seed,
            weights=weights,
            alpha=arm.alpha,
        )
        for seed in spec.seeds
    ]


def planned_count(spec: StudySpec, tasks: int) -> int:
    """Every trial the study will run, including Optuna's and the retrain arm's."""
    arms = spec.arms
    per_seed = 0
    if arms.static is not None:
        per_seed += len(arms.static.weights)
    if arms.grid is not None:
        per_seed += grid_size(tasks, arms.grid.resolution, arms.grid.include_vertices)
    if arms.random is not None:
        per_seed += arms.random.n
    if arms.gradnorm is not None:
        per_seed += len(arms.gradnorm.alphas)
    if arms.retrain is not None:
        per_seed += 1
    optuna = arms.optuna.n_trials if arms.optuna is not None else 0
    return per_seed * len(spec.seeds) + optuna
