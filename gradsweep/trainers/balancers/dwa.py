"""Dynamic Weight Average (Liu, Johns & Davison, CVPR 2019, the MTAN paper).

The weights change once per epoch, from how fast each task's loss fell over the last two:

    w_k(t) = T · exp(r_k(t−1) / τ) / Σ_i exp(r_i(t−1) / τ),   r_k(t−1) = L̄_k(t−1) / L̄_k(t−2)

where ``L̄_k(e)`` is task k's mean training loss over the steps of epoch e and τ the
temperature (2 in the paper). ``w = 1`` for the first two epochs, which have no ratio yet.
An epoch is ``steps_per_epoch`` optimisation steps (one pass over the training split).
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
class DwaParams:
    """The dwa arm: weights from the last two epochs' loss ratios."""

    temperature: float = param(2.0, description="softmax temperature τ", gt=0)


class DynamicWeightAverage(Balancer):
    """Weights from the ratio of each task's last two epoch-mean training losses."""

    declaration = BalancerDeclaration(
        name="dwa",
        display="DWA",
        summary="Dynamic Weight Average (Liu et al. 2019): weights from the last two epochs' "
        "loss ratios",
        weights_meaning="T · softmax(r_k / τ) of the last two epochs' loss ratios; 1 for the "
        "first two epochs",
        params=DwaParams,
        label=lambda params: f"t={number(params.temperature)}",
        order=30,
        first_release=True,
    )

    def __init__(self, temperature: float = 2.0) -> None:
        if not temperature > 0:
            raise BalancerError(f"dwa: temperature must be > 0, got {temperature}")
        self.temperature = float(temperature)
        self._weights = torch.empty(0)
        self._sums = torch.empty(0)
        self._steps_in_epoch = 0
        self._steps_per_epoch = 1
        self.epoch_means: list[torch.Tensor] = []  # the last two epochs' mean losses

    def start(self, context: BalancerContext) -> None:
        self._weights = torch.ones(context.task_count, device=context.device)
        self._sums = torch.zeros(context.task_count, device=context.device)
        self._steps_per_epoch = max(context.steps_per_epoch, 1)
        self._steps_in_epoch = 0
        self.epoch_means = []

    @property
    def weights(self) -> torch.Tensor:
        return self._weights

    def step(self, training_step: TrainingStep) -> None:
        training_step.backward(self._weights)
        self._sums += training_step.losses.detach()
        self._steps_in_epoch += 1
        if self._steps_in_epoch == self._steps_per_epoch:
            self._end_epoch()

    def _end_epoch(self) -> None:
        self.epoch_means = [*self.epoch_means, self._sums / self._steps_in_epoch][-2:]
        self._sums = torch.zeros_like(self._sums)
        self._steps_in_epoch = 0
        if len(self.epoch_means) == 2:
            ratios = self.epoch_means[1] / self.epoch_means[0]
            tasks = ratios.numel()
            self._weights = tasks * torch.softmax(ratios / self.temperature, dim=0)

    def hyperparameters(self) -> dict[str, object]:
        return {"temperature": self.temperature}
