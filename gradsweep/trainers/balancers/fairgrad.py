"""FairGrad (Ban & Ji, ICML 2024): α-fair shares of the improvement among the tasks.

Each step, the update ``d = Σ w_i ∇L_i`` maximises the α-fair utility of the tasks'
improvements ``⟨∇L_i, d⟩`` in a ball; its optimality condition is ``G w = w^{-1/α}``
(elementwise, Equation 4 of the paper). ``α = 0`` is the plain mean, ``α = 1``
proportional fairness, ``α → ∞`` max-min fairness. Every ``w_i > 0``.
Recorded: ``T · w / Σ w``; ``raw_weights`` are ``w``.

The authors' code (and torchjd's ``FairGradWeighting``) hands the condition to scipy's
bounded least squares from ``w = 1/T``, with finite-difference Jacobians: ~5 ms a step at
T = 10 on a CPU, the step's largest cost at z, and it stops at its tolerances (1e-8), or short
of the root on an ill-conditioned Gramian. Here (``FairWeighting``) the condition is solved
to rounding by Newton's method: it is the gradient of the strictly convex potential
``Φ(w) = ½ wᵀ G w − Σ h(w_i)``, ``h' = w^{-1/α}``, whose Hessian ``G + diag(w^{-1/α-1})/α`` is
positive definite for ``w > 0``, so the root is unique and damped Newton steps on ``Φ``
(kept inside ``w > 0``) reach it, from the root for orthogonal gradients,
``w_i = G_ii^{-α/(α+1)}``, in ~5–20 steps. Where there is no root (a task without
gradient, gradients exactly opposed) Newton does not converge, and the weights are then
scipy's least squares as the authors' (that same call, so the same outcome).
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
optimize: Any = LazyModule("scipy.optimize")

#: Newton steps before the weights are left to least squares (5–25 where a root exists)
NEWTON_STEPS = 100
#: converged: a Newton step moves no weight by more than this, relatively …
STEP_TOLERANCE = 1e-12
#: … or, in the quadratic phase, the condition holds to the rounding of its own terms
#: (this many ulps of their magnitude: an ill-conditioned Gramian's floor)
ROUNDING_ULPS = 64
#: below this relative step Newton is in its quadratic phase: the full step is taken (and
#: Armijo's test, lost to rounding there, is not made)
FULL_STEP = 1e-4
#: Armijo's sufficient decrease, how far a step may go toward w = 0, the shortest step tried
ARMIJO = 1e-4
TO_BOUNDARY = 0.99
SHORTEST = 1e-12


@dataclass(frozen=True)
class FairGradParams(GramianParams):
    """FairGrad's arm: the α of α-fairness."""

    alpha: float = param(
        1.0,
        description="α of α-fairness: 0 the mean gradient, 1 proportional fairness (the "
        "authors' default), large α max-min fairness",
        ge=0,
    )


class FairPotential:
    """``Φ(w) = ½ wᵀ G w − Σ h(w_i)`` with ``h' = w^{-1/α}`` (``h = log`` at α = 1), whose
    gradient ``G w − w^{-1/α}`` is FairGrad's condition."""

    def __init__(self, gramian: Any, alpha: float) -> None:
        self.gramian = gramian
        self.power = -1.0 / alpha  # h'(w) = w^power
        self.alpha = alpha

    def residual(self, w: Any) -> Any:
        return self.gramian @ w - w**self.power

    def hessian(self, w: Any) -> Any:
        return self.gramian + np.diag(w ** (self.power - 1) / self.alpha)

    def settled(self, w: Any, residual: Any) -> bool:
        """The condition holds to the rounding of its own terms."""
        scale = np.abs(self.gramian) @ w + w**self.power
        return bool(np.all(np.abs(residual) <= ROUNDING_ULPS * np.finfo(float).eps * scale))

    def change(self, w: Any, step: Any, t: float) -> float:
        """``Φ(w + t·step) − Φ(w)``, its logarithms and powers through ``log1p``/``expm1``
        so a short step's change is not lost to cancellation."""
        quadratic = t * (step @ self.gramian @ w) + 0.5 * t * t * (step @ self.gramian @ step)
        ratio = np.log1p(t * step / w)
        exponent = 1.0 + self.power  # h = w^exponent / exponent, or log at exponent 0
        gained = ratio if exponent == 0 else w**exponent * np.expm1(exponent * ratio) / exponent
        return float(quadratic - gained.sum())


