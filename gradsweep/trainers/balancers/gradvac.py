"""GradVac (Wang et al., ICLR 2021): task gradients pulled up to an adaptive cosine target.

Each step, every task gradient ``∇L_i`` is taken in turn through the other tasks in a random
order; wherever its cosine with ``∇L_j`` falls below the target ``φ̂_ij``, a multiple of
``∇L_j`` is added that raises the cosine to exactly ``φ̂_ij``; the targets then follow an EMA
of the observed cosines, ``φ̂ ← (1 − β) φ̂ + β φ`` (torchjd's ``GradVacWeighting``, on the
Gramian, the whole model as one parameter group). With the targets at 0 (the first step)
this is PCGrad. The update is ``Σ w_i ∇L_i`` with every ``w_i ≥ 1``. The targets are state:
a fresh weighting at every ``start``. Recorded: ``T · w / Σ w``; ``raw_weights`` are ``w``.
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
class GradVacParams(GramianParams):
    """GradVac's arm: how fast the cosine targets follow the observed cosines."""

    beta: float = param(
        0.5, description="the EMA rate β of the cosine targets (1: the last step's)", ge=0, le=1
    )


class GradVac(GramianBalancer):
    """The sum of the task gradients, each raised to its EMA cosine target with the others."""

    declaration = gramian_declaration(
        name="gradvac",
        display="GradVac",
        summary="Gradient Vaccine (Wang et al., ICLR 2021): each task gradient corrected "
        "toward an EMA target cosine with the others, in a random order, then summed",
        weights_meaning="T · w_i / Σ w, w (each ≥ 1) the weights of the sum of the task "
        "gradients corrected toward their EMA cosine targets",
        params=GradVacParams,
        order=56,
        reads_host=True,  # the corrections branch on each cosine, on the CPU
    )

    def __init__(self, gradients: str = "parameters", beta: float = 0.5) -> None:
        if not 0 <= beta <= 1:
            raise BalancerError(f"gradvac: beta must be in [0, 1], got {beta}")
        super().__init__(gradients)
        self.beta = float(beta)

    def make_weighting(self) -> Any:
        return aggregation.GradVacWeighting(beta=self.beta)

    def options(self) -> dict[str, object]:
        return {"beta": self.beta}
