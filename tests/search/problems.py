"""Problems used by the search tests; workers import them by path like any user problem."""

from __future__ import annotations

import torch

from gradsweep.trainers import MultitaskModel, ToyRegression


class OddSeedsFail(ToyRegression):
    """Raises while building the model for odd seeds: a user's problem that fails sometimes."""

    def build_model(self) -> MultitaskModel:
        if torch.initial_seed() % 2 == 1:
            raise RuntimeError(f"cannot build a model for seed {torch.initial_seed()}")
        return super().build_model()


class ShortTheory(ToyRegression):
    """One closed-form initial loss for however many tasks: GradNorm with
    ``initial_loss: theoretical`` passes spec check and cannot start in a trial."""

    def theoretical_initial_losses(self) -> list[float | None]:
        return [1.0]


def short_theory(**params: object) -> ShortTheory:
    return ShortTheory(**params)  # type: ignore[arg-type]


def odd_seeds_fail(**params: object) -> OddSeedsFail:
    return OddSeedsFail(**params)  # type: ignore[arg-type]
