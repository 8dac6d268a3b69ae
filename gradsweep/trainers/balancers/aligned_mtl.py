"""Aligned-MTL (Senushkin et al., CVPR 2023): the task gradients made orthogonal and equally long.

Each step, the Gramian's eigendecomposition ``G = V Λ Vᵀ`` gives the balance transformation
``B = √λ_min · V Λ^{-1/2} Vᵀ`` (Algorithm 1 of the paper, torchjd's ``AlignedMTLWeighting``):
the rows of ``B J`` are orthogonal, each of squared norm ``λ_min``, so the aligned Jacobian has
condition number 1. The update is their mean, ``Σ α_i ∇L_i`` with ``α = B 𝟙 / T``; ``α``
does not sum to 1 and an entry can be negative. ``scale_mode`` picks the eigenvalue that sets
the scale (``min``: the paper's ``λ_min``; ``median``; ``rmse``: the mean, as the authors'
code). Recorded: ``T · α / Σ α``; ``raw_weights`` are ``α``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, get_args

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

ScaleMode = Literal["min", "median", "rmse"]


@dataclass(frozen=True)
class AlignedMtlParams(GramianParams):
    """Aligned-MTL's arm: which eigenvalue of the Gramian scales the aligned gradients."""

    scale_mode: ScaleMode = param(
        "min",
        description="the Gramian's eigenvalue that scales the aligned gradients: min (the "
        "paper's smallest), median, or rmse (the mean, as the authors' code)",
    )


class AlignedMtl(GramianBalancer):
    """The mean of the task gradients after the balance transformation aligns them."""

    declaration = gramian_declaration(
        name="aligned_mtl",
        display="Aligned-MTL",
        summary="Aligned-MTL (Senushkin et al., CVPR 2023): the mean of the task gradients "
        "made orthogonal and of equal norm by the Gramian's eigendecomposition",
        weights_meaning="T · α_i / Σ α, α = √λ_min · G^{-1/2} 𝟙 / T (entries may be negative): "
        "the mean of the aligned, orthogonal and equally long, task gradients",
        params=AlignedMtlParams,
        order=52,
        reads_host=True,  # torchjd counts the Gramian's rank on the host to truncate it
    )

    def __init__(self, gradients: str = "parameters", scale_mode: ScaleMode = "min") -> None:
        if scale_mode not in get_args(ScaleMode):
            raise BalancerError(
                f"aligned_mtl: scale_mode must be one of {', '.join(get_args(ScaleMode))}, "
                f"got {scale_mode!r}"
            )
        super().__init__(gradients)
        self.scale_mode: ScaleMode = scale_mode

    def make_weighting(self) -> Any:
        return aggregation.AlignedMTLWeighting(scale_mode=self.scale_mode)

    def options(self) -> dict[str, object]:
        return {"scale_mode": self.scale_mode}
