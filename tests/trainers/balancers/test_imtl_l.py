"""IMTL-L against a literal transcription of its loss balance, in float64.

The reference holds its own ``s`` as an ``nn.Parameter``, forms the paper's total loss
``Σ_i (e^{s_i} L_i − s_i)`` and back-propagates it once, by autograd, into the network and
``s`` together; each has its own Adam (``s`` at lr 0.025).
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from gradsweep.errors import BalancerError
from gradsweep.trainers import Budget, ToyRegression, train
from gradsweep.trainers.balancers.base import BalancerContext
from gradsweep.trainers.balancers.imtl_l import ImtlL
from gradsweep.trainers.engine.loop import epoch_batches
from gradsweep.trainers.problems.base import MultitaskModel
from tests.trainers.balancers.test_gradnorm import assert_close_relative
from tests.trainers.conftest import small_toy_params
from tests.trainers.reference_balancers import FixedLossStep, weight_trace


def reference_imtl_l(
    problem: ToyRegression, steps: int, seed: int, lr: float
) -> tuple[list[list[float]], MultitaskModel]:
    torch.manual_seed(seed)
    model = problem.build_model()
    optimizer = torch.optim.Adam(model.parameters(), lr=problem.learning_rate)
    batches = epoch_batches(
        len(problem.train_data), problem.batch_size, torch.Generator().manual_seed(seed)
    )
    T = len(problem.tasks)
    s = nn.Parameter(torch.zeros(T))  # the loss scales, e^s = 1 at the start
    s_optimizer = torch.optim.Adam([s], lr=lr)
    used = []
    for _ in range(steps):
        batch = problem.train_data.batch(next(batches), torch.device("cpu"))
        L = problem.task_losses(model(batch.inputs), batch)
        used.append([math.exp(float(s[i].detach())) for i in range(T)])
        total = sum(torch.exp(s[i]) * L[i] - s[i] for i in range(T))
        optimizer.zero_grad()
        s_optimizer.zero_grad()
        total.backward()  # one backward: the network and s together
        optimizer.step()
        s_optimizer.step()
    return used, model


@pytest.mark.parametrize(
    ("tasks", "sigmas", "lr"), [(2, [1.0, 100.0], 0.025), (3, [1.0, 10.0, 100.0], 0.1)]
)
def test_matches_the_literal_rule(
    float64: None, tasks: int, sigmas: list[float], lr: float
) -> None:
    steps = 50
    problem = ToyRegression(**small_toy_params(tasks, sigmas))
    balancer = ImtlL(lr=lr)
    result = train(problem, balancer, Budget(steps, trace_every=1), seed=4, device="cpu")
    used, reference = reference_imtl_l(problem, steps, 4, lr)
    raw = torch.tensor(used)
    assert_close_relative(weight_trace(result.trace), tasks * raw / raw.sum(1, keepdim=True), 1e-9)
    assert float((raw[-1] - 1).abs().max()) > 0.5  # the weights really moved
    assert result.model is not None
    for ours, theirs in zip(
        result.model.state_dict().values(), reference.state_dict().values(), strict=True
    ):
        assert_close_relative(ours, theirs, 1e-9)


def started(tasks: int, lr: float = 0.025) -> ImtlL:
    balancer = ImtlL(lr=lr)
    balancer.start(BalancerContext(tasks, torch.device("cpu"), None, lambda: torch.ones(tasks)))
    return balancer


def test_first_step_moves_s_against_the_scaled_loss() -> None:
    balancer = started(3)
    balancer.step(FixedLossStep([0.5, 1.0, 50.0]))  # type: ignore[arg-type]
    # ∂/∂s = e^s L − 1 = L − 1 at s = 0; Adam's first step is −lr · sign
    assert balancer.scales.tolist() == pytest.approx([0.025, 0.0, -0.025], abs=1e-6)


def test_scales_settle_where_every_scaled_loss_is_one() -> None:
    balancer = started(3, lr=0.05)
    step = FixedLossStep([0.5, 4.0, 50.0])
    for _ in range(3000):
        balancer.step(step)  # type: ignore[arg-type]
    expected = [-math.log(0.5), -math.log(4.0), -math.log(50.0)]
    assert balancer.scales.tolist() == pytest.approx(expected, abs=2e-2)
    assert balancer.raw_weights.tolist() == pytest.approx([2.0, 0.25, 0.02], rel=3e-2)
    raw = balancer.raw_weights
    assert balancer.weights.tolist() == pytest.approx((3 * raw / raw.sum()).tolist())


def test_the_label_and_hyperparameters() -> None:
    declaration = ImtlL.declaration
    assert declaration.configurations_of(declaration.params())[0].label == "lr=0.025"
    assert ImtlL(lr=0.1).hyperparameters() == {"lr": 0.1}


@pytest.mark.parametrize("lr", [0, -0.1, float("nan")])
def test_bad_learning_rate(lr: float) -> None:
    with pytest.raises(BalancerError, match=r"^imtl_l: lr must be > 0, got "):
        ImtlL(lr=lr)
