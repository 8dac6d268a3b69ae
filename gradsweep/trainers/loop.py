"""The one training loop every balancer runs through."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Literal

import torch

from gradsweep.errors import GradsweepError
from gradsweep.trainers.balancer import Balancer, BalancerContext
from gradsweep.trainers.problem import MultitaskData, MultitaskModel, MultitaskProblem
from gradsweep.trainers.step import TrainingStep


@dataclass(frozen=True)
class Budget:
    """How long a trial trains and how often it is looked at.

    ``eval_every``: steps between evaluations (default: one epoch of the training split).
    ``trace_every``: steps between recorded weight-trace points; the time average itself
    always uses every step.
    """

    steps: int
    eval_every: int | None = None
    trace_every: int = 10


@dataclass(frozen=True)
class TaskEpoch:
    """One task's figures at one evaluation; ``train_loss`` is None for the untrained network."""

    task: str
    train_loss: float | None
    test_loss: float
    metrics: dict[str, float]
    weight: float


@dataclass(frozen=True)
class EpochRecord:
    """One evaluation: epoch 0 is the network before training."""

    epoch: int
    step: int
    tasks: tuple[TaskEpoch, ...]
    objective: float
    elapsed_seconds: float


@dataclass
class TrainResult:
    """Everything a trial produced; ``model`` is kept for notebooks and left out of ``to_dict``."""

    status: Literal["completed", "failed"]
    error: str | None
    problem: dict[str, object]
    balancer: dict[str, object]
    tasks: list[str]
    seed: int
    steps: int
    device: str
    weights_final: list[float]
    weights_mean: list[float]
    initial_test_losses: list[float]
    test_losses: list[float]
    test_metrics: list[dict[str, float]]
    objective: float | None
    train_seconds: float
    epochs: list[EpochRecord] = field(default_factory=list)
    trace: list[tuple[int, list[float]]] = field(default_factory=list)
    model: MultitaskModel | None = field(default=None, repr=False)

    def to_dict(self) -> dict[str, object]:
        data = asdict(self)  # type: ignore[call-overload]
        data.pop("model")
        return data


EpochCallback = Callable[[EpochRecord], None]


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def resolve_device(device: str | torch.device | None) -> torch.device:
    """The device to train on (default: CUDA if any); a name torch does not know, or a
    CUDA device on a machine without one, is a GradsweepError naming it."""
    if device is None:
        return default_device()
    try:
        chosen = torch.device(device)
    except (RuntimeError, ValueError):
        raise GradsweepError(f"device {device!r}: not a device torch knows (cpu, cuda …)") from None
    if chosen.type == "cuda" and not torch.cuda.is_available():
        raise GradsweepError(
            f"device {device!r}: this machine has no CUDA GPU that torch "
            f"{torch.__version__} can use"
        )
    if (
        chosen.type == "cuda"
        and chosen.index is not None
        and chosen.index >= torch.cuda.device_count()
    ):
        raise GradsweepError(f"device {device!r}: only {torch.cuda.device_count()} CUDA device(s)")
    return chosen


