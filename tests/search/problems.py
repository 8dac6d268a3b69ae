"""Problems used by the search tests; workers import them by path like any user problem."""

from __future__ import annotations

import os

import torch

from gradsweep.trainers import MultitaskModel, ToyRegression


class OddSeedsFail(ToyRegression):
    """Raises while building the model for odd seeds: a user's problem that fails sometimes."""

    def build_model(self) -> MultitaskModel:
        if torch.initial_seed() % 2 == 1:
            raise RuntimeError(f"cannot build a model for seed {torch.initial_seed()}")
        return super().build_model()


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


def short_theory(**params: object) -> ShortTheory:
    return ShortTheory(**params)  # type: ignore[arg-type]


def odd_seeds_fail(**params: object) -> OddSeedsFail:
    return OddSeedsFail(**params)  # type: ignore[arg-type]
