"""Static weighting: the baseline every grid, random and Optuna trial trains with."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from gradsweep.errors import BalancerError
from gradsweep.trainers.balancers.base import Balancer, BalancerContext, PackWeights
from gradsweep.trainers.balancers.declaration import BalancerDeclaration

if TYPE_CHECKING:
    import torch

    from gradsweep.trainers.engine.step import TrainingStep
else:
    from gradsweep.trainers.lazy import torch


class PackedStatic(PackWeights):
    """Fixed weights per member (equal weights for a member given none)."""

    def __init__(self, balancers: Sequence[StaticBalancer]) -> None:
        self.balancers = list(balancers)
        self._weights = torch.empty(0)

    def start(self, context: BalancerContext) -> None:
        for balancer in self.balancers:  # each checks its own weights against T
            balancer.start(context)
        self._weights = torch.stack([balancer.weights for balancer in self.balancers])

    @property
    def weights(self) -> torch.Tensor:
        return self._weights

    def update(self, losses: torch.Tensor, norms: torch.Tensor | None, live: torch.Tensor) -> None:
        """Static weights never move."""

    def freeze(self, members: torch.Tensor) -> None:
        """Nothing of a static member's ``w`` to stop."""


class StaticBalancer(Balancer):
    """``L = Σ w_i L_i`` with weights fixed for the whole run (equal weights by default)."""

    declaration = BalancerDeclaration(
        name="static",
        display="static",
        summary="fixed weights for the whole run: what every static, grid, random, Optuna "
        "and retrain trial trains with",
        weights_meaning="the weighting itself, as given",
        adaptive=False,
        packed=PackedStatic,
        order=0,
    )

    def __init__(self, weights: Sequence[float] | None = None) -> None:
        if weights is not None and any(not w >= 0 for w in weights):
            raise BalancerError(f"static: weights must be non-negative, got {list(weights)}")
        if weights is not None and not sum(weights) > 0:
            raise BalancerError("static: at least one weight must be positive")
        self._requested = None if weights is None else [float(w) for w in weights]
        self._weights = torch.empty(0)

    def start(self, context: BalancerContext) -> None:
        requested = self._requested or [1.0] * context.task_count
        if len(requested) != context.task_count:
            raise BalancerError(
                f"static: {len(requested)} weights given for {context.task_count} tasks"
            )
        self._weights = torch.tensor(requested, device=context.device)

    @property
    def weights(self) -> torch.Tensor:
        return self._weights

    def step(self, training_step: TrainingStep) -> None:
        training_step.backward(self._weights)

    def hyperparameters(self) -> dict[str, object]:
        return {"weights": self._requested}
