"""The Optuna arm's sampler and its define-by-run search space on the weight simplex."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import optuna

from gradsweep.search.simplex import optuna_point

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
    along, so the trial's key (``optuna/tNNNN``) is known to the worker and the recorder.

    A class, not a closure: Tune pickles its searcher's state.
    """

    def __init__(self, tasks: int) -> None:
        self.tasks = tasks

    def __call__(self, trial: Any) -> dict[str, Any]:
        optuna_point(trial, self.tasks)
        return {"optuna_number": int(trial.number)}
