"""FairGrad (Ban & Ji, ICML 2024): α-fair shares of the improvement among the tasks.

Each step, the update ``d = Σ w_i ∇L_i`` maximises the α-fair utility of the tasks'
improvements ``⟨∇L_i, d⟩`` in a ball; its optimality condition is ``G w = w^{-1/α}``
(elementwise), which torchjd's ``FairGradWeighting`` solves with scipy's non-negative least
squares, as the authors' code (Equation 4 of the paper). ``α = 0`` is the plain mean,
``α = 1`` proportional fairness, ``α → ∞`` max-min fairness. Every ``w_i > 0``.
Recorded: ``T · w / Σ w``; ``raw_weights`` are ``w``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from gradsweep.errors import BalancerError
from gradsweep.trainers.balancers.declaration import param
from gradsweep.trainers.balancers.gramian import (
    GramianBalancer,
    GramianParams,
    gramian_declaration,
)
from gradsweep.trainers.lazy import LazyModule

if TYPE_CHECKING:
    from torchjd import aggregation
else:
    aggregation = LazyModule("torchjd.aggregation")


@dataclass(frozen=True)
class FairGradParams(GramianParams):
    """FairGrad's arm: the α of α-fairness."""

    alpha: float = param(
        1.0,
        description="α of α-fairness: 0 the mean gradient, 1 proportional fairness (the "
        "authors' default), large α max-min fairness",
        ge=0,
    )


class FairGrad(GramianBalancer):
    """The combination of the task gradients that shares the improvement α-fairly."""

    declaration = gramian_declaration(
        name="fairgrad",
        display="FairGrad",
        summary="FairGrad (Ban & Ji, ICML 2024): the update whose per-task improvements are "
        "α-fair, from G w = w^(-1/α) solved by least squares",
        weights_meaning="T · w_i / Σ w, w > 0 solving G w = w^(-1/α): the task gradients' "
        "weights of the α-fair update",
        params=FairGradParams,
        order=57,
        reads_host=True,  # a scipy least-squares solve on the CPU, every step
        requires=("scipy",),
        extra="canon",
    )

    def __init__(self, gradients: str = "parameters", alpha: float = 1.0) -> None:
        if not alpha >= 0:
            raise BalancerError(f"fairgrad: alpha must be >= 0, got {alpha}")
        super().__init__(gradients)
        self.alpha = float(alpha)

    def make_weighting(self) -> Any:
        return aggregation.FairGradWeighting(alpha=self.alpha)

    def options(self) -> dict[str, object]:
        return {"alpha": self.alpha}
