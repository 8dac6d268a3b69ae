"""DB-MTL (Lin et al., "Dual-Balancing for Multi-Task Learning", arXiv 2308.12029, 2023).

Two balancings in one step, as LibMTL's ``DB_MTL`` (the authors' code) does them:

- loss scale: every task trains on ``log(L_i + ε)``, so its gradient is
  ``g_i = ∇L_i / (L_i + ε)`` (ε = 1e-8) and a task's loss unit no longer matters;
- gradient magnitude: an exponential moving average ``ĝ_i ← g_i + β_k (ĝ_i − g_i)``,
  ``β_k = β / k^σ`` at step k = 1, 2, … from ``ĝ = 0``, and ``α_i = max_j ‖ĝ_j‖ /
  (‖ĝ_i‖ + ε)`` bring every task's averaged gradient to the largest one's norm.

The shared parameters get ``Σ α_i ĝ_i``; each head the gradient of ``Σ log(L_i + ε)``,
i.e. its own task's ``∇L_i / (L_i + ε)``. Defaults are LibMTL's: ``β = 0.9``, ``σ = 0``
(a constant 0.9; the paper's ``β_k`` leaves ``σ`` free). With ``gradients=representation``
the average runs over the gradients at the shared features ``z`` instead (LibMTL refuses
that variant); those change shape only when a batch's size does, and the average then
starts again from zero.

Recorded: the weight each step puts on each task's *current* loss gradient over the
shared parameters, ``α_i (1 − β_k) / (L_i + ε)``, rescaled to ``Σ = T`` (the common
``1 − β_k`` cancels there); ``raw_weights`` are those before rescaling. The rest of the
update is the average's memory of earlier steps' gradients, which no per-step weight shows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from gradsweep.errors import BalancerError
from gradsweep.trainers.balancers.base import Balancer, BalancerContext
from gradsweep.trainers.balancers.declaration import BalancerDeclaration, Need, param
from gradsweep.trainers.balancers.gramian import SITES, GramianParams, gramian_label

if TYPE_CHECKING:
    import torch

    from gradsweep.trainers.engine.step import GradientSite, TrainingStep
else:
    from gradsweep.trainers.lazy import torch

EPS = 1e-8  # LibMTL's, in the log and in α


@dataclass(frozen=True)
class DbMtlParams(GramianParams):
    """DB-MTL's arm: the moving average's decay, and where its gradients are taken."""

    beta: float = param(0.9, description="β: the moving average's decay β_k = β / k^σ", ge=0, lt=1)
    beta_sigma: float = param(
        0.0, description="σ: how fast β_k = β / k^σ decays with the step k (0: constant)", ge=0
    )


class DbMtl(Balancer):
    """Log losses, then every task's averaged gradient scaled to the largest norm."""

    declaration = BalancerDeclaration(
        name="db_mtl",
        display="DB-MTL",
        summary="DB-MTL (Lin et al., arXiv 2023): log losses, then each task's moving-average "
        "gradient scaled to the largest one's norm",
        weights_meaning="α_i (1 − β_k) / (L_i + ε): the weight on each task's current loss "
        "gradient over the shared parameters (α the max-norm scaling of the moving averages), "
        "rescaled to Σ = T",
        params=DbMtlParams,
        label=gramian_label,
        needs=frozenset({Need.LOSSES, Need.TASK_GRADIENTS}),
        order=61,
    )

    def __init__(
        self, gradients: str = "parameters", beta: float = 0.9, beta_sigma: float = 0.0
    ) -> None:
        if gradients not in SITES:
            raise BalancerError(
                f"db_mtl: gradients must be one of {', '.join(SITES)}, got {gradients!r}"
            )
        if not 0 <= beta < 1:
            raise BalancerError(f"db_mtl: beta must be in [0, 1), got {beta}")
        if not beta_sigma >= 0:
            raise BalancerError(f"db_mtl: beta_sigma must be >= 0, got {beta_sigma}")
        self.gradients = gradients
        self.beta, self.beta_sigma = float(beta), float(beta_sigma)
        self._raw = torch.empty(0)
        self._average = torch.empty(0)
        self._steps = 0

    def start(self, context: BalancerContext) -> None:
        self._raw = torch.ones(context.task_count, device=context.device)
        self._average = torch.empty(0, device=context.device)  # zeros at the first step
        self._steps = 0

    @property
    def raw_weights(self) -> torch.Tensor:
        return self._raw

    @property
    def weights(self) -> torch.Tensor:
        return self._raw * (self._raw.numel() / self._raw.sum())

    def _site(self) -> GradientSite:
        from gradsweep.trainers.engine.step import GradientSite

        if self.gradients == "representation":
            return GradientSite.REPRESENTATION
        return GradientSite.SHARED_PARAMETERS

    def _averaged(self, gradients: torch.Tensor) -> float:
        """Move the average towards this step's log-loss gradients; returns ``β_k``."""
        if self._average.shape != gradients.shape:  # first step, or a batch of another size
            self._average = torch.zeros_like(gradients)
        self._steps += 1
        decay = self.beta / self._steps**self.beta_sigma
        self._average = gradients + decay * (self._average - gradients)
        return decay

    def step(self, training_step: TrainingStep) -> None:
        site = self._site()
        inverse = 1.0 / (training_step.losses.detach() + EPS)  # ∂ log(L + ε) / ∂L
        gradients = training_step.task_gradients(site)
        decay = self._averaged(gradients * inverse.to(gradients.dtype)[:, None])
        norms = torch.linalg.vector_norm(self._average, dim=1)
        alpha = norms.max() / (norms + EPS)
        training_step.backward_aggregated(alpha, self._average, site, head_weights=inverse)
        self._raw = (alpha * (1.0 - decay) * inverse.to(alpha.dtype)).detach()

    def hyperparameters(self) -> dict[str, object]:
        return {"beta": self.beta, "beta_sigma": self.beta_sigma, "gradients": self.gradients}
