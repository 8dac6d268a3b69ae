"""CAGrad (Liu et al., NeurIPS 2021): the mean gradient, bent toward the worst-off task.

Each step maximises the smallest task improvement ``min_i ⟨∇L_i, d⟩`` over updates ``d`` in a
ball of radius ``c · ‖g₀‖`` around the mean gradient ``g₀`` (Algorithm 1 of the paper; its dual
is a convex programme over the simplex, solved by Clarabel as in torchjd's
``CAGradWeighting``). The update is ``g₀ + (c‖g₀‖ / ‖g_w‖) g_w``, ``g_w = Σ w_i ∇L_i`` the
dual's combination: every weight is ``1/T + (c‖g₀‖ / ‖g_w‖) w_i ≥ 1/T``; ``c = 0`` is the plain
mean. Recorded: ``T · weights / Σ weights``; ``raw_weights`` are those applied.

The weights are torchjd's, computed here (``BallWeighting``): the same factor ``A = U √S`` of
the Gramian, the same dual, the same Clarabel with its default settings, handed the conic
programme cvxpy builds from torchjd's statement (``min (A g₀)ᵀ w + φ t`` with ``Σ w = 1``,
``w ≥ 0``, ``(t, Aᵀ w)`` in the second-order cone), built directly: re-canonicalising that
programme every step, cvxpy took ~5 ms of the step at T = 10 on a CPU (Clarabel ~0.3).
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
    import torch
else:
    from gradsweep.trainers.lazy import torch

np: Any = LazyModule("numpy")
sparse: Any = LazyModule("scipy.sparse")
clarabel: Any = LazyModule("clarabel")


#: torchjd zeroes a Gramian whose trace is below ``norm_eps`` (1e-4 by default), and CAGrad
#: then applies no update to the shared parameters at all: on digits the trace is ~4e-5 at
#: initialisation, so the shared trunk never trained. The rule itself is scale-invariant
#: (the paper has no such threshold); only an exactly zero Gramian is left out.
NORM_EPS = 1e-12

#: Clarabel's outcomes that carry a solution (cvxpy's ``SOLUTION_PRESENT``: optimal, optimal
#: but inaccurate, or stopped at its iteration or time limit)
SOLVED = frozenset({"Solved", "AlmostSolved", "MaxIterations", "MaxTime"})


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


def dual_program(factor: Any, c: float) -> tuple[Any, float]:
    """CAGrad's dual as torchjd states it, ``min_w (A g₀)ᵀ w + φ ‖Aᵀ w‖`` over the simplex
    (``A Aᵀ`` the normalised Gramian, ``g₀ = Aᵀ 𝟙 / T``, ``φ = c ‖g₀‖``): its minimiser
    ``w``, by Clarabel on the programme cvxpy would hand it, and ``φ``."""
    tasks = factor.shape[0]
    mean = factor.T @ np.ones(tasks) / tasks
    radius = c * np.linalg.norm(mean, 2).item()
    # x = (w, t); rows: Σ w = 1 (zero cone), w ≥ 0 (nonnegative), (t, Aᵀ w) (second order)
    rows = np.zeros((2 * tasks + 2, tasks + 1))
    rows[0, :tasks] = 1.0
    rows[1 : tasks + 1, :tasks] = -np.eye(tasks)
    rows[tasks + 1, tasks] = -1.0
    rows[tasks + 2 :, :tasks] = -factor.T
    bounds = np.zeros(2 * tasks + 2)
    bounds[0] = 1.0
    cost = np.concatenate([factor @ mean, [radius]])
    cones = [
        clarabel.ZeroConeT(1),
        clarabel.NonnegativeConeT(tasks),
        clarabel.SecondOrderConeT(tasks + 1),
    ]
    settings = clarabel.DefaultSettings()
    settings.verbose = False
    quadratic = sparse.csc_matrix((tasks + 1, tasks + 1))
    solver = clarabel.DefaultSolver(
        quadratic, cost, sparse.csc_matrix(rows), bounds, cones, settings
    )
    solution = solver.solve()
    if str(solution.status) not in SOLVED:
        raise RuntimeError(f"cagrad: Clarabel found no solution ({solution.status})")
    return np.asarray(solution.x, dtype=np.float64)[:tasks], radius


class BallWeighting:
    """Gramian → CAGrad's weights: torchjd's ``CAGradWeighting`` step by step, its cvxpy
    statement replaced by the conic programme cvxpy builds from it (``dual_program``)."""

    def __init__(self, c: float, norm_eps: float = NORM_EPS) -> None:
        self.c = c
        self.norm_eps = norm_eps

    def __call__(self, gramian: torch.Tensor) -> torch.Tensor:
        trace = gramian.diagonal().sum()
        normalised = torch.where(trace < self.norm_eps, torch.zeros_like(gramian), gramian / trace)
        left, values, _ = torch.svd(normalised)  # A = U √S, in the Gramian's dtype, as torchjd
        factor = (left @ values.sqrt().diag()).detach().cpu().numpy().astype(np.float64)
        dual, radius = dual_program(factor, self.c)
        combined = np.linalg.norm(factor.T @ dual, 2).item()
        if combined >= self.norm_eps:
            weights = np.ones(len(dual)) / len(dual) + (radius / combined) * dual
        else:  # g_w = 0: already on the Pareto front, torchjd applies nothing
            weights = np.zeros(len(dual))
        return torch.from_numpy(weights).to(device=gramian.device, dtype=gramian.dtype)


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
        reads_host=True,  # a Clarabel solve on the CPU, every step
        requires=("clarabel",),
        extra="canon",
    )

    def __init__(self, gradients: str = "parameters", c: float = 0.4) -> None:
        if not 0 <= c < 1:
            raise BalancerError(f"cagrad: c must be in [0, 1), got {c}")
        super().__init__(gradients)
        self.c = float(c)

    def make_weighting(self) -> BallWeighting:
        return BallWeighting(self.c)

    def options(self) -> dict[str, object]:
        return {"c": self.c}
