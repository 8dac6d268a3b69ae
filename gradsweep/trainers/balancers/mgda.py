"""MGDA (Sener & Koltun, NeurIPS 2018): the min-norm point of the task gradients' hull.

Each step, ``α`` on the probability simplex minimises ``‖Σ α_i ∇L_i‖`` (Frank-Wolfe on the
Gramian, Algorithm 2 of the paper, torchjd's ``MGDAWeighting``); the shared parameters move
along ``Σ α_i ∇L_i``, a direction that lowers no task's loss less than any other common
descent direction would. Recorded: ``T · α`` (``Σ = T``); ``raw_weights`` are ``α``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

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
class MgdaParams(GramianParams):
    """MGDA's arm: only where its gradients are taken."""


class Mgda(GramianBalancer):
    """Min-norm convex combination of the task gradients, every step."""

    declaration = gramian_declaration(
        name="mgda",
        display="MGDA",
        summary="MGDA (Sener & Koltun 2018): the min-norm convex combination of the task "
        "gradients, every step (torchjd's Frank-Wolfe)",
        weights_meaning="T · α_i, α the min-norm convex combination (Σ α = 1) of the step's "
        "task gradients",
        params=MgdaParams,
        order=50,
        reads_host=True,  # Frank-Wolfe branches on values
    )

    def make_weighting(self) -> Any:
        return aggregation.MGDAWeighting()
