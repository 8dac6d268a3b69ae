"""FAMO against the official code's update, transcribed here, and against torchjd's FAMO."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest
import torch
import torch.nn.functional as F

from gradsweep.errors import BalancerError
from gradsweep.trainers import Budget, ToyRegression, train
from gradsweep.trainers.balancers.base import BalancerContext
from gradsweep.trainers.balancers.famo import FamoBalancer, LogitAdam, softmax_vjp
from gradsweep.trainers.engine.loop import epoch_batches
from gradsweep.trainers.engine.step import TrainingStep
from gradsweep.trainers.problems.base import MultitaskModel, MultitaskProblem
from tests.trainers.balancers.test_gradnorm import assert_close_relative
from tests.trainers.conftest import small_toy_params

STEPS = 50
CASES = [(2, [1.0, 100.0]), (3, [1.0, 10.0, 100.0])]


class RecordingFamo(FamoBalancer):
    """Keeps the weights each step applied (read before ξ moves), whatever the loop traces."""

    def start(self, context: BalancerContext) -> None:
        super().start(context)
        self.applied: list[torch.Tensor] = []

    def after_step(self, training_step: TrainingStep) -> None:
        self.applied.append(self.raw_weights.clone())
        super().after_step(training_step)


@dataclass
class ReferenceRun:
    applied: list[torch.Tensor]  # ∂loss/∂L_i of each step's loss, read off autograd
    logits: torch.Tensor  # ξ at the end
    model: MultitaskModel


def reference_famo(
    problem: MultitaskProblem, steps: int, seed: int, gamma: float = 0.001, w_lr: float = 0.025
) -> ReferenceRun:
    """The official FAMO (Cranial-XIX/FAMO, methods/weight_methods.py), line by line, in the
    loop's training (same seed, model, Adam, batches); the network's loss is backpropagated
    by autograd, not through weights."""
    torch.manual_seed(seed)
    model = problem.build_model()
    optimizer = torch.optim.Adam(model.parameters(), lr=problem.learning_rate)
    batches = epoch_batches(
        len(problem.train_data), problem.batch_size, torch.Generator().manual_seed(seed)
    )
    n_tasks = len(problem.tasks)
    min_losses = torch.zeros(n_tasks)
    w = torch.tensor([0.0] * n_tasks, requires_grad=True)
    w_opt = torch.optim.Adam([w], lr=w_lr, weight_decay=gamma)
    applied = []
    for _ in range(steps):
        batch = problem.train_data.batch(next(batches), torch.device("cpu"))
        losses = torch.stack(problem.task_losses(model(batch.inputs), batch))
        # get_weighted_loss
        prev_loss = losses
        z = F.softmax(w, -1)
        D = losses - min_losses + 1e-8
        c = (z / D).sum().detach()
        loss = (D.log() * z / c).sum()
        # what the network's gradient weights each task's loss by: ∂loss/∂L_i
        applied.append(torch.autograd.grad(loss, losses, retain_graph=True)[0])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        # update, on the same batch
        with torch.no_grad():
            curr_loss = torch.stack(problem.task_losses(model(batch.inputs), batch))
        delta = (prev_loss - min_losses + 1e-8).log() - (curr_loss - min_losses + 1e-8).log()
        with torch.enable_grad():
            d = torch.autograd.grad(F.softmax(w, -1), w, grad_outputs=delta.detach())[0]
        w_opt.zero_grad()
        w.grad = d
        w_opt.step()
    return ReferenceRun(applied, w.detach(), model)


def torchjd_famo(problem: MultitaskProblem, steps: int, seed: int) -> ReferenceRun:
    """The same training with torchjd's FAMO scalariser (its own defaults)."""
    from torchjd.scalarization import FAMO

    torch.manual_seed(seed)
    model = problem.build_model()
    optimizer = torch.optim.Adam(model.parameters(), lr=problem.learning_rate)
    batches = epoch_batches(
        len(problem.train_data), problem.batch_size, torch.Generator().manual_seed(seed)
    )
    scalarizer = FAMO(len(problem.tasks))
    applied = []
    for _ in range(steps):
        batch = problem.train_data.batch(next(batches), torch.device("cpu"))
        losses = torch.stack(problem.task_losses(model(batch.inputs), batch))
        loss = scalarizer(losses)
        applied.append(torch.autograd.grad(loss, losses, retain_graph=True)[0])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        with torch.no_grad():
            scalarizer.update(torch.stack(problem.task_losses(model(batch.inputs), batch)))
    return ReferenceRun(applied, scalarizer._w.detach(), model)


Reference = Callable[[MultitaskProblem, int, int], ReferenceRun]