def epoch_batches(size: int, batch_size: int, generator: torch.Generator) -> Iterator[torch.Tensor]:
    """Index batches forever, reshuffled each epoch; a last partial batch is dropped."""
    per_epoch = max(size // batch_size, 1)
    while True:
        order = torch.randperm(size, generator=generator)
        for i in range(per_epoch):
            yield order[i * batch_size : (i + 1) * batch_size]


@torch.no_grad()
def mean_losses(
    problem: MultitaskProblem, model: MultitaskModel, data: MultitaskData, device: torch.device
) -> torch.Tensor:
    """Each task's loss averaged over a whole split (batch-size weighted)."""
    total: torch.Tensor | None = None
    size = problem.eval_batch_size
    for start in range(0, len(data), size):
        idx = torch.arange(start, min(start + size, len(data)))
        batch = data.batch(idx, device)
        losses = torch.stack(problem.task_losses(model(batch.inputs), batch)) * len(idx)
        total = losses if total is None else total + losses
    assert total is not None, "empty data split"
    return total / len(data)


@torch.no_grad()
def evaluate(
    problem: MultitaskProblem, model: MultitaskModel, device: torch.device
) -> tuple[list[float], list[dict[str, float]]]:
    """Test losses and metrics of every task on the whole test split."""
    model.eval()
    accumulator = problem.metric_accumulator()
    data = problem.test_data
    size = problem.eval_batch_size
    for start in range(0, len(data), size):
        batch = data.batch(torch.arange(start, min(start + size, len(data))), device)
        accumulator.update(model(batch.inputs), batch)
    losses = mean_losses(problem, model, data, device).tolist()
    model.train()
    return losses, accumulator.compute()


def balancer_context(
    problem: MultitaskProblem, model: MultitaskModel, device: torch.device, seed: int
) -> BalancerContext:
    """What a balancer learns before the first step of training ``model`` on ``problem``."""
    return BalancerContext(
        task_count=len(problem.tasks),
        device=device,
        theoretical_initial_losses=problem.theoretical_initial_losses(),
        first_epoch_mean_losses=lambda: mean_losses(problem, model, problem.train_data, device),
        seed=seed,
        steps_per_epoch=max(len(problem.train_data) // problem.batch_size, 1),
    )


class _Run:
    """The state of one ``train`` call, split out so each piece stays short."""

    def __init__(
        self,
        problem: MultitaskProblem,
        balancer: Balancer,
        budget: Budget,
        seed: int,
        device: torch.device,
        on_epoch: EpochCallback | None,
    ) -> None:
        self.problem, self.balancer, self.budget = problem, balancer, budget
        self.seed, self.device, self.on_epoch = seed, device, on_epoch
        torch.manual_seed(seed)
        self.model = problem.build_model().to(device)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=problem.learning_rate)
        self.steps_per_epoch = max(len(problem.train_data) // problem.batch_size, 1)
        self.batches = epoch_batches(
            len(problem.train_data), problem.batch_size, torch.Generator().manual_seed(seed)
        )
        task_count = len(problem.tasks)
        self.trace = torch.zeros(budget.steps, task_count, device=device)
        self.loss_sum = torch.zeros(task_count, device=device)
        self.loss_count = 0
        self.epochs: list[EpochRecord] = []
        self.seconds = 0.0
        self.initial_test_losses, _ = evaluate(problem, self.model, device)
        balancer.start(balancer_context(problem, self.model, device, seed))

    def record(self, step: int) -> None:
        started = time.perf_counter()
        test_losses, metrics = evaluate(self.problem, self.model, self.device)
        train_losses = (
            (self.loss_sum / self.loss_count).tolist()
            if self.loss_count
            else [None] * len(test_losses)
        )
        weights = self.balancer.weights.tolist()
        tasks = tuple(
            TaskEpoch(name, train, test, metric, weight)
            for name, train, test, metric, weight in zip(
                self.problem.task_names, train_losses, test_losses, metrics, weights, strict=True
            )
        )
        objective = self.problem.objective(test_losses, self.initial_test_losses)
        self.seconds += time.perf_counter() - started
        record = EpochRecord(len(self.epochs), step, tasks, objective, self.seconds)
        self.epochs.append(record)
        self.loss_sum.zero_()
        self.loss_count = 0
        if self.on_epoch is not None:
            self.on_epoch(record)

    def train_step(self, step: int) -> str | None:
        """One optimisation step; returns the failure reason if a loss is not finite."""
        batch = self.problem.train_data.batch(next(self.batches), self.device)
        self.trace[step] = self.balancer.weights
        self.optimizer.zero_grad(set_to_none=True)
        training_step = TrainingStep(
            self.model, self.problem, batch, self.balancer.needs_task_gradients
        )
        losses = training_step.losses.detach()
        if not bool(torch.isfinite(losses).all()):
            values = ", ".join(
                f"{name}={value:g}"
                for name, value in zip(self.problem.task_names, losses.tolist(), strict=True)
            )
            return f"non-finite loss at step {step}: {values}"
        self.balancer.step(training_step)
        self.optimizer.step()
        self.loss_sum += losses
        self.loss_count += 1
        return None

    def run(self) -> TrainResult:
        self.record(0)
        eval_every = self.budget.eval_every or self.steps_per_epoch
        error: str | None = None
        done = 0
        started = time.perf_counter()
        for step in range(self.budget.steps):
            error = self.train_step(step)
            if error is not None:
                break
            done = step + 1
            if done % eval_every == 0 or done == self.budget.steps:
                self.seconds += time.perf_counter() - started
                self.record(done)
                started = time.perf_counter()
        self.seconds += time.perf_counter() - started
        return self.result(done, error)

    def result(self, done: int, error: str | None) -> TrainResult:
        trace = self.trace[:done]
        last = self.epochs[-1]
        every = max(self.budget.trace_every, 1)
        points = [(s, trace[s].tolist()) for s in range(0, done, every)]
        return TrainResult(
            status="failed" if error else "completed",
            error=error,
            problem=self.problem.describe(),
            balancer=self.balancer.describe(),
            tasks=self.problem.task_names,
            seed=self.seed,
            steps=done,
            device=str(self.device),
            weights_final=self.balancer.weights.tolist(),
            weights_mean=trace.mean(dim=0).tolist() if done else self.balancer.weights.tolist(),
            initial_test_losses=self.initial_test_losses,
            test_losses=[task.test_loss for task in last.tasks],
            test_metrics=[task.metrics for task in last.tasks],
            objective=None if error or not math.isfinite(last.objective) else last.objective,
            train_seconds=self.seconds,
            epochs=self.epochs,
            trace=points,
            model=self.model,
        )


def train(
    problem: MultitaskProblem,
    balancer: Balancer,
    budget: Budget,
    seed: int = 0,
    on_epoch: EpochCallback | None = None,
    device: str | torch.device | None = None,
) -> TrainResult:
    """Train one network with one balancer; every balancer goes through this same loop.

    ``train_seconds`` counts the steps and evaluations, not model setup nor ``on_epoch``.
    A non-finite task loss stops the run with ``status="failed"`` and the reason.
    """
    if budget.steps < 1 or (budget.eval_every is not None and budget.eval_every < 1):
        raise GradsweepError(
            f"steps and eval_every must be >= 1, got {budget.steps} and {budget.eval_every}"
        )
    run = _Run(problem, balancer, budget, seed, resolve_device(device), on_epoch)
    return run.run()
