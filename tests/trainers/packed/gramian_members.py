"""Small Gramian-based balancers for the packing tests: each is a ``GramianBalancer`` with
its own weighting, in the gramian pack family (importable by path for a spec's arm)."""

from __future__ import annotations

import math
from typing import Any

import torch

from gradsweep.trainers.balancers.declaration import BalancerDeclaration, Need
from gradsweep.trainers.balancers.gramian import (
    GRAMIAN_FAMILY,
    GramianBalancer,
    GramianParams,
    PackedGramian,
    gramian_label,
)
from gradsweep.trainers.engine.step import TrainingStep

GRAMIAN_NEEDS = frozenset({Need.LOSSES, Need.TASK_GRADIENTS})


def _declaration(name: str) -> BalancerDeclaration:
    return BalancerDeclaration(
        name=name,
        display=name,
        summary="a test's Gramian rule",
        weights_meaning="T · w",
        params=GramianParams,
        label=gramian_label,
        needs=GRAMIAN_NEEDS,
        packed=PackedGramian,
        pack_family=GRAMIAN_FAMILY,
        reads_host=True,
    )


class InverseNorm:
    """``w_i ∝ 1 / ‖g_i‖`` from the Gramian's diagonal (every gradient scaled alike)."""

    def __call__(self, gramian: torch.Tensor) -> torch.Tensor:
        inverse = gramian.diagonal().clamp(min=1e-30).rsqrt()
        return inverse / inverse.sum()


class RandomTilt:
    """A rule that draws from torch's global generator every step, as PCGrad's order does:
    packed, a member must draw what it draws alone."""

    def __call__(self, gramian: torch.Tensor) -> torch.Tensor:
        draw = torch.rand(gramian.shape[0], dtype=gramian.dtype) + 0.5
        return draw / draw.sum()


class InverseNormGramian(GramianBalancer):
    declaration = _declaration("test_inverse_norm_gramian")

    def make_weighting(self) -> Any:
        return InverseNorm()


class RandomGramian(GramianBalancer):
    declaration = _declaration("test_random_gramian")

    def make_weighting(self) -> Any:
        return RandomTilt()


class Exploding:
    """Infinite weights at its ``at``-th call (the member's network turns to NaN), and
    lopsided finite ones after: a solver called again on a failed member would show."""

    def __init__(self, at: int) -> None:
        self.at, self.calls = at, 0

    def __call__(self, gramian: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        tasks = gramian.shape[0]
        equal = torch.full((tasks,), 1.0 / tasks, dtype=gramian.dtype)
        if self.calls < self.at:
            return equal
        if self.calls == self.at:
            return equal * math.inf
        return torch.nn.functional.one_hot(torch.tensor(0), tasks).to(gramian.dtype)


class ExplodingGramian(GramianBalancer):
    declaration = _declaration("test_exploding_gramian")

    def make_weighting(self) -> Any:
        return Exploding(at=5)


class OwnStepGramian(InverseNormGramian):
    """Its own step (here only the base's again): the pack cannot know what it does."""

    def step(self, training_step: TrainingStep) -> None:
        super().step(training_step)
