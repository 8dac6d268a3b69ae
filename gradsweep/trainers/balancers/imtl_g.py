"""IMTL-G (Liu et al., ICLR 2021): an update that projects equally on every task's direction.

Each step, ``α`` with ``Σ α = 1`` solves ``G α ∝ (‖∇L_1‖, …, ‖∇L_T‖)``, i.e.
``α ∝ G⁺ d`` with ``d_i = ‖∇L_i‖`` (torchjd's ``IMTLGWeighting``, whose pseudo-inverse
allows linearly dependent gradients): the update ``Σ α_i ∇L_i`` then has the same inner
product with every unit task gradient ``∇L_i / ‖∇L_i‖``, so no task gains from the length
of its gradient. ``α`` is an affine, not a convex, combination: an entry can be negative.
Recorded: ``T · α`` (``Σ = T``); ``raw_weights`` are ``α``.
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
class ImtlGParams(GramianParams):
    """IMTL-G's arm: only where its gradients are taken (the method has no parameter)."""


class ImtlG(GramianBalancer):
    """Weights whose combined gradient projects equally on every unit task gradient."""

    declaration = gramian_declaration(
        name="imtl_g",
        display="IMTL-G",
        summary="IMTL-G (Liu et al., ICLR 2021): the combination of the task gradients, "
        "summing to 1, whose projection on every unit task gradient is the same",
        weights_meaning="T · α_i, α (Σ α = 1, entries may be negative) ∝ G⁺ (‖∇L_i‖)_i, so "
        "Σ α_i ∇L_i projects equally on every task's unit gradient",
        params=ImtlGParams,
        order=51,
        reads_host=True,  # torchjd branches on |Σ v| < 1e-12
    )

    def make_weighting(self) -> Any:
        return aggregation.IMTLGWeighting()
