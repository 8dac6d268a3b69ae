"""Problems used by the search tests; workers import them by path like any user problem."""

from __future__ import annotations

import os
import time
from collections.abc import Sequence

import torch

from gradsweep import problem_factory
from gradsweep.trainers import MultitaskModel, ToyRegression
from gradsweep.trainers.problems.base import Batch


class OddSeedsFail(ToyRegression):
    """Raises while building the model for odd seeds: a user's problem that fails sometimes."""

    def build_model(self) -> MultitaskModel:
        if torch.initial_seed() % 2 == 1:
            raise RuntimeError(f"cannot build a model for seed {torch.initial_seed()}")
        return super().build_model()


class SlowOddSeeds(ToyRegression):
    """Every loss of an odd seed's trial first pauses ``pause`` seconds: a trial slower than
    the others, or with a long pause one stuck inside its first step (even seeds, and the
    driver's dry run at seed 0, run at full speed)."""

    def __init__(self, pause: float = 0.0, **params: object) -> None:
        super().__init__(**params)  # type: ignore[arg-type]
        self.pause = pause

    def task_losses(self, outputs: Sequence[torch.Tensor], batch: Batch) -> list[torch.Tensor]:
        if torch.initial_seed() % 2 == 1:
            time.sleep(self.pause)
        return super().task_losses(outputs, batch)


class ShortTheory(ToyRegression):
    """On a Ray worker (any process but the driver's), one closed-form initial loss for
    however many tasks: GradNorm with ``initial_loss: theoretical`` passes the driver's
    dry run and cannot start in a trial, as a problem whose environment differs on the
    workers (a file missing there, say) would."""

    def __init__(self, driver_pid: int, **params: object) -> None:
        super().__init__(**params)  # type: ignore[arg-type]
        self.driver_pid = driver_pid

    def theoretical_initial_losses(self) -> list[float | None]:
        if os.getpid() == self.driver_pid:
            return [1.0] * len(self.tasks)
        return [1.0]


@problem_factory
def short_theory(**params: object) -> ShortTheory:
    return ShortTheory(**params)  # type: ignore[arg-type]


@problem_factory
def odd_seeds_fail(**params: object) -> OddSeedsFail:
    return OddSeedsFail(**params)  # type: ignore[arg-type]
