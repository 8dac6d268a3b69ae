"""GradVac (Wang et al., ICLR 2021): task gradients pulled up to an adaptive cosine target.

Each step, every task gradient ``∇L_i`` is taken in turn through the other tasks in a random
order; wherever its cosine with ``∇L_j`` falls below the target ``φ̂_ij``, a multiple of
``∇L_j`` is added that raises the cosine to exactly ``φ̂_ij``; the targets then follow an EMA
of the observed cosines, ``φ̂ ← (1 − β) φ̂ + β φ`` (torchjd's ``GradVacWeighting``, on the
Gramian, the whole model as one parameter group). With the targets at 0 (the first step)
this is PCGrad. The update is ``Σ w_i ∇L_i`` with every ``w_i ≥ 1``. The targets are state:
a fresh weighting at every ``start``. Recorded: ``T · w / Σ w``; ``raw_weights`` are ``w``.

The weights are torchjd's rule, computed here (``VaccinatedWeighting``) with the tasks
side by side: each task's corrections depend only on its own row of coefficients and of
targets, never on another task's, so the ``k``-th partners of every task are visited at
once, ``T − 1`` vector steps instead of ``T (T − 1)`` scalar ones (each a dozen torch ops
and a read of a cosine back to Python: ~4 ms a step at T = 10 on a CPU, the step's largest
cost at z). The orders are the same draws (one ``torch.randperm(T − 1)`` a task, in task
order, from torch's global generator) and every value goes through the same torch ops in
the Gramian's dtype, so the weights and targets are torchjd's bit for bit (numpy's
correctly rounded float32 ``sqrt`` would not be: torch's differs in the last bit).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from gradsweep.errors import BalancerError
from gradsweep.trainers.balancers.declaration import param
from gradsweep.trainers.balancers.gramian import (
    GramianBalancer,
    GramianParams,
    gramian_declaration,
)

if TYPE_CHECKING:
    import torch
else:
    from gradsweep.trainers.lazy import torch

#: torchjd's ``eps``, added to the denominators of the cosine and of the correction
EPS = 1e-8


@dataclass(frozen=True)
class GradVacParams(GramianParams):
    """GradVac's arm: how fast the cosine targets follow the observed cosines."""

    beta: float = param(
        0.5, description="the EMA rate β of the cosine targets (1: the last step's)", ge=0, le=1
    )


def partner_orders(task_count: int) -> torch.Tensor:
    """``(T − 1, T)``: row ``k`` holds every task's ``k``-th partner, the other tasks in the
    order torchjd visits them (``torch.randperm(T − 1)`` for each task in turn, indexing the
    others in order)."""
    draws = torch.stack([torch.randperm(task_count - 1) for _ in range(task_count)])
    skip_self = (draws >= torch.arange(task_count)[:, None]).long()
    return (draws + skip_self).T.contiguous()


class VaccinatedWeighting:
    """Gramian → GradVac's weights, torchjd's ``GradVacWeighting`` arithmetic with the tasks
    side by side; the EMA cosine targets ``φ̂`` (zeros at first, in the Gramian's dtype) are
    its state, so ``make_weighting`` at ``start`` begins each run anew."""

    def __init__(self, beta: float) -> None:
        self.beta = beta
        self.targets = torch.empty(0)  # φ̂, (T, T) on the CPU

    def __call__(self, gramian: torch.Tensor) -> torch.Tensor:
        # read to the host once, as torchjd's (every correction branches on a cosine)
        host = torch.from_numpy(gramian.detach().cpu().numpy())
        if self.targets.shape != host.shape or self.targets.dtype != host.dtype:
            self.targets = torch.zeros_like(host)  # torchjd restarts them on either
        coefficients = self._corrected(host, partner_orders(host.shape[0]))
        return coefficients.sum(dim=0).to(device=gramian.device)

    def _corrected(self, gramian: torch.Tensor, partners: torch.Tensor) -> torch.Tensor:
        """``C`` with ``g_i^PC = Σ_k C_ik g_k``: row ``i`` starts at ``e_i`` and, at its
        ``k``-th partner ``j``, gains ``w`` on ``j`` when the cosine ``φ`` of ``g_i^PC`` with
        ``g_j`` is below its target; each target then follows ``φ``. ``C G`` is kept along
        (``g_i^PC · g_j``), so only the Gramian is read."""
        tasks = gramian.shape[0]
        coefficients = torch.eye(tasks, dtype=gramian.dtype)
        products = coefficients @ gramian
        cells = torch.arange(tasks)[None, :] * tasks + partners  # (i, j) in the flat (T, T)
        partner_norms = gramian.diagonal().clamp(min=0.0).sqrt()[partners]
        partner_rows = gramian[partners]  # (T − 1, T, T): the k-th partners' rows of G
        flat_coefficients, flat_targets = coefficients.view(-1), self.targets.view(-1)
        for k, cell in enumerate(cells):
            norms = (products * coefficients).sum(dim=1).clamp(min=0.0).sqrt()
            cosines = products.view(-1)[cell] / (norms * partner_norms[k] + EPS)
            wanted = flat_targets[cell]
            room = (1.0 - cosines * cosines).clamp(min=0.0).sqrt()
            wanted_room = (1.0 - wanted * wanted).clamp(min=0.0).sqrt()
            raised = norms * (wanted * room - cosines * wanted_room)
            step = raised / (partner_norms[k] * wanted_room + EPS)
            step = torch.where(cosines < wanted, step, 0.0)
            flat_coefficients[cell] = flat_coefficients[cell] + step
            products = products + step[:, None] * partner_rows[k]
            flat_targets[cell] = (1.0 - self.beta) * wanted + self.beta * cosines
        return coefficients


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
        reads_host=True,  # the Gramian is read to the CPU, where the corrections run
    )

    def __init__(self, gradients: str = "parameters", beta: float = 0.5) -> None:
        if not 0 <= beta <= 1:
            raise BalancerError(f"gradvac: beta must be in [0, 1], got {beta}")
        super().__init__(gradients)
        self.beta = float(beta)

    def make_weighting(self) -> VaccinatedWeighting:
        return VaccinatedWeighting(self.beta)

    def options(self) -> dict[str, object]:
        return {"beta": self.beta}
