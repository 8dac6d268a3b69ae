"""Nash-MTL (Navon et al., ICML 2022): the tasks bargain over the shared update.

The update ``d = Σ α_i g_i`` is the Nash bargaining solution of the tasks, whose utilities
are ``g_iᵀ d``: ``α > 0`` with ``(G α)_i = 1 / α_i``, ``G = J Jᵀ`` the Gramian of the task
gradients. As in the paper's official code (and torchjd's ``NashMTL``), ``α`` comes from a
sequence of convex programs (the paper's §3.3): on the Gramian scaled to unit Frobenius
norm ``Ĝ = G / c``, each program minimises ``Σ (Ĝ α)_i + φ'(α₀)ᵀ(α − α₀) / c`` (``φ`` the
concave part ``Σ log α_i + log (Ĝ α)_i`` linearised at the previous iterate ``α₀``) subject
to ``α_i c (Ĝ α)_i ≥ 1``. At most ``optim_niter`` programs, each solved by ECOS, starting
from the last step's ``α`` (the warm start); it stops early once ``‖Ĝ α − 1/α‖ < 10⁻³`` or
an iterate moves less than ``10⁻⁶``, keeping the iterate before that last solve, and the
last one as it is when a program has no solution (an unbounded linearisation, possible when
some ``(Ĝ α₀)_i < 0``), as the official code does. ``α`` is recomputed every
``update_weights_every`` steps and reused in between. Finally, when ``‖Jᵀ α‖ = √(αᵀ G α)``
exceeds ``max_norm`` (0: never), ``α`` is scaled down to it, so the applied ``raw_weights``
are the clipped ones. Recorded: ``α`` rescaled to ``Σ = T``.

The programs run on the host (cvxpy), so every recomputing step reads the Gramian back.
"""

from __future__ import annotations

import math
import numbers
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from gradsweep.errors import BalancerError
from gradsweep.trainers.balancers.declaration import BalancerDeclaration, Need, number, param
from gradsweep.trainers.balancers.gramian import GramianBalancer, GramianParams
from gradsweep.trainers.lazy import LazyModule

if TYPE_CHECKING:
    import torch
else:
    from gradsweep.trainers.lazy import torch

np: Any = LazyModule("numpy")
cp: Any = LazyModule("cvxpy")

#: the official code's stopping rule: the bargaining condition met, or an iterate that stalls
CONDITION_TOLERANCE = 1e-3
STALL_TOLERANCE = 1e-6
#: added to α in 1/α of the stopping rule, as the official code does
RECIPROCAL_EPS = 1e-10
#: ECOS's iteration cap for one convex program (the official code's)
SOLVER_MAX_ITERS = 100


@dataclass(frozen=True)
class NashMtlParams(GramianParams):
    """The nash_mtl arm: the official code's three hyperparameters, and where the gradients
    are taken."""

    update_weights_every: int = param(
        1, description="recompute α every this many steps, reusing the last α between", ge=1
    )
    optim_niter: int = param(
        20, description="at most this many convex programs per recomputation", ge=1
    )
    max_norm: float = param(
        1.0, description="largest norm of the aggregated gradient Jᵀα (0: no clipping)", ge=0
    )


def nash_label(params: Any) -> str:
    """``every=1,iters=20,max_norm=1``, with ``at=z`` for the representation variant."""
    label = (
        f"every={params.update_weights_every},iters={params.optim_niter},"
        f"max_norm={number(params.max_norm)}"
    )
    return label + (",at=z" if params.gradients == "representation" else "")


class _LinearisedProgram:
    """The convex program of one iteration, built once for ``T`` tasks; its parameters (the
    scaled Gramian, its scale ``c`` and the linearisation point ``α₀``) change per solve."""

    def __init__(self, task_count: int) -> None:
        self.alpha = cp.Variable(task_count, nonneg=True)
        self.anchor = cp.Parameter(task_count, value=np.ones(task_count))
        self.gramian = cp.Parameter((task_count, task_count), value=np.eye(task_count))
        self.scale = cp.Parameter(1, value=np.ones(1))
        utilities = self.gramian @ self.alpha  # (Ĝ α)_i: each task's gain, up to c
        # φ(α) = Σ log α_i + log (Ĝα)_i is concave: its tangent at α₀ keeps the program convex
        slope = 1 / self.anchor + (1 / (self.gramian @ self.anchor)) @ self.gramian
        tangent = slope @ (self.alpha - self.anchor)
        # one constraint per task (log α_i c + log (Ĝα)_i ≥ 0), as the paper's code states it:
        # a vectorised form is the same program but canonicalised differently (≈1e-8 apart)
        bargains = [
            -cp.log(self.alpha[i] * self.scale) - cp.log(utilities[i]) <= 0
            for i in range(task_count)
        ]
        objective = cp.Minimize(cp.sum(utilities) + tangent / self.scale)
        self.problem = cp.Problem(objective, bargains)

    def use(self, scaled_gramian: Any, scale: float) -> None:
        self.gramian.value = scaled_gramian
        self.scale.value = np.array([scale])

    def solve_from(self, anchor: Any) -> Any:
        """The program's minimiser linearised at ``anchor`` (started there); ``anchor`` itself
        when the solver fails, None when it finds no solution."""
        self.alpha.value = anchor
        self.anchor.value = anchor
        try:
            with warnings.catch_warnings():  # its non-DPP parameters: re-canonicalised per solve
                warnings.filterwarnings("ignore", message=".*not DPP.*")
                # ECOS stopping at max_iters says so on every solve (thousands of lines a
                # trial, since catch_warnings resets "once"); the official code and torchjd
                # take such a solution too
                warnings.filterwarnings("ignore", message=".*may be inaccurate.*")
                self.problem.solve(solver=cp.ECOS, warm_start=True, max_iters=SOLVER_MAX_ITERS)
        except (cp.SolverError, ValueError):
            return anchor
        value = self.alpha.value
        return None if value is None else np.array(value, dtype=np.float64)


