"""The one training loop every balancer runs through."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

import torch

from gradsweep.arms import TrialStatus
from gradsweep.errors import GradsweepError
from gradsweep.trainers.balancers.base import Balancer, BalancerContext
from gradsweep.trainers.balancers.declaration import Need
from gradsweep.trainers.engine.finite import Failure, FiniteWatch, check_every
from gradsweep.trainers.engine.pipeline import BatchStream, batch_stream, on_device
from gradsweep.trainers.engine.precision import Precision, autocast, parse_precision, widened
from gradsweep.trainers.engine.step import TrainingStep
from gradsweep.trainers.engine.trace import RawPoints, WeightTrace
from gradsweep.trainers.problems.base import Batch, MultitaskData, MultitaskModel, MultitaskProblem


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
    """One task's figures at one evaluation; ``train_loss`` is None for the untrained network,
    the validation figures None for a problem without a validation split."""

    task: str
    train_loss: float | None
    test_loss: float
    metrics: dict[str, float]
    weight: float
    val_loss: float | None = None
    val_metrics: dict[str, float] | None = None


@dataclass(frozen=True)
class EpochRecord:
    """One evaluation: epoch 0 is the network before training. ``normalized_loss`` is on
    test, ``val_normalized_loss`` the same on validation (what checkpoints are chosen by)."""

    epoch: int
    step: int
    tasks: tuple[TaskEpoch, ...]
    normalized_loss: float
    elapsed_seconds: float
    val_normalized_loss: float | None = None


def best_validation_step(epochs: list[EpochRecord]) -> int | None:
    """The step of the trained evaluation with the lowest finite validation normalised loss
    (the earliest on a tie): ``selection.checkpoint: best_validation``'s result."""
    scored = [
        (record.val_normalized_loss, record.step)
        for record in epochs
        if record.step > 0
        and record.val_normalized_loss is not None
        and math.isfinite(record.val_normalized_loss)
    ]
    return min(scored)[1] if scored else None


@dataclass
class TrainResult:
    """Everything a trial produced; ``model`` is kept for notebooks and left out of ``to_dict``."""

    status: TrialStatus
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
    normalized_loss: float | None
    train_seconds: float
    # the same on the validation split (None without one), and the best validation step
    initial_val_losses: list[float] | None = None
    val_losses: list[float] | None = None
    val_metrics: list[dict[str, float]] | None = None
    val_normalized_loss: float | None = None
    best_val_step: int | None = None
    epochs: list[EpochRecord] = field(default_factory=list)
    trace: list[tuple[int, list[float]]] = field(default_factory=list)
    # the applied weights at the trace's steps, for a balancer whose raw_weights differ
    raw_trace: list[tuple[int, list[float]]] = field(default_factory=list)
    model: MultitaskModel | None = field(default=None, repr=False)
    precision: str = "fp32"

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


def split_batches(data: MultitaskData, batch_size: int, device: torch.device) -> BatchStream:
    """A whole split in order, ``batch_size`` at a time (the last batch may be smaller)."""
    starts = range(0, len(data), batch_size)
    indices = (torch.arange(start, min(start + batch_size, len(data))) for start in starts)
    return batch_stream(data, indices, device)


@torch.no_grad()
def mean_losses(
    problem: MultitaskProblem,
    model: MultitaskModel,
    data: MultitaskData,
    device: torch.device,
    precision: Precision = Precision.FP32,
) -> torch.Tensor:
    """Each task's loss averaged over a whole split (batch-size weighted)."""
    total: torch.Tensor | None = None
    with split_batches(data, problem.eval_batch_size, device) as batches:
        for batch in batches:
            with autocast(precision, device):
                losses = problem.task_losses(model(batch.inputs), batch)
            weighted = torch.stack([widened(loss) for loss in losses]) * len(batch.inputs)
            total = weighted if total is None else total + weighted
    assert total is not None, "empty data split"
    return total / len(data)


@torch.no_grad()
def evaluate(
    problem: MultitaskProblem,
    model: MultitaskModel,
    device: torch.device,
    precision: Precision = Precision.FP32,
    data: MultitaskData | None = None,
) -> tuple[list[float], list[dict[str, float]]]:
    """Test losses and metrics of every task on the whole test split (or ``data``)."""
    model.eval()
    accumulator = problem.metric_accumulator()
    split = problem.test_data if data is None else data
    with split_batches(split, problem.eval_batch_size, device) as batches:
        for batch in batches:
            with autocast(precision, device):
                outputs = model(batch.inputs)
            accumulator.update([widened(output) for output in outputs], batch)
    losses = mean_losses(problem, model, split, device, precision).tolist()
    model.train()
    return losses, accumulator.compute()


