"""GradVac: torchjd's aggregation one step at a time, two consecutive steps against one torchjd
aggregator called twice (its EMA cosine targets are state), its weighting (the tasks side by
side here) against torchjd's on sequences of Gramians from easy to ill-conditioned, and what
its weights stand for."""

from __future__ import annotations

import copy

import pytest
import torch
from torchjd.aggregation import GradVac, GradVacWeighting, PCGrad
from torchjd.autojac import jac_to_grad, mtl_backward

from gradsweep.errors import BalancerError
from gradsweep.trainers import ToyRegression
from gradsweep.trainers.balancers.base import BalancerContext
from gradsweep.trainers.balancers.gradvac import GradVac as GradVacBalancer
from gradsweep.trainers.balancers.gradvac import VaccinatedWeighting
from gradsweep.trainers.engine.loop import balancer_context
from gradsweep.trainers.engine.step import TrainingStep
from gradsweep.trainers.problems.base import Batch, MultitaskModel
from tests.trainers.balancers.random_gramians import TASK_COUNTS, jacobians
from tests.trainers.balancers.torchjd_reference import assert_step_matches_torchjd
from tests.trainers.conftest import small_toy_params

SEED = 11


def started(tasks: int) -> GradVacBalancer:
    balancer = GradVacBalancer()
    balancer.start(BalancerContext(tasks, torch.device("cpu"), None, lambda: torch.ones(tasks)))
    return balancer


@pytest.mark.parametrize("site", ["parameters", "representation"])
def test_a_first_step_is_torchjds_gradvac(float64: None, site: str) -> None:
    balancer = GradVacBalancer(gradients=site)
    raw = assert_step_matches_torchjd(balancer, GradVac(), site)
    assert bool((raw >= 1).all())
    assert balancer.weights == pytest.approx(3 * raw / raw.sum())


def test_a_first_step_is_pcgrads_its_targets_being_zero(float64: None) -> None:
    """φ̂ = 0 at first: a conflict is raised to cosine 0, PCGrad's projection (up to eps)."""
    jacobian = torch.tensor([[1.0, 0.0, 0.5], [-0.6, 1.0, 0.0]])
    torch.manual_seed(0)
    expected = PCGrad()(jacobian)
    weights = started(2).weights_of(jacobian @ jacobian.T)
    assert weights @ jacobian == pytest.approx(expected, rel=1e-7)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("beta", [0.5, 0.01, 1.0])
@pytest.mark.parametrize("tasks", TASK_COUNTS)
def test_a_sequence_of_gramians_is_torchjds(tasks: int, beta: float, dtype: torch.dtype) -> None:
    """Stateful: each call's targets are the last call's, and each draws the same random
    orders from torch's global generator (the generator is left where torchjd leaves it).
    Every case of the sequence runs twice, so the second meets targets the first moved.
    The same torch ops on the same values: the weights and targets are torchjd's bit for
    bit, in float32 too (where an ill-conditioned Gramian makes GradVac's branches flip on
    the last bit of a cosine, so nothing looser would be a test)."""
    ours, reference = VaccinatedWeighting(beta), GradVacWeighting(beta=beta)
    torch.manual_seed(SEED)
    sequence = [j for pair in zip(jacobians(tasks), jacobians(tasks), strict=True) for j in pair]
    for case, jacobian in sequence:
        gramian = (jacobian @ jacobian.T).to(dtype)
        state = torch.get_rng_state()
        expected = reference(gramian)
        after = torch.get_rng_state()
        torch.set_rng_state(state)
        weights = ours(gramian)
        assert torch.equal(torch.get_rng_state(), after), case
        assert weights.dtype == dtype, case
        assert torch.equal(weights, expected), case
        assert torch.equal(ours.targets, reference._phi_t), case


def test_targets_restart_when_the_task_count_changes() -> None:
    """As torchjd's: targets of another shape (or dtype) are not carried over."""
    weighting = VaccinatedWeighting(0.5)
    for tasks in (3, 2):
        (_, jacobian), *_ = jacobians(tasks)
        torch.manual_seed(SEED)
        expected = GradVacWeighting(beta=0.5)(jacobian @ jacobian.T)
        torch.manual_seed(SEED)
        assert weighting(jacobian @ jacobian.T) == pytest.approx(expected, rel=1e-12)


