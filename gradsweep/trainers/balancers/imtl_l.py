"""IMTL-L (Liu et al., "Towards Impartial Multi-task Learning", ICLR 2021): its loss balance.

Each task gets a learned scale ``s_i`` (initially 0) and the total loss is
``Σ_i (e^{s_i} L_i − s_i)``. Its minimum over ``s`` is at ``e^{s_i} L_i = 1``: every task's
scaled loss is driven to the same value, so a task with a small loss gets a large weight
(at the optimum the weights are ``1/L_i``, the gradient of ``log L_i``). The network
receives ``∇ Σ_i e^{s_i} L_i`` at the current ``s``, what joint back-propagation of the
total loss gives it; ``s`` descends the same total loss, ``∂/∂s_i = e^{s_i} L_i − 1``.

The paper trains ``s`` with the network's own optimiser; here ``s`` has its own Adam
(lr 0.025, as gradsweep's uncertainty weighting gives its log-variances), so the method's
behaviour does not depend on each problem's network learning rate. IMTL's gradient half
(IMTL-G) is not part of this balancer.

Recorded: ``e^{s_i}`` rescaled to ``Σ = T``; ``raw_weights`` are ``e^{s_i}`` themselves.
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
class ImtlLParams:
    """The imtl_l arm: learned loss scales, run on every seed."""

    lr: float = param(0.025, description="learning rate of the loss scales' Adam", gt=0)


class ImtlL(Balancer):
    """Learned loss scales ``e^{s_i}`` that drive every scaled loss to 1."""

    declaration = BalancerDeclaration(
        name="imtl_l",
        display="IMTL-L",
        summary="IMTL-L (Liu et al., ICLR 2021): learned loss scales e^s_i, total loss "
        "Σ e^s_i L_i − s_i",
        weights_meaning="e^{s_i}, the learned loss scales (→ 1/L_i), rescaled to Σ = T",
        params=ImtlLParams,
        label=lambda params: f"lr={number(params.lr)}",
        order=62,
    )

    def __init__(self, lr: float = 0.025) -> None:
        if not lr > 0:
            raise BalancerError(f"imtl_l: lr must be > 0, got {lr}")
        self.lr = float(lr)
        self._s = torch.nn.Parameter(torch.empty(0))
        self._optimizer: torch.optim.Adam | None = None

    def start(self, context: BalancerContext) -> None:
        self._s = torch.nn.Parameter(torch.zeros(context.task_count, device=context.device))
        self._optimizer = torch.optim.Adam([self._s], lr=self.lr)

    @property
    def scales(self) -> torch.Tensor:
        """``s_i``, detached."""
        return self._s.detach()

    @property
    def raw_weights(self) -> torch.Tensor:
        """The weights the network's loss uses: ``e^{s_i}``."""
        return torch.exp(self._s.detach())

    @property
    def weights(self) -> torch.Tensor:
        raw = self.raw_weights
        return raw * (raw.numel() / raw.sum())

    def step(self, training_step: TrainingStep) -> None:
        assert self._optimizer is not None, "start() must be called first"
        scale = self.raw_weights
        training_step.backward(scale)
        # ∂/∂s_i of e^{s_i} L_i − s_i
        self._s.grad = scale * training_step.losses.detach() - 1.0
        self._optimizer.step()

    def hyperparameters(self) -> dict[str, object]:
        return {"lr": self.lr}