def validation_normalized_loss(
    problem: MultitaskProblem,
    val_losses: list[float | None],
    initial_val_losses: list[float] | None,
) -> float | None:
    """The normalised loss on validation; None without a validation split."""
    if initial_val_losses is None or any(loss is None for loss in val_losses):
        return None
    return problem.normalized_loss(
        [float(v) for v in val_losses if v is not None], initial_val_losses
    )


def final_validation(last: EpochRecord, completed: bool) -> dict[str, Any]:
    """A result's validation fields from its last evaluation (its normalised loss only for a
    completed run with a finite one, like the test figure)."""
    if last.val_normalized_loss is None:
        return {}
    finite = completed and math.isfinite(last.val_normalized_loss)
    return {
        "val_losses": [task.val_loss for task in last.tasks],
        "val_metrics": [task.val_metrics for task in last.tasks],
        "val_normalized_loss": last.val_normalized_loss if finite else None,
    }


def balancer_context(
    problem: MultitaskProblem,
    model: MultitaskModel,
    device: torch.device,
    seed: int,
    precision: Precision = Precision.FP32,
    train_data: MultitaskData | None = None,
) -> BalancerContext:
    """What a balancer learns before the first step of training ``model`` on ``problem``."""
    data = problem.train_data if train_data is None else train_data
    return BalancerContext(
        task_count=len(problem.tasks),
        device=device,
        theoretical_initial_losses=problem.theoretical_initial_losses(),
        first_epoch_mean_losses=lambda: mean_losses(problem, model, data, device, precision),
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
        precision: Precision,
    ) -> None:
        self.problem, self.balancer, self.budget = problem, balancer, budget
        self.seed, self.device, self.on_epoch = seed, device, on_epoch
        self.precision = precision
        torch.manual_seed(seed)
        self.model = problem.build_model().to(device)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=problem.learning_rate)
        self.steps_per_epoch = max(len(problem.train_data) // problem.batch_size, 1)
        self.train_data = on_device(problem.train_data, device)
        self.test_data = on_device(problem.test_data, device)
        self.val_data = None if problem.val_data is None else on_device(problem.val_data, device)
        self.indices = epoch_batches(
            len(problem.train_data), problem.batch_size, torch.Generator().manual_seed(seed)
        )
        task_count = len(problem.tasks)
        self.watch = FiniteWatch(1, problem.task_names, device, check_every(device))
        # w(t) in memory that grows with steps / trace_every, not with the budget (trace.py)
        self.trace = WeightTrace((task_count,), budget.trace_every, self.watch.every, device)
        # the applied weights, at trace points only, where they are not the recorded ones
        distinct = type(balancer).raw_weights is not Balancer.raw_weights
        self.raw_trace = RawPoints((task_count,), budget.trace_every, device) if distinct else None
        self.loss_sum = torch.zeros(task_count, device=device)
        self.loss_count = 0
        self.epochs: list[EpochRecord] = []
        self.seconds = 0.0
        self.initial_test_losses, _ = self.evaluate()
        self.initial_val_losses = (
            None
            if self.val_data is None
            else evaluate(problem, self.model, device, precision, self.val_data)[0]
        )
        balancer.start(
            balancer_context(problem, self.model, device, seed, precision, self.train_data)
        )

    def evaluate(self) -> tuple[list[float], list[dict[str, float]]]:
        return evaluate(self.problem, self.model, self.device, self.precision, self.test_data)

    def validate(self) -> tuple[list[float | None], list[dict[str, float] | None]]:
        """Losses and metrics on the validation split (None each without one)."""
        if self.val_data is None:
            none: list[None] = [None] * len(self.problem.tasks)
            return list(none), list(none)
        losses, metrics = evaluate(
            self.problem, self.model, self.device, self.precision, self.val_data
        )
        return list(losses), list(metrics)

    def record(self, step: int) -> None:
        started = time.perf_counter()
        test_losses, metrics = self.evaluate()
        val_losses, val_metrics = self.validate()
        train_losses = (
            (self.loss_sum / self.loss_count).tolist()
            if self.loss_count
            else [None] * len(test_losses)
        )
        weights = self.balancer.weights.tolist()
        tasks = tuple(
            TaskEpoch(name, train, test, metric, weight, val, val_metric)
            for name, train, test, metric, weight, val, val_metric in zip(
                self.problem.task_names,
                train_losses,
                test_losses,
                metrics,
                weights,
                val_losses,
                val_metrics,
                strict=True,
            )
        )
        normalized_loss = self.problem.normalized_loss(test_losses, self.initial_test_losses)
        val_normalized = validation_normalized_loss(
            self.problem, val_losses, self.initial_val_losses
        )
        self.seconds += time.perf_counter() - started
        record = EpochRecord(
            len(self.epochs), step, tasks, normalized_loss, self.seconds, val_normalized
        )
        self.epochs.append(record)
        self.loss_sum.zero_()
        self.loss_count = 0
        if self.on_epoch is not None:
            self.on_epoch(record)

    def train_step(self, step: int, batch: Batch) -> None:
        """One optimisation step; a non-finite loss is left to the watch (on the CPU the
        step then stops before any update)."""
        self.trace.record(step, self.balancer.weights)
        self.optimizer.zero_grad(set_to_none=True)
        needs = self.balancer.needs
        training_step = TrainingStep(
            self.model, self.problem, batch, precision=self.precision, needs=needs
        )
        losses = training_step.losses.detach()
        self.watch.observe(step, losses)
        if self.watch.immediate and self.watch.failures_pending:
            return
        chosen_within = self.balancer.declaration.chooses_in_step
        raw = self.raw_trace if self.raw_trace is not None and self.raw_trace.due(step) else None
        if raw is not None and not chosen_within:  # the weights this step applies
            raw.record(step, self.balancer.raw_weights)
        self.balancer.step(training_step)
        if chosen_within:  # it chose w within the step: record what it applied
            self.trace.record(step, self.balancer.weights)
            if raw is not None:
                raw.record(step, self.balancer.raw_weights)
        self.optimizer.step()
        if Need.AFTER_OPTIMIZER_STEP in needs:
            self.balancer.after_step(training_step)
        self.loss_sum += losses
        self.loss_count += 1

    def run(self) -> TrainResult:
        self.record(0)
        eval_every = self.budget.eval_every or self.steps_per_epoch
        failure: Failure | None = None
        done = 0
        started = time.perf_counter()
        with batch_stream(self.train_data, self.indices, self.device) as batches:
            for step in range(self.budget.steps):
                self.train_step(step, next(batches))
                done = step + 1
                evaluating = done % eval_every == 0 or done == self.budget.steps
                if evaluating or self.watch.due(done):
                    failure = next(iter(self.watch.failures()), None)
                    if failure is not None:
                        done = failure.step
                        break
                    self.trace.confirm(done)
                if evaluating:
                    self.seconds += time.perf_counter() - started
                    self.record(done)
                    started = time.perf_counter()
        self.seconds += time.perf_counter() - started
        return self.result(done, failure)

    def result(self, done: int, failure: Failure | None) -> TrainResult:
        last = self.epochs[-1]
        steps = self.trace.point_steps(done)
        points = list(zip(steps, self.trace.points_before(done).tolist(), strict=True))
        raw = [] if self.raw_trace is None else self.raw_trace.before(done).tolist()
        # a failed run ends with the weights of its failing step (later ones saw NaNs)
        final = self.trace.at(done) if failure is not None else self.balancer.weights
        return TrainResult(
            status=TrialStatus.FAILED if failure else TrialStatus.COMPLETED,
            error=failure.reason if failure else None,
            problem=self.problem.describe(),
            balancer=self.balancer.describe(),
            tasks=self.problem.task_names,
            seed=self.seed,
            steps=done,
            device=str(self.device),
            weights_final=final.tolist(),
            weights_mean=self.trace.mean(done).tolist() if done else final.tolist(),
            initial_test_losses=self.initial_test_losses,
            test_losses=[task.test_loss for task in last.tasks],
            test_metrics=[task.metrics for task in last.tasks],
            normalized_loss=(
                None if failure or not math.isfinite(last.normalized_loss) else last.normalized_loss
            ),
            train_seconds=self.seconds,
            initial_val_losses=self.initial_val_losses,
            **final_validation(last, failure is None),
            best_val_step=best_validation_step(self.epochs),
            epochs=self.epochs,
            trace=points,
            raw_trace=[(s, values) for (s, _), values in zip(points, raw, strict=False)],
            model=self.model,
            precision=str(self.precision),
        )


def train(
    problem: MultitaskProblem,
    balancer: Balancer,
    budget: Budget,
    seed: int = 0,
    on_epoch: EpochCallback | None = None,
    device: str | torch.device | None = None,
    precision: Precision | str = Precision.FP32,
) -> TrainResult:
    """Train one network with one balancer; every balancer goes through this same loop.

    ``train_seconds`` counts the steps and evaluations, not model setup nor ``on_epoch``.
    A non-finite task loss stops the run with ``status="failed"``, the step and the reason.
    ``precision``: ``fp32``, or ``bf16`` autocast for the forward pass (see precision.py).
    """
    if budget.steps < 1 or (budget.eval_every is not None and budget.eval_every < 1):
        raise GradsweepError(
            f"steps and eval_every must be >= 1, got {budget.steps} and {budget.eval_every}"
        )
    chosen = parse_precision(precision)
    run = _Run(problem, balancer, budget, seed, resolve_device(device), on_epoch, chosen)
    return run.run()
