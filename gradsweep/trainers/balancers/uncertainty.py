"""Uncertainty weighting (Kendall, Gal & Cipolla, CVPR 2018), the GradNorm paper's baseline.

Each task gets a learned log-variance ``s_i`` (initially 0) and the total loss is
``Σ_i exp(−s_i) L_i + s_i``: a task with a large loss learns a large ``s_i`` and a small
weight, and the ``+ s_i`` term keeps the weights from collapsing to zero. ``s`` has its own
Adam (lr 0.025, as the GradNorm paper uses for its own weights); the network receives
``∇ Σ_i exp(−s_i) L_i`` at the current ``s``, exactly what joint back-propagation of the
total loss gives it.

What is recorded: the effective weights ``exp(−s_i)`` rescaled to ``Σ = T``, so that they
sit on the same simplex as every other balancer's; ``raw_weights`` are the unscaled ones.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from gradsweep.errors import BalancerError
from gradsweep.trainers.balancers.base import Balancer, BalancerContext
from gradsweep.trainers.balancers.declaration import BalancerDeclaration, number, param

if TYPE_CHECKING:
    import torch

    from gradsweep.trainers.engine.step import TrainingStep
else:
    from gradsweep.trainers.lazy import torch


@dataclass(frozen=True)
class UncertaintyParams:
    """The uncertainty arm: learned log-variances, run on every seed."""

    lr: float = param(0.025, description="learning rate of the log-variances' Adam", gt=0)


class UncertaintyWeighting(Balancer):
    """Learned homoscedastic-uncertainty weights ``exp(−s_i)``."""

    declaration = BalancerDeclaration(
        name="uncertainty",
        display="uncertainty",
        summary="Uncertainty weighting (Kendall et al. 2018): learned log-variances, run on "
        "every seed",
        weights_meaning="exp(−s_i), the learned precisions, rescaled to Σ = T",
        params=UncertaintyParams,
        label=lambda params: f"lr={number(params.lr)}",
        order=20,
        first_release=True,
    )

    def __init__(self, lr: float = 0.025) -> None:
        if not lr > 0:
            raise BalancerError(f"uncertainty: lr must be > 0, got {lr}")
        self.lr = float(lr)
        self._s = torch.nn.Parameter(torch.empty(0))
        self._optimizer: torch.optim.Adam | None = None

    def start(self, context: BalancerContext) -> None:
        self._s = torch.nn.Parameter(torch.zeros(context.task_count, device=context.device))
        self._optimizer = torch.optim.Adam([self._s], lr=self.lr)

    @property
    def log_variances(self) -> torch.Tensor:
        """``s_i``, detached."""
        return self._s.detach()

    @property
    def raw_weights(self) -> torch.Tensor:
        """The weights the network's loss uses: ``exp(−s_i)``."""
        return torch.exp(-self._s.detach())

    @property
    def weights(self) -> torch.Tensor:
        raw = self.raw_weights
        return raw * (raw.numel() / raw.sum())

    def step(self, training_step: TrainingStep) -> None:
        assert self._optimizer is not None, "start() must be called first"
        precision = self.raw_weights
        training_step.backward(precision)
        # ∂/∂s_i of exp(−s_i) L_i + s_i
        self._s.grad = 1.0 - precision * training_step.losses.detach()
        self._optimizer.step()

    def hyperparameters(self) -> dict[str, object]:
        return {"lr": self.lr}