def _toy() -> tuple[ToyRegression, MultitaskModel, list[Batch]]:
    problem = ToyRegression(**small_toy_params(3, [1.0, 10.0, 100.0]))
    torch.manual_seed(SEED)
    model = problem.build_model()
    batches = [
        problem.train_data.batch(torch.arange(start, start + 40), torch.device("cpu"))
        for start in (0, 80)  # the second's cosines lie above the targets the first leaves
    ]
    return problem, model, batches


def _balancer_grads(
    balancer: GradVacBalancer, problem: ToyRegression, model: MultitaskModel, batches: list[Batch]
) -> list[list[torch.Tensor]]:
    """The gradients of consecutive steps of one started balancer (no optimiser step between)."""
    balancer.start(balancer_context(problem, model, torch.device("cpu"), SEED))
    torch.manual_seed(SEED)
    steps = []
    for batch in batches:
        model.zero_grad(set_to_none=True)
        balancer.step(TrainingStep(model, problem, batch, needs=balancer.needs))
        steps.append([p.grad.clone() for p in model.parameters()])  # type: ignore[union-attr]
    return steps


def _torchjd_grads(
    aggregators: list[GradVac], problem: ToyRegression, model: MultitaskModel, batches: list[Batch]
) -> list[list[torch.Tensor]]:
    """The same steps through torchjd's public API, an aggregator a step."""
    torch.manual_seed(SEED)
    steps = []
    for aggregator, batch in zip(aggregators, batches, strict=True):
        model.zero_grad(set_to_none=True)
        z = model.trunk(batch.inputs)
        losses = problem.task_losses([head(z) for head in model.heads], batch)
        mtl_backward(losses, features=z)
        jac_to_grad(list(model.trunk.parameters()), aggregator)
        steps.append([p.grad.clone() for p in model.parameters()])  # type: ignore[union-attr]
    return steps


def test_two_consecutive_steps_are_one_torchjd_aggregator_called_twice(float64: None) -> None:
    problem, model, batches = _toy()
    balancer = GradVacBalancer()
    ours = _balancer_grads(balancer, problem, model, batches)
    same = GradVac()
    theirs = _torchjd_grads([same, same], problem, copy.deepcopy(model), batches)
    for step_ours, step_theirs in zip(ours, theirs, strict=True):
        for mine, reference in zip(step_ours, step_theirs, strict=True):
            assert mine == pytest.approx(reference, rel=1e-9, abs=1e-12)
    # the second step used the targets the first one left: fresh ones (same draws) differ
    fresh = _torchjd_grads([GradVac(), GradVac()], problem, copy.deepcopy(model), batches)
    assert any(
        not torch.allclose(mine, reference)
        for mine, reference in zip(ours[1], fresh[1], strict=True)
    )


def test_start_forgets_the_targets(float64: None) -> None:
    problem, model, batches = _toy()
    balancer = GradVacBalancer()
    first = _balancer_grads(balancer, problem, model, batches)
    again = _balancer_grads(balancer, problem, model, batches)
    for step_first, step_again in zip(first, again, strict=True):
        for a, b in zip(step_first, step_again, strict=True):
            assert torch.equal(a, b)


@pytest.mark.parametrize("beta", [-0.1, 1.5, float("nan")])
def test_a_bad_beta_is_refused(beta: float) -> None:
    with pytest.raises(BalancerError, match="beta must be"):
        GradVacBalancer(beta=beta)


def test_the_label_and_records() -> None:
    declaration = GradVacBalancer.declaration
    labels = [
        declaration.configurations_of(declaration.params(gradients=g, beta=b))[0].label
        for g, b in (("parameters", 0.5), ("representation", 0.01))
    ]
    assert labels == ["beta=0.5", "beta=0.01,at=z"]
    assert GradVacBalancer().hyperparameters() == {"beta": 0.5, "gradients": "parameters"}