def assert_trains_as(reference: Reference, tasks: int, sigmas: list[float]) -> None:
    problem = ToyRegression(**small_toy_params(tasks, sigmas))
    balancer = RecordingFamo()
    result = train(problem, balancer, Budget(STEPS, trace_every=1), seed=4, device="cpu")
    reference_run = reference(problem, STEPS, 4)
    assert result.status == "completed" and len(balancer.applied) == STEPS
    raw = torch.stack(reference_run.applied)
    # element by element: the smallest weights (≈ 1e-4 here) are held to the same 1e-9
    torch.testing.assert_close(torch.stack(balancer.applied), raw, rtol=1e-9, atol=0)
    assert_close_relative(torch.tensor(result.weights_final), tasks * raw[-1], 1e-9)
    # the weights really moved: away from 1/T, and along the run as ξ learned
    assert float((raw - 1 / tasks).abs().max()) > 0.1
    assert float(((raw[-1] - raw[0]) / raw[0]).abs().max()) > 0.5
    assert_close_relative(balancer.logits, reference_run.logits, 1e-9)
    assert float(reference_run.logits.abs().max()) > 0.01
    assert result.model is not None
    theirs_all = reference_run.model.state_dict().values()
    for ours, theirs in zip(result.model.state_dict().values(), theirs_all, strict=True):
        assert_close_relative(ours, theirs, 1e-9)


@pytest.mark.parametrize(("tasks", "sigmas"), CASES)
def test_matches_the_official_update(float64: None, tasks: int, sigmas: list[float]) -> None:
    assert_trains_as(reference_famo, tasks, sigmas)


@pytest.mark.parametrize(("tasks", "sigmas"), CASES)
def test_matches_torchjd_famo(float64: None, tasks: int, sigmas: list[float]) -> None:
    assert_trains_as(torchjd_famo, tasks, sigmas)


class FixedStep:
    """A step whose losses are fixed and whose update lowers them by known factors."""

    def __init__(self, before: list[float], after: list[float]) -> None:
        self.losses = torch.tensor(before)
        self.after = torch.tensor(after)
        self.applied: torch.Tensor | None = None

    def backward(self, weights: torch.Tensor) -> None:
        self.applied = weights

    def losses_after_update(self) -> torch.Tensor:
        return self.after


def started(tasks: int, **arguments: float) -> FamoBalancer:
    balancer = FamoBalancer(**arguments)
    balancer.start(BalancerContext(tasks, torch.device("cpu"), None, lambda: torch.ones(tasks)))
    return balancer


def test_first_step_weights_by_inverse_loss_and_favours_the_slow_task() -> None:
    balancer = started(3)
    assert balancer.weights.tolist() == pytest.approx([1.0, 1.0, 1.0])
    step = FixedStep([1.0, 2.0, 4.0], [0.5, 1.0, 3.0])  # the third task fell least
    balancer.step(step)  # type: ignore[arg-type]
    # z = 1/3 each: the weights are 1/L normalised, so every log-loss gets the same push
    assert step.applied is not None
    assert step.applied.tolist() == pytest.approx([4 / 7, 2 / 7, 1 / 7])
    assert balancer.weights.tolist() == pytest.approx([12 / 7, 6 / 7, 3 / 7])
    balancer.after_step(step)  # type: ignore[arg-type]
    # ∇ξ = J_softmaxᵀ δ; δ = log 2, log 2, log 4/3: Adam's first step is −lr · sign
    assert balancer.logits.tolist() == pytest.approx([-0.025, -0.025, 0.025], abs=1e-6)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"lr": 0}, "famo: lr must be > 0, got 0"),
        ({"lr": float("nan")}, "famo: lr must be > 0, got nan"),
        ({"weight_decay": -0.1}, "famo: weight_decay must be >= 0, got -0.1"),
    ],
)
def test_bad_parameters(arguments: dict[str, float], message: str) -> None:
    with pytest.raises(BalancerError, match=message):
        FamoBalancer(**arguments)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_the_logits_adam_is_torchs_adam_bit_for_bit(dtype: torch.dtype) -> None:
    """Gradients over eight orders of magnitude, 300 steps: the same logits as
    ``torch.optim.Adam`` (lr 0.025, weight decay 0.001) to the last bit."""
    generator = torch.Generator().manual_seed(3)
    reference = torch.nn.Parameter(torch.zeros(5, dtype=dtype))
    optimizer = torch.optim.Adam([reference], lr=0.025, weight_decay=0.001)
    logits = torch.zeros(5, dtype=dtype)
    ours = LogitAdam(logits, lr=0.025, weight_decay=0.001)
    for _ in range(300):
        magnitude = 10.0 ** float(torch.randint(-6, 3, (1,), generator=generator))
        gradient = magnitude * torch.randn(5, generator=generator, dtype=dtype)
        reference.grad = gradient.clone()
        optimizer.step()
        ours.step(gradient)
    assert torch.equal(logits, reference.detach())


def test_the_softmax_product_is_autograds(float64: None) -> None:
    generator = torch.Generator().manual_seed(5)
    logits = torch.randn(10, generator=generator, requires_grad=True)
    vector = torch.randn(10, generator=generator)
    (expected,) = torch.autograd.grad(torch.softmax(logits, dim=0), logits, grad_outputs=vector)
    # to rounding: an entry where v_i ≈ ⟨v, z⟩ cancels, so its relative error is larger
    torch.testing.assert_close(
        softmax_vjp(logits.detach(), vector), expected, rtol=1e-13, atol=1e-15
    )
