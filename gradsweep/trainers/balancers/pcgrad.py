"""PCGrad (Yu et al., NeurIPS 2020): gradient surgery, each task's conflicts projected away.

Each step, every task gradient ``∇L_i`` is taken in turn through the other tasks in a random
order; wherever it conflicts with ``∇L_j`` (negative inner product) its component along
``∇L_j`` is removed (Algorithm 1 of the paper, torchjd's ``PCGradWeighting``, on the Gramian).
The update is the sum of the projected gradients, ``Σ w_i ∇L_i`` with every ``w_i ≥ 1``
(all 1 when no two tasks conflict). The random order is drawn with ``torch.randperm`` from
torch's global generator, which the loop seeds with the trial's seed. Recorded:
``T · w / Σ w``; ``raw_weights`` are ``w``.
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
class PcGradParams(GramianParams):
    """PCGrad's arm: only where its gradients are taken (the method has no parameter)."""


class PcGrad(GramianBalancer):
    """The sum of the task gradients, each with its conflicting components projected out."""

    declaration = gramian_declaration(
        name="pcgrad",
        display="PCGrad",
        summary="PCGrad (Yu et al., NeurIPS 2020): each task gradient projected off the ones "
        "it conflicts with, in a random order, then summed",
        weights_meaning="T · w_i / Σ w, w (each ≥ 1; all 1 without conflicts) the weights of "
        "the sum of the projected task gradients",
        params=PcGradParams,
        order=55,
        reads_host=True,  # the projections branch on the sign of each inner product, on the CPU
    )

    def make_weighting(self) -> Any:
        return aggregation.PCGradWeighting()
