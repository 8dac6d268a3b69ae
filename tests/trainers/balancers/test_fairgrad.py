"""FairGrad: torchjd's aggregation one step at a time, its weighting on Gramians from easy to
ill-conditioned, and the α-fair condition its weights meet.

torchjd (as the authors' code) solves the condition ``G w = w^{-1/α}`` by scipy's least
squares, which stops within its tolerances: on the toy's Gramians its weights meet the
condition to 1e-8 … 7e-5 (relative). Ours solve it to rounding (Newton's method), so the
reference is torchjd's weights carried the rest of the way to the root: a few plain Newton
steps on the same condition from torchjd's answer (``Polished``). Against that the weights
agree to rounding; against torchjd's own, to within torchjd's residual.
"""

from __future__ import annotations

import pytest
import torch
from torchjd.aggregation import FairGradWeighting, GramianWeightedAggregator, Weighting

from gradsweep.errors import BalancerError
from gradsweep.trainers.balancers.base import BalancerContext
from gradsweep.trainers.balancers.fairgrad import FairGrad as FairGradBalancer
from gradsweep.trainers.balancers.fairgrad import FairWeighting
from tests.trainers.balancers.random_gramians import TASK_COUNTS, jacobians
from tests.trainers.balancers.torchjd_reference import assert_step_matches_torchjd

CONFLICTING = [[1.0, 0.0, 0.0], [-0.8, 1.0, 0.0], [-0.5, -0.5, 1.0]]


ALPHAS = [0.5, 1.0, 2.0, 5.0]


def residual(gramian: torch.Tensor, weights: torch.Tensor, alpha: float) -> float:
    """How far ``w`` is from the condition, relative to its right-hand side: ``max_i |(G w)_i
    − w_i^{-1/α}| / w_i^{-1/α}``."""
    target = weights ** (-1 / alpha)
    return float(((gramian @ weights - target) / target).abs().max())


def polished(gramian: torch.Tensor, weights: torch.Tensor, alpha: float) -> torch.Tensor:
    """Plain Newton steps on ``G w − w^{-1/α} = 0`` from ``weights`` (Jacobian ``G +
    diag(w^{-1/α-1}) / α``): from a point within least squares' tolerance, the root."""
    for _ in range(4):
        jacobian = gramian + torch.diag(weights ** (-1 / alpha - 1) / alpha)
        weights = weights - torch.linalg.solve(
            jacobian, gramian @ weights - weights ** (-1 / alpha)
        )
    return weights


class Polished(Weighting):
    """torchjd's FairGrad weights, polished to the root of the condition they solve."""

    def __init__(self, alpha: float) -> None:
        super().__init__()
        self.alpha = alpha
        self.least_squares = FairGradWeighting(alpha=alpha)

    def forward(self, gramian: torch.Tensor, /) -> torch.Tensor:
        return polished(gramian, self.least_squares(gramian), self.alpha)


def polished_fairgrad(alpha: float) -> GramianWeightedAggregator:
    return GramianWeightedAggregator(Polished(alpha))


def started(tasks: int, alpha: float = 1.0) -> FairGradBalancer:
    balancer = FairGradBalancer(alpha=alpha)
    balancer.start(BalancerContext(tasks, torch.device("cpu"), None, lambda: torch.ones(tasks)))
    return balancer


@pytest.mark.parametrize("site", ["parameters", "representation"])
def test_a_step_is_torchjds_fairgrad_solved_to_the_root(float64: None, site: str) -> None:
    balancer = FairGradBalancer(gradients=site)
    raw = assert_step_matches_torchjd(balancer, polished_fairgrad(1.0), site)
    assert bool((raw > 0).all())
    assert balancer.weights == pytest.approx(3 * raw / raw.sum())


def test_another_alpha_is_torchjds_too(float64: None) -> None:
    assert_step_matches_torchjd(FairGradBalancer(alpha=2.0), polished_fairgrad(2.0))


