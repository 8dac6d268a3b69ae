from __future__ import annotations

import math

import pytest
import torch

from gradsweep.errors import BalancerError
from gradsweep.trainers import Budget, DynamicWeightAverage, ToyRegression, train
from gradsweep.trainers.balancers.base import BalancerContext
from tests.trainers.balancers.test_gradnorm import assert_close_relative
from tests.trainers.conftest import small_toy_params
from tests.trainers.reference_balancers import FixedLossStep, reference_dwa, weight_trace


@pytest.mark.parametrize("temperature", [2.0, 0.5])
def test_matches_the_literal_rule(float64: None, temperature: float) -> None:
    problem = ToyRegression(**small_toy_params(3, [1.0, 10.0, 100.0]))
    per_epoch = len(problem.train_data) // problem.batch_size  # 800 / 40 = 20
    steps = 4 * per_epoch + 7  # into the fifth epoch: three weight changes
    result = train(
        problem,
        DynamicWeightAverage(temperature),
        Budget(steps, trace_every=1),
        seed=2,
        device="cpu",
    )
    reference = reference_dwa(problem, steps, seed=2, temperature=temperature)
    ours = weight_trace(result.trace)
    assert_close_relative(ours, torch.tensor(reference.weights), 1e-10)
    assert torch.equal(ours[: 2 * per_epoch], torch.ones(2 * per_epoch, 3))  # epochs 0 and 1
    changes = [s for s in range(1, steps) if not torch.equal(ours[s], ours[s - 1])]
    assert changes == [2 * per_epoch, 3 * per_epoch, 4 * per_epoch]  # only at epoch starts
    assert float((ours[-1] - 1).abs().max()) > 1e-3
    assert result.model is not None
    for ours_p, theirs in zip(
        result.model.state_dict().values(), reference.model.state_dict().values(), strict=True
    ):
        assert_close_relative(ours_p, theirs, 1e-10)


def test_weights_from_epoch_means_by_hand() -> None:
    balancer = DynamicWeightAverage(temperature=2.0)
    balancer.start(BalancerContext(2, torch.device("cpu"), None, lambda: torch.ones(2), 0, 2))
    # two steps per epoch; epoch means (3, 1), (2, 2), then (1, 4)
    epochs = [([4.0, 1.0], [2.0, 1.0]), ([2.0, 3.0], [2.0, 1.0]), ([1.0, 6.0], [1.0, 2.0])]
    for losses in [*epochs[0], *epochs[1]]:
        assert balancer.weights.tolist() == [1.0, 1.0]
        balancer.step(FixedLossStep(losses))  # type: ignore[arg-type]
    assert balancer.weights.tolist() == pytest.approx(by_hand([2 / 3, 2 / 1], 2.0))
    assert balancer.weights[1] > balancer.weights[0]  # the task whose loss fell less gains
    balancer.step(FixedLossStep(epochs[2][0]))  # type: ignore[arg-type]
    assert balancer.weights.tolist() == pytest.approx(by_hand([2 / 3, 2 / 1], 2.0))  # mid-epoch
    balancer.step(FixedLossStep(epochs[2][1]))  # type: ignore[arg-type]
    assert balancer.weights.tolist() == pytest.approx(by_hand([1 / 2, 4 / 2], 2.0))


def by_hand(ratios: list[float], temperature: float) -> list[float]:
    e = [math.exp(r / temperature) for r in ratios]
    return [len(e) * x / sum(e) for x in e]


@pytest.mark.parametrize("temperature", [0, -1, float("nan")])
def test_bad_temperature(temperature: float) -> None:
    with pytest.raises(BalancerError, match=r"^dwa: temperature must be > 0, got "):
        DynamicWeightAverage(temperature=temperature)
