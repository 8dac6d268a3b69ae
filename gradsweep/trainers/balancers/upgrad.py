"""UPGrad (Quinton & Rey, 2024, "Jacobian Descent for Multi-Objective Optimization").

Each step, every task gradient ``∇L_i`` is projected onto the dual cone of all of them (the
directions that raise no task's loss), and the update is the mean of the projections
(torchjd's own ``UPGradWeighting``: one quadratic programme per task on the Gramian, solved by
quadprog). The update is then ``Σ w_i ∇L_i`` with every ``w_i ≥ 1/T``: it conflicts with no
task, and equals the mean gradient when no two tasks conflict. Recorded: ``T · w / Σ w``;
``raw_weights`` are ``w``.
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
class UpGradParams(GramianParams):
    """UPGrad's arm: only where its gradients are taken (torchjd's uniform preference)."""


class UpGrad(GramianBalancer):
    """The mean of the task gradients, each projected onto the tasks' dual cone."""

    declaration = gramian_declaration(
        name="upgrad",
        display="UPGrad",
        summary="UPGrad (Quinton & Rey 2024): the mean of the task gradients, each projected "
        "onto the dual cone of all of them, so the update conflicts with no task",
        weights_meaning="T · w_i / Σ w, w (each ≥ 1/T) the weights of the mean of the task "
        "gradients projected onto their dual cone",
        params=UpGradParams,
        order=53,
        reads_host=True,  # a quadprog QP on the CPU, every step
        requires=("quadprog", "qpsolvers"),
        extra="canon",
    )

    def make_weighting(self) -> Any:
        return aggregation.UPGradWeighting()