@pytest.mark.parametrize("alpha", ALPHAS)
@pytest.mark.parametrize("tasks", TASK_COUNTS)
def test_the_weights_are_the_root_torchjd_approaches(tasks: int, alpha: float) -> None:
    """On every Gramian (condition 1 to 1e12, rank-deficient): ours meet the condition to
    rounding. Where torchjd's least squares got near the root (relative residual ≤ 1e-4),
    ours are its weights polished to the root, to 1e-9, and differ from its own by no more
    than its residual allows; where it stopped short (on ill-conditioned Gramians, with
    residuals of 0.5 to 1e3), ours are still the root, and torchjd's are not."""
    near = 0
    for case, jacobian in jacobians(tasks):
        gramian = jacobian @ jacobian.T
        ours = FairWeighting(alpha)(gramian)
        assert bool((ours > 0).all()), case
        scale = gramian.abs() @ ours + ours ** (-1 / alpha)  # the condition's terms' size
        error = (gramian @ ours - ours ** (-1 / alpha)).abs() / scale
        assert float(error.max()) < 1e-13, case
        theirs = FairGradWeighting(alpha=alpha)(gramian)
        missed = residual(gramian, theirs, alpha)
        if missed <= 1e-4:
            near += 1
            reference = polished(gramian, theirs, alpha)
            torch.testing.assert_close(ours, reference, rtol=1e-9, atol=0, msg=case)
            assert float(((ours - theirs) / ours).abs().max()) <= 30 * missed + 1e-12, case
    assert near >= 3  # the comparison is not vacuous


@pytest.mark.parametrize(
    "jacobian",
    [[[1.0, 0.0], [-1.0, 0.0]], [[1.0, 0.0], [0.0, 0.0]]],
    ids=["opposed", "one-without-gradient"],
)
def test_without_a_root_the_weights_are_the_authors_least_squares(
    jacobian: list[list[float]],
) -> None:
    """Exactly opposed gradients, or a task without gradient: ``G w = w^{-1/α}`` has no
    positive root (Newton's iterates grow without bound), and the weights are what the
    authors' least squares returns, that same call's."""
    rows = torch.tensor(jacobian, dtype=torch.float64)
    gramian = rows @ rows.T
    ours = FairWeighting(1.0)(gramian)
    assert torch.equal(ours, FairGradWeighting(alpha=1.0)(gramian))


def test_the_weights_keep_the_gramians_dtype() -> None:
    (_, jacobian), *_ = jacobians(3)
    gramian = (jacobian @ jacobian.T).to(torch.float32)
    weights = FairWeighting(1.0)(gramian)
    assert weights.dtype == torch.float32
    assert weights == pytest.approx(FairWeighting(1.0)(gramian.double()).float(), rel=1e-6)


@pytest.mark.parametrize("alpha", [0.5, 1.0, 2.0])
def test_the_weights_solve_g_w_equals_w_to_the_minus_one_over_alpha(
    float64: None, alpha: float
) -> None:
    """Equation 4 of the paper: each task's improvement ⟨∇L_i, d⟩ = (G w)_i = w_i^{-1/α}."""
    jacobian = torch.tensor(CONFLICTING)
    gramian = jacobian @ jacobian.T
    weights = started(3, alpha).weights_of(gramian)
    assert bool((weights > 0).all())
    assert gramian @ weights == pytest.approx(weights ** (-1 / alpha), rel=1e-6)


def test_alpha_zero_is_the_mean_gradient(float64: None) -> None:
    jacobian = torch.tensor(CONFLICTING)
    weights = started(3, alpha=0.0).weights_of(jacobian @ jacobian.T)
    assert weights == pytest.approx(torch.full((3,), 1 / 3))


@pytest.mark.parametrize("alpha", [-1.0, float("nan")])
def test_a_bad_alpha_is_refused(alpha: float) -> None:
    with pytest.raises(BalancerError, match="alpha must be"):
        FairGradBalancer(alpha=alpha)


def test_the_label_and_records() -> None:
    declaration = FairGradBalancer.declaration
    labels = [
        declaration.configurations_of(declaration.params(gradients=g, alpha=a))[0].label
        for g, a in (("parameters", 1.0), ("representation", 2.0))
    ]
    assert labels == ["alpha=1", "alpha=2,at=z"]
    assert FairGradBalancer().hyperparameters() == {"alpha": 1.0, "gradients": "parameters"}
