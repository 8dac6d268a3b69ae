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

The programs run on the host, so every recomputing step reads the Gramian back. Each is
handed to ECOS as the conic programme cvxpy builds from the official statement (the same
data, bit for bit: ``_LinearisedProgram``), built directly: cvxpy re-canonicalised it at
every solve (its parameters are not DPP), ~25 ms a program at T = 10 against ~0.5 ms for
ECOS itself. And the stopping rule is read before a solve rather than after it: when the
current ``α`` already meets it the official code solves once more and then keeps that ``α``
whatever the solve returned, so that solve is skipped (the outcome is the same).
"""

from __future__ import annotations

import math
import numbers
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
sparse: Any = LazyModule("scipy.sparse")
ecos: Any = LazyModule("ecos")

#: the official code's stopping rule: the bargaining condition met, or an iterate that stalls
CONDITION_TOLERANCE = 1e-3
STALL_TOLERANCE = 1e-6
#: added to α in 1/α of the stopping rule, as the official code does
RECIPROCAL_EPS = 1e-10
#: ECOS's iteration cap for one convex program (the official code's)
SOLVER_MAX_ITERS = 100
#: ECOS's exit flags that carry a solution, as cvxpy reads them: optimal, optimal to reduced
#: accuracy, stopped at the iteration cap (cvxpy's ``SOLUTION_PRESENT``) …
SOLVED = frozenset({0, 10, -1})
#: … and those that say there is none (infeasible, unbounded, or nearly so): no α then
NO_SOLUTION = frozenset({1, 2, 11, 12})


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
    """The convex program of one iteration for ``T`` tasks, in the conic form ECOS takes
    (``min cᵀx`` s.t. ``h − G x`` in the cone): the data cvxpy builds from the official
    statement, ``min Σ (Ĝα)_i + φ'(α₀)ᵀ(α − α₀) / c`` s.t. ``−log(α_i c) − log((Ĝα)_i) ≤ 0``,
    ``α ≥ 0``, one constraint per task (a vectorised statement is the same program but
    canonicalised differently, ≈1e-8 apart).

    ``x = (α, t_11, t_12, …, t_T1, t_T2)``: ``α ≥ 0``; ``t_i1 + t_i2 ≥ 0`` per task; and per
    task two exponential cones (ECOS's order ``(t, u, 1)``: ``t ≤ log u``), ``t_i1 ≤ log(c α_i)``
    and ``t_i2 ≤ log((Ĝα)_i)``. The scaled Gramian and its scale ``c`` fill ``G`` once per
    recomputation (``use``); the linearisation point ``α₀`` moves only the cost."""

    def __init__(self, tasks: int) -> None:
        self.tasks = tasks
        self.rows = np.zeros((8 * tasks, 3 * tasks))
        self.bounds = np.zeros(8 * tasks)
        self.rows[:tasks, :tasks] = -np.eye(tasks)  # α ≥ 0
        for i in range(tasks):
            first, second, cone = tasks + 2 * i, tasks + 2 * i + 1, 2 * tasks + 6 * i
            self.rows[tasks + i, [first, second]] = -1.0  # t_i1 + t_i2 ≥ 0
            self.rows[cone, first] = -1.0  # (t_i1, c α_i, 1)
            self.bounds[cone + 2] = 1.0
            self.rows[cone + 3, second] = -1.0  # (t_i2, (Ĝα)_i, 1)
            self.bounds[cone + 5] = 1.0
        self.cones = {"l": 2 * tasks, "q": [], "e": 2 * tasks}
        self.scaled: Any = np.eye(tasks)
        self.scale = 1.0
        self.matrix: Any = None

    def use(self, scaled_gramian: Any, scale: float) -> None:
        self.scaled, self.scale = scaled_gramian, scale
        for i in range(self.tasks):
            cone = 2 * self.tasks + 6 * i
            self.rows[cone + 1, i] = -scale
            self.rows[cone + 4, : self.tasks] = -scaled_gramian[i]
        self.matrix = sparse.csc_matrix(self.rows)  # stores the nonzeros only, as cvxpy's

    def cost(self, anchor: Any) -> Any:
        """``Σ_i Ĝ_i· + φ'(α₀) / c`` on ``α`` (the constant ``−φ'(α₀)ᵀα₀ / c`` dropped, as
        cvxpy's offset), nothing on the ``t``."""
        # φ(α) = Σ log α_i + log (Ĝα)_i is concave: its tangent at α₀ keeps the program convex
        slope = 1 / anchor + (1 / (self.scaled @ anchor)) @ self.scaled
        cost = np.zeros(3 * self.tasks)
        # times 1/c, not over c: cvxpy's rounding (ECOS turns a last-bit difference in the
        # cost into ~1e-7 in α on a nearly converged program)
        cost[: self.tasks] = self.scaled.sum(axis=0) + slope * (1 / self.scale)
        return cost

    def solve_from(self, anchor: Any) -> Any:
        """The program's minimiser linearised at ``anchor``; ``anchor`` itself when the
        solver fails, None when it finds no solution (as cvxpy reports them)."""
        try:
            solution = ecos.solve(
                self.cost(anchor),
                self.matrix,
                self.bounds,
                self.cones,
                verbose=False,
                max_iters=SOLVER_MAX_ITERS,
            )
        except ValueError:
            return anchor
        flag = solution["info"]["exitFlag"]
        if flag in NO_SOLUTION:
            return None
        if flag not in SOLVED:  # cvxpy raises SolverError: the official code keeps α₀
            return anchor
        return np.array(solution["x"][: self.tasks], dtype=np.float64)


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
            # the official code solves, then stops keeping α when α met the condition: the
            # solve cannot change that outcome, so it is skipped
            if self._bargained(scaled, alpha):
                break
            candidate = program.solve_from(alpha)
            if candidate is None or self._stalled(alpha, candidate):
                break  # the official code keeps the iterate before the last solve
            alpha = candidate
        return alpha

    @staticmethod
    def _bargained(scaled: Any, alpha: Any) -> bool:
        """The official stopping rule's condition: ``‖Ĝα − 1/α‖ < 10⁻³``."""
        condition = np.linalg.norm(scaled @ alpha - 1 / (alpha + RECIPROCAL_EPS))
        return bool(condition < CONDITION_TOLERANCE)

    @staticmethod
    def _stalled(alpha: Any, candidate: Any) -> bool:
        return bool(np.linalg.norm(candidate - alpha) < STALL_TOLERANCE)

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
        reads_host=True,  # the programs are solved on the host (ECOS)
        requires=("ecos",),
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
