"""One step of a Gramian balancer held against torchjd's own aggregator, in float64.

The reference is written from torchjd's public API alone: ``mtl_backward`` then
``jac_to_grad`` (exact: the Jacobian over the shared parameters), or the Jacobian at the
shared features aggregated and pushed back through the trunk (the representation
variant); each head gets its own task's gradient either way.
"""

from __future__ import annotations

import copy

import pytest
import torch
from torchjd.aggregation import Aggregator
from torchjd.autojac import jac_to_grad, mtl_backward

from gradsweep.trainers import ToyRegression
from gradsweep.trainers.balancers.gramian import GramianBalancer
from gradsweep.trainers.engine.loop import balancer_context
from gradsweep.trainers.engine.step import TrainingStep
from gradsweep.trainers.problems.base import MultitaskModel
from tests.trainers.conftest import small_toy_params

SEED = 7


def _problem_and_model() -> tuple[ToyRegression, MultitaskModel]:
    problem = ToyRegression(**small_toy_params(3, [1.0, 10.0, 100.0]))
    torch.manual_seed(SEED)
    return problem, problem.build_model()


def _reference_grads(
    problem: ToyRegression, model: MultitaskModel, aggregator: Aggregator, site: str
) -> list[torch.Tensor]:
    batch = problem.train_data.batch(torch.arange(40), torch.device("cpu"))
    z = model.trunk(batch.inputs)
    losses = problem.task_losses([head(z) for head in model.heads], batch)
    shared = list(model.trunk.parameters())
    if site == "parameters":
        mtl_backward(losses, features=z)
        jac_to_grad(shared, aggregator)
    else:
        jacobian = torch.stack(
            [torch.autograd.grad(loss, z, retain_graph=True)[0].flatten() for loss in losses]
        )
        heads = list(model.heads.parameters())
        torch.autograd.backward(torch.stack(losses).sum(), inputs=heads, retain_graph=True)
        torch.autograd.backward(z, aggregator(jacobian).view_as(z), inputs=shared)
    return [p.grad.clone() for p in model.parameters()]  # type: ignore[union-attr]


def assert_step_matches_torchjd(
    balancer: GramianBalancer, aggregator: Aggregator, site: str = "parameters"
) -> torch.Tensor:
    """One training step's gradients equal torchjd's on the same batch and initialisation;
    the balancer's raw weights are returned for the caller's own checks."""
    assert torch.get_default_dtype() is torch.float64, "use the float64 fixture"
    problem, model = _problem_and_model()
    reference_model = copy.deepcopy(model)
    batch = problem.train_data.batch(torch.arange(40), torch.device("cpu"))
    balancer.start(balancer_context(problem, model, torch.device("cpu"), SEED))
    torch.manual_seed(SEED)  # a randomised rule (PCGrad's order) draws alike in both
    balancer.step(TrainingStep(model, problem, batch, needs=balancer.needs))
    torch.manual_seed(SEED)
    expected = _reference_grads(problem, reference_model, aggregator, site)
    for parameter, reference in zip(model.parameters(), expected, strict=True):
        assert parameter.grad is not None
        assert parameter.grad == pytest.approx(reference, rel=1e-9, abs=1e-12)
    return balancer.raw_weights
