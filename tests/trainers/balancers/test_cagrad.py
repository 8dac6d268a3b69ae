"""CAGrad: torchjd's aggregation, one step at a time, its weighting on Gramians from easy to
ill-conditioned (computed here without cvxpy: the same Clarabel on the same conic data), and
the ball its update lies on."""

from __future__ import annotations

import pytest
import torch
from torchjd.aggregation import CAGrad, CAGradWeighting

from gradsweep.errors import BalancerError
from gradsweep.trainers.balancers.base import BalancerContext
from gradsweep.trainers.balancers.cagrad import NORM_EPS, BallWeighting, CaGrad
from tests.trainers.balancers.random_gramians import TASK_COUNTS, jacobians
from tests.trainers.balancers.torchjd_reference import assert_step_matches_torchjd

CONFLICTING = [[1.0, 0.0, 0.0], [-0.8, 1.0, 0.0], [-0.5, -0.5, 1.0]]


def started(tasks: int, c: float = 0.4) -> CaGrad:
    balancer = CaGrad(c=c)
    balancer.start(BalancerContext(tasks, torch.device("cpu"), None, lambda: torch.ones(tasks)))
    return balancer


@pytest.mark.parametrize("site", ["parameters", "representation"])
def test_a_step_is_torchjds_cagrad(float64: None, site: str) -> None:
    balancer = CaGrad(gradients=site)
    raw = assert_step_matches_torchjd(balancer, CAGrad(c=0.4, norm_eps=NORM_EPS), site)
    assert bool((raw >= 1 / 3 - 1e-12).all())
    assert balancer.weights == pytest.approx(3 * raw / raw.sum())


def test_another_radius_is_torchjds_too(float64: None) -> None:
    assert_step_matches_torchjd(CaGrad(c=0.9), CAGrad(c=0.9, norm_eps=NORM_EPS))


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("c", [0.4, 0.9, 0.0])
@pytest.mark.parametrize("tasks", TASK_COUNTS)
def test_the_weights_are_torchjds_on_every_gramian(
    tasks: int, c: float, dtype: torch.dtype
) -> None:
    """The same factorisation, dual and Clarabel run as torchjd's cvxpy statement, so the
    weights agree to rounding (bit for bit here), ill-conditioned and singular Gramians
    included, in the Gramian's own dtype (float32 in training)."""
    for case, jacobian in jacobians(tasks):
        gramian = (jacobian @ jacobian.T).to(dtype)
        ours = BallWeighting(c)(gramian)
        reference = CAGradWeighting(c=c, norm_eps=NORM_EPS)(gramian)
        assert ours.dtype == dtype, case
        torch.testing.assert_close(ours, reference, rtol=1e-12, atol=0, msg=case)


def test_the_update_lies_on_the_ball_around_the_mean_gradient(float64: None) -> None:
    """d = g₀ + (c‖g₀‖/‖g_w‖) g_w: at distance exactly c‖g₀‖ from the mean gradient g₀."""
    jacobian = torch.tensor(CONFLICTING)
    weights = started(3).weights_of(jacobian @ jacobian.T)
    mean = jacobian.mean(dim=0)
    assert float((weights @ jacobian - mean).norm()) == pytest.approx(0.4 * float(mean.norm()))
    assert bool((weights >= 1 / 3 - 1e-12).all())


def test_c_zero_is_the_mean_gradient(float64: None) -> None:
    jacobian = torch.tensor(CONFLICTING)
    weights = started(3, c=0.0).weights_of(jacobian @ jacobian.T)
    assert weights == pytest.approx(torch.full((3,), 1 / 3), rel=1e-9)


@pytest.mark.parametrize("c", [-0.1, 1.0, float("nan")])
def test_a_bad_radius_is_refused(c: float) -> None:
    with pytest.raises(BalancerError, match="c must be"):
        CaGrad(c=c)


def test_the_label_and_records() -> None:
    declaration = CaGrad.declaration
    labels = [
        declaration.configurations_of(declaration.params(gradients=g, c=c))[0].label
        for g, c in (("parameters", 0.4), ("representation", 0.25))
    ]
    assert labels == ["c=0.4", "c=0.25,at=z"]
    assert CaGrad().hyperparameters() == {"c": 0.4, "gradients": "parameters"}


def test_a_small_gramian_still_moves_the_shared_parameters(float64: None) -> None:
    """torchjd's default threshold (trace 1e-4) would zero CAGrad's update on small-loss
    problems (digits: ~4e-5 at initialisation); the rule is scale-invariant."""
    jacobian = torch.tensor([[1e-3, 0.0, 2e-4], [0.0, 1e-3, -1e-4]])
    balancer = CaGrad()
    balancer._weighting = balancer.make_weighting()
    raw = balancer.weights_of(jacobian @ jacobian.T)
    assert bool((raw > 0).all())
    scaled = balancer.weights_of(1e6 * jacobian @ jacobian.T)
    assert raw == pytest.approx(scaled, rel=1e-6)
