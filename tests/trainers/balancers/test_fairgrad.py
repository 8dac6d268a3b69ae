"""FairGrad: torchjd's aggregation, one step at a time, and the α-fair condition its
weights meet."""

from __future__ import annotations

import pytest
import torch
from torchjd.aggregation import FairGrad

from gradsweep.errors import BalancerError
from gradsweep.trainers.balancers.base import BalancerContext
from gradsweep.trainers.balancers.fairgrad import FairGrad as FairGradBalancer
from tests.trainers.balancers.torchjd_reference import assert_step_matches_torchjd

CONFLICTING = [[1.0, 0.0, 0.0], [-0.8, 1.0, 0.0], [-0.5, -0.5, 1.0]]


def started(tasks: int, alpha: float = 1.0) -> FairGradBalancer:
    balancer = FairGradBalancer(alpha=alpha)
    balancer.start(BalancerContext(tasks, torch.device("cpu"), None, lambda: torch.ones(tasks)))
    return balancer


@pytest.mark.parametrize("site", ["parameters", "representation"])
def test_a_step_is_torchjds_fairgrad(float64: None, site: str) -> None:
    balancer = FairGradBalancer(gradients=site)
    raw = assert_step_matches_torchjd(balancer, FairGrad(alpha=1.0), site)
    assert bool((raw > 0).all())
    assert balancer.weights == pytest.approx(3 * raw / raw.sum())


def test_another_alpha_is_torchjds_too(float64: None) -> None:
    assert_step_matches_torchjd(FairGradBalancer(alpha=2.0), FairGrad(alpha=2.0))


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
