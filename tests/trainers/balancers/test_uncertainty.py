from __future__ import annotations

import math

import pytest
import torch

from gradsweep.errors import BalancerError
from gradsweep.trainers import Budget, ToyRegression, UncertaintyWeighting, train
from gradsweep.trainers.balancers.base import BalancerContext
from tests.trainers.balancers.test_gradnorm import assert_close_relative
from tests.trainers.conftest import small_toy_params
from tests.trainers.reference_balancers import FixedLossStep, reference_uncertainty, weight_trace


@pytest.mark.parametrize(("tasks", "sigmas"), [(2, [1.0, 100.0]), (3, [1.0, 10.0, 100.0])])
def test_matches_the_literal_rule(float64: None, tasks: int, sigmas: list[float]) -> None:
    steps = 100
    problem = ToyRegression(**small_toy_params(tasks, sigmas))
    balancer = UncertaintyWeighting()
    result = train(problem, balancer, Budget(steps, trace_every=1), seed=4, device="cpu")
    reference = reference_uncertainty(problem, steps, seed=4)
    raw = torch.tensor(reference.weights)
    assert_close_relative(weight_trace(result.trace), tasks * raw / raw.sum(1, keepdim=True), 1e-10)
    assert float((raw[-1] - 1).abs().max()) > 0.5  # the weights really moved
    assert result.model is not None
    for ours, theirs in zip(
        result.model.state_dict().values(), reference.model.state_dict().values(), strict=True
    ):
        assert_close_relative(ours, theirs, 1e-10)


def started(tasks: int, lr: float = 0.025) -> UncertaintyWeighting:
    balancer = UncertaintyWeighting(lr=lr)
    balancer.start(BalancerContext(tasks, torch.device("cpu"), None, lambda: torch.ones(tasks)))
    return balancer


def test_first_step_moves_s_toward_log_of_the_loss() -> None:
    balancer = started(3)
    balancer.step(FixedLossStep([0.5, 1.0, 50.0]))  # type: ignore[arg-type]
    s = balancer.log_variances.tolist()
    # ∂/∂s = 1 − L at s = 0; Adam's first step is lr · sign
    assert s == pytest.approx([-0.025, 0.0, 0.025], abs=1e-6)


def test_log_variances_settle_at_log_of_the_loss() -> None:
    balancer = started(3, lr=0.05)
    step = FixedLossStep([0.5, 4.0, 50.0])
    for _ in range(3000):
        balancer.step(step)  # type: ignore[arg-type]
    expected = [math.log(0.5), math.log(4.0), math.log(50.0)]
    assert balancer.log_variances.tolist() == pytest.approx(expected, abs=2e-2)
    assert balancer.raw_weights.tolist() == pytest.approx([2.0, 0.25, 0.02], rel=3e-2)
    raw = balancer.raw_weights
    assert balancer.weights.tolist() == pytest.approx((3 * raw / raw.sum()).tolist())


@pytest.mark.parametrize("lr", [0, -0.1, float("nan")])
def test_bad_learning_rate(lr: float) -> None:
    with pytest.raises(BalancerError, match=r"^uncertainty: lr must be > 0, got "):
        UncertaintyWeighting(lr=lr)
