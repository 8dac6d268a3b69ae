"""A user-defined balancer, written as docs/balancers.md explains: inverse gradient norms.

Each step, every task's gradient over the shared parameters is taken *before* the weights
are chosen (``Need.TASK_GRADIENTS``), and task i is weighted by ``1 / ‖∇ L_i‖^p``,
rescaled to ``Σ w_i = T``: with ``p = 1`` every task then pushes the shared parameters with
the same force, the fixed point GradNorm approaches at α = 0, reached here in one step
instead of learnt. The squared norms are the diagonal of the tasks' Gramian.

Use it from a spec as an arm::

    arms:
      examples.inverse_norm_balancer:InverseGradientNorm: {power: 1.0}

or alone: ``gradsweep train --balancer examples.inverse_norm_balancer:InverseGradientNorm``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from gradsweep.trainers import (
    Balancer,
    BalancerContext,
    BalancerDeclaration,
    Need,
    TrainingStep,
    param,
)


@dataclass(frozen=True)
class InverseNormParams:
    """The arm's parameters: each becomes a spec field with its bounds and description."""

    power: float = param(1.0, description="p in w_i ∝ 1/‖∇L_i‖^p (0: equal weights)", ge=0)
    eps: float = param(1e-8, description="added to each norm, so a zero gradient is finite", gt=0)


class InverseGradientNorm(Balancer):
    """Weights ``∝ ‖∇_shared L_i‖^(−p)``, recomputed every step, ``Σ = T``."""

    declaration = BalancerDeclaration(
        name="inverse_norm",
        display="inverse gradient norm",
        summary="w_i ∝ 1/‖∇ L_i‖^p over the shared parameters, every step (an example plug-in)",
        weights_meaning="T · ‖∇L_i‖^(−p) / Σ_j ‖∇L_j‖^(−p) of the step's batch",
        params=InverseNormParams,
        needs=frozenset({Need.LOSSES, Need.TASK_GRADIENTS}),
    )

    def __init__(self, power: float = 1.0, eps: float = 1e-8) -> None:
        self.power = float(power)
        self.eps = float(eps)
        self._weights = torch.empty(0)

    def start(self, context: BalancerContext) -> None:
        self._weights = torch.ones(context.task_count, device=context.device)

    @property
    def weights(self) -> torch.Tensor:
        return self._weights

    def step(self, training_step: TrainingStep) -> None:
        gradients = training_step.task_gradients()  # (T, P), before w is chosen
        norms = training_step.gramian(gradients).diagonal().sqrt()
        inverse = (norms + self.eps) ** -self.power
        self._weights = (inverse * (inverse.numel() / inverse.sum())).detach()
        training_step.backward(self._weights)

    def hyperparameters(self) -> dict[str, object]:
        return {"power": self.power, "eps": self.eps}
