"""The Optuna arm's sampler and its define-by-run search space on the weight simplex."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import optuna

from gradsweep.plan.simplex import optuna_point
from gradsweep.plan.trials import optuna_key

SAMPLERS: dict[str, Callable[[int | None], optuna.samplers.BaseSampler]] = {
    "tpe": lambda seed: optuna.samplers.TPESampler(seed=seed),
    "cmaes": lambda seed: optuna.samplers.CmaEsSampler(seed=seed),
    "qmc": lambda seed: optuna.samplers.QMCSampler(seed=seed),
    "gp": lambda seed: optuna.samplers.GPSampler(seed=seed),
    "random": lambda seed: optuna.samplers.RandomSampler(seed=seed),
}


def make_sampler(name: str, seed: int | None) -> optuna.samplers.BaseSampler:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return SAMPLERS[name](seed)


class SimplexSpace:
    """Define-by-run space: sample a valid simplex point and carry Optuna's trial number
    along, so the trial's key (``optuna/tNNNN/s<seed>``) is known to the worker and the
    recorder. The Optuna trial itself carries the weights and the key as user attributes,
    so optuna-dashboard shows weights, not the raw ``u0 … u{T-1}``.

    A class, not a closure: Tune pickles its searcher's state.
    """

    def __init__(self, tasks: int, seed: int) -> None:
        self.tasks = tasks
        self.seed = seed

    def __call__(self, trial: Any) -> dict[str, Any]:
        weights = optuna_point(trial, self.tasks)
        number = int(trial.number)
        trial.set_user_attr("weights", [float(w) for w in weights])
        trial.set_user_attr("key", optuna_key(number, self.seed))
        trial.set_user_attr("arm", "optuna")
        return {"optuna_number": number}
