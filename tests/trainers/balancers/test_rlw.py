from __future__ import annotations

import pytest
import torch

from gradsweep.errors import BalancerError
from gradsweep.trainers import Budget, RandomLossWeighting, ToyRegression, train
from gradsweep.trainers.balancers.base import BalancerContext
from tests.trainers.balancers.test_gradnorm import assert_close_relative
from tests.trainers.conftest import small_toy_params
from tests.trainers.reference_balancers import FixedLossStep, reference_rlw, weight_trace


@pytest.mark.parametrize(
    ("distribution", "concentration"), [("normal", 1.0), ("dirichlet", 1.0), ("dirichlet", 0.3)]
)
def test_matches_the_literal_rule(float64: None, distribution: str, concentration: float) -> None:
    steps = 50
    problem = ToyRegression(**small_toy_params(3, [1.0, 10.0, 100.0]))
    balancer = RandomLossWeighting(distribution, concentration)  # type: ignore[arg-type]
    result = train(problem, balancer, Budget(steps, trace_every=1), seed=5, device="cpu")
    reference = reference_rlw(
        problem, steps, seed=5, distribution=distribution, concentration=concentration
    )
    assert_close_relative(weight_trace(result.trace), torch.tensor(reference.weights), 1e-12)
    assert result.model is not None
    for ours, theirs in zip(
        result.model.state_dict().values(), reference.model.state_dict().values(), strict=True
    ):
        assert_close_relative(ours, theirs, 1e-10)


def draws(seed: int, steps: int, distribution: str = "normal") -> torch.Tensor:
    balancer = RandomLossWeighting(distribution)  # type: ignore[arg-type]
    balancer.start(BalancerContext(4, torch.device("cpu"), None, lambda: torch.ones(4), seed))
    weights = []
    for _ in range(steps):
        weights.append(balancer.weights.clone())
        balancer.step(FixedLossStep([1.0] * 4))  # type: ignore[arg-type]
    return torch.stack(weights)


@pytest.mark.parametrize("distribution", ["normal", "dirichlet"])
def test_weights_are_positive_sum_to_t_and_average_one(distribution: str) -> None:
    weights = draws(0, 4000, distribution)
    assert bool((weights > 0).all())
    assert torch.allclose(weights.sum(dim=1), torch.full((4000,), 4.0, dtype=weights.dtype))
    assert weights.mean(dim=0).tolist() == pytest.approx([1.0] * 4, abs=0.05)
    assert float(weights.std(dim=0).min()) > 0.1  # really random, step to step


def test_draws_are_reproducible_per_seed() -> None:
    assert torch.equal(draws(3, 50), draws(3, 50))
    assert not torch.equal(draws(3, 50), draws(4, 50))


def test_draws_leave_the_global_random_stream_alone() -> None:
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    draws(1, 20)
    assert torch.equal(torch.rand(3), expected)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"distribution": "uniform"}, "rlw: distribution must be one of normal, dirichlet"),
        ({"concentration": 0}, "rlw: concentration must be > 0, got 0"),
        ({"concentration": -2.0}, "rlw: concentration must be > 0, got -2.0"),
    ],
)
def test_bad_parameters(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(BalancerError, match=message):
        RandomLossWeighting(**kwargs)  # type: ignore[arg-type]
