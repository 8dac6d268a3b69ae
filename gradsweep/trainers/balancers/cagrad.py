"""CAGrad (Liu et al., NeurIPS 2021): the mean gradient, bent toward the worst-off task.

Each step maximises the smallest task improvement ``min_i ⟨∇L_i, d⟩`` over updates ``d`` in a
ball of radius ``c · ‖g₀‖`` around the mean gradient ``g₀`` (Algorithm 1 of the paper; its dual
is a convex programme over the simplex, solved by cvxpy's Clarabel in torchjd's
``CAGradWeighting``). The update is ``g₀ + (c‖g₀‖ / ‖g_w‖) g_w``, ``g_w = Σ w_i ∇L_i`` the
dual's combination: every weight is ``1/T + (c‖g₀‖ / ‖g_w‖) w_i ≥ 1/T``; ``c = 0`` is the plain
mean. Recorded: ``T · weights / Σ weights``; ``raw_weights`` are those applied.
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


#: torchjd zeroes a Gramian whose trace is below ``norm_eps`` (1e-4 by default), and CAGrad
#: then applies no update to the shared parameters at all: on digits the trace is ~4e-5 at
#: initialisation, so the shared trunk never trained. The rule itself is scale-invariant
#: (the paper has no such threshold); only an exactly zero Gramian is left out.
NORM_EPS = 1e-12


@dataclass(frozen=True)
class CaGradParams(GramianParams):
    """CAGrad's arm: the radius of the ball around the mean gradient."""

    c: float = param(
        0.4,
        description="the ball's radius, as a fraction of the mean gradient's norm (0: the "
        "mean gradient; the paper's convergence guarantee needs c < 1)",
        ge=0,
        lt=1,
    )


class CaGrad(GramianBalancer):
    """The update in a ball around the mean gradient that best serves the worst-off task."""

    declaration = gramian_declaration(
        name="cagrad",
        display="CAGrad",
        summary="CAGrad (Liu et al., NeurIPS 2021): the update within c·‖mean gradient‖ of "
        "the mean gradient that maximises the smallest task improvement",
        weights_meaning="T · w_i / Σ w, w_i = 1/T + (c‖g₀‖/‖g_w‖) · (the dual's simplex "
        "weight); each ≥ 1/T, all 1/T at c = 0",
        params=CaGradParams,
        order=54,
        reads_host=True,  # a cvxpy (Clarabel) solve on the CPU, every step
        requires=("cvxpy", "clarabel"),
        extra="canon",
    )

    def __init__(self, gradients: str = "parameters", c: float = 0.4) -> None:
        if not 0 <= c < 1:
            raise BalancerError(f"cagrad: c must be in [0, 1), got {c}")
        super().__init__(gradients)
        self.c = float(c)

    def make_weighting(self) -> Any:
        return aggregation.CAGradWeighting(c=self.c, norm_eps=NORM_EPS)

    def options(self) -> dict[str, object]:
        return {"c": self.c}