def newton_root(potential: FairPotential) -> Any:
    """The root of ``G w = w^{-1/α}``, ``w > 0``, by damped Newton steps on ``Φ``; None when
    it does not converge (no root: ``Φ`` is unbounded below, or a task has no gradient)."""
    diagonal = np.diagonal(potential.gramian)
    if not (np.all(np.isfinite(potential.gramian)) and np.all(diagonal > 0)):
        return None
    w = diagonal ** (-potential.alpha / (potential.alpha + 1))  # the root for orthogonal tasks
    for _ in range(NEWTON_STEPS):
        residual = potential.residual(w)
        try:
            step = np.linalg.solve(potential.hessian(w), -residual)
        except np.linalg.LinAlgError:
            return None
        relative = float(np.max(np.abs(step) / w))
        if relative <= STEP_TOLERANCE:
            return w + step
        if relative <= FULL_STEP and potential.settled(w, residual):
            return w  # the step is rounding noise; growing weights never get here
        t = 1.0 if relative <= FULL_STEP else _damped(potential, w, step, residual)
        if t == 0.0:
            return None
        w = w + t * step
    return None


def _damped(potential: FairPotential, w: Any, step: Any, residual: Any) -> float:
    """Armijo's backtracking on ``Φ`` from the largest step that keeps every ``w_i > 0``;
    0 when no step decreases ``Φ`` enough."""
    shrinking = step < 0
    t = min(1.0, TO_BOUNDARY * float(np.min(-w[shrinking] / step[shrinking], initial=np.inf)))
    slope = float(residual @ step)  # ∇Φ · step < 0: the Hessian is positive definite
    while potential.change(w, step, t) > ARMIJO * t * slope:
        t /= 2
        if t < SHORTEST:
            return 0.0
    return t


def least_squares_root(gramian: Any, alpha: float) -> Any:
    """The authors' solve of the condition (torchjd's, verbatim in effect): scipy's bounded
    least squares from ``w = 1/T``, for a Gramian where Newton finds no root."""
    uniform = np.ones(gramian.shape[0]) / gramian.shape[0]
    result = optimize.least_squares(
        lambda w: gramian @ w - np.power(w, -1.0 / alpha), uniform, bounds=(0, np.inf)
    )
    return result.x


class FairWeighting:
    """Gramian → FairGrad's weights: the root of ``G w = w^{-1/α}`` (``newton_root``), in
    float64, or the authors' least squares where Newton finds none; uniform at α = 0."""

    def __init__(self, alpha: float) -> None:
        self.alpha = alpha

    def __call__(self, gramian: torch.Tensor) -> torch.Tensor:
        tasks = gramian.shape[0]
        if self.alpha == 0:  # linear scalarisation: the mean (the paper's §3)
            weights = np.ones(tasks) / tasks
        else:
            host = gramian.detach().cpu().numpy().astype(np.float64)
            root = newton_root(FairPotential(host, self.alpha))
            weights = least_squares_root(host, self.alpha) if root is None else root
        return torch.from_numpy(weights).to(device=gramian.device, dtype=gramian.dtype)


class FairGrad(GramianBalancer):
    """The combination of the task gradients that shares the improvement α-fairly."""

    declaration = gramian_declaration(
        name="fairgrad",
        display="FairGrad",
        summary="FairGrad (Ban & Ji, ICML 2024): the update whose per-task improvements are "
        "α-fair, from G w = w^(-1/α) solved to rounding (Newton's method)",
        weights_meaning="T · w_i / Σ w, w > 0 solving G w = w^(-1/α): the task gradients' "
        "weights of the α-fair update",
        params=FairGradParams,
        order=57,
        reads_host=True,  # Newton's method on the CPU, every step
        requires=("scipy",),
        extra="canon",
    )

    def __init__(self, gradients: str = "parameters", alpha: float = 1.0) -> None:
        if not alpha >= 0:
            raise BalancerError(f"fairgrad: alpha must be >= 0, got {alpha}")
        super().__init__(gradients)
        self.alpha = float(alpha)

    def make_weighting(self) -> FairWeighting:
        return FairWeighting(self.alpha)

    def options(self) -> dict[str, object]:
        return {"alpha": self.alpha}