class NashBargaining:
    """Gramian → α of Nash-MTL, stateful: the step count, the last α (the next warm start)
    and the program live here, so ``make_weighting`` at ``start`` begins each run anew."""

    def __init__(self, update_weights_every: int, optim_niter: int, max_norm: float) -> None:
        self.update_weights_every = update_weights_every
        self.optim_niter = optim_niter
        self.max_norm = max_norm
        self.calls = 0
        self.alpha: Any = None  # the last solved α (unclipped), float64 numpy
        self._program: _LinearisedProgram | None = None

    def __call__(self, gramian: torch.Tensor) -> torch.Tensor:
        gramian = gramian.detach()
        if self._program is None:
            self._program = _LinearisedProgram(gramian.shape[0])
            self.alpha = np.ones(gramian.shape[0])
        if self.calls % self.update_weights_every == 0:
            self.alpha = self._bargain(self._program, gramian)
        self.calls += 1
        alpha = torch.tensor(self.alpha, dtype=gramian.dtype, device=gramian.device)
        return self._clipped(alpha, gramian)

    def _bargain(self, program: _LinearisedProgram, gramian: torch.Tensor) -> Any:
        """The sequence of convex programs from the last α, on the Gramian scaled to norm 1."""
        scale = float(torch.linalg.matrix_norm(gramian))  # the host read of every recomputation
        if not (scale > 0 and math.isfinite(scale)):
            return self.alpha  # no gradient to bargain over (or a broken one): keep the last α
        scaled = (gramian / scale).cpu().to(torch.float64).numpy()
        program.use(scaled, scale)
        alpha = self.alpha
        for _ in range(self.optim_niter):
            candidate = program.solve_from(alpha)
            if self._settled(scaled, alpha, candidate):
                break  # the official code keeps the iterate before the last solve
            alpha = candidate
        return alpha

    @staticmethod
    def _settled(scaled: Any, alpha: Any, candidate: Any) -> bool:
        if candidate is None:
            return True
        condition = np.linalg.norm(scaled @ alpha - 1 / (alpha + RECIPROCAL_EPS))
        return bool(
            condition < CONDITION_TOLERANCE or np.linalg.norm(candidate - alpha) < STALL_TOLERANCE
        )

    def _clipped(self, alpha: torch.Tensor, gramian: torch.Tensor) -> torch.Tensor:
        """α scaled so ``‖Jᵀα‖ = √(αᵀGα)`` is at most ``max_norm`` (0: unchanged)."""
        if self.max_norm == 0:
            return alpha
        norm = (alpha @ gramian @ alpha).clamp_min(0).sqrt()
        return torch.where(norm > self.max_norm, alpha * (self.max_norm / norm), alpha)


def _count(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise BalancerError(f"nash_mtl: {name} must be an integer ≥ 1, got {value!r}")
    return int(value)


class NashMtl(GramianBalancer):
    """The Nash bargaining solution of the task gradients, by the official code's programs."""

    declaration = BalancerDeclaration(
        name="nash_mtl",
        display="Nash-MTL",
        summary="Nash-MTL (Navon et al., ICML 2022): the Nash bargaining solution α > 0 of "
        "G α = 1/α over the task gradients' Gramian, by the official code's convex programs",
        weights_meaning="T · α_i / Σ α, α the (norm-clipped) Nash bargaining weights of the "
        "step's task gradients, recomputed every update_weights_every steps",
        params=NashMtlParams,
        label=nash_label,
        needs=frozenset({Need.LOSSES, Need.TASK_GRADIENTS}),
        order=58,
        reads_host=True,  # the programs are solved on the host (cvxpy and ECOS)
        requires=("cvxpy", "ecos"),
        extra="canon",
    )

    def __init__(
        self,
        update_weights_every: int = 1,
        optim_niter: int = 20,
        max_norm: float = 1.0,
        gradients: str = "parameters",
    ) -> None:
        super().__init__(gradients)
        self.update_weights_every = _count("update_weights_every", update_weights_every)
        self.optim_niter = _count("optim_niter", optim_niter)
        if not float(max_norm) >= 0:
            raise BalancerError(f"nash_mtl: max_norm must be ≥ 0 (0: no clipping), got {max_norm}")
        self.max_norm = float(max_norm)

    def make_weighting(self) -> NashBargaining:
        return NashBargaining(self.update_weights_every, self.optim_niter, self.max_norm)

    def options(self) -> dict[str, object]:
        return {
            "update_weights_every": self.update_weights_every,
            "optim_niter": self.optim_niter,
            "max_norm": self.max_norm,
        }
