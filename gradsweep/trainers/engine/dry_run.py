"""The dry run: one training step and one test batch of a problem on the CPU, before any trial.

A problem that breaks its contract (two losses for three tasks, a head that ignores the
shared features, an initial loss of 0 that the normalised loss divides by, a method
that raises) would otherwise fail every trial of a study, far from the cause and with a
message such as ``zip() argument 2 is shorter than argument 1``. Here it fails once, with
one line naming the task, the method and what is wrong.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TypeVar

import numpy as np
import torch

from gradsweep.errors import DryRunError, GradsweepError
from gradsweep.trainers.engine.failures import error_line
from gradsweep.trainers.problems.base import Batch, MultitaskModel, MultitaskProblem

CPU = torch.device("cpu")
SEED = 0
TRAIN_BATCH = 4  # enough for the checks (BatchNorm needs 2), cheap on a full-size SegNet

T = TypeVar("T")


def call_user(problem: str, method: str, function: Callable[[], T]) -> T:
    """Call a user's code; what it raises becomes one line naming the method and the line
    of the user's code that raised (our own errors, a ``ProblemError`` among them, pass
    unchanged: their message is already the user's)."""
    try:
        return function()
    except GradsweepError:
        raise
    except Exception as exc:
        raise DryRunError(f"problem {problem}: {method} raised {error_line(exc)}") from exc


@contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Torch's CPU generator seeded for the dry run; every global generator (torch's,
    numpy's, Python's) is left as the caller had it, so the caller's draws do not change."""
    python_state, numpy_state = random.getstate(), np.random.get_state()
    try:
        with torch.random.fork_rng(devices=[]):
            torch.default_generator.manual_seed(seed)
            yield
    finally:
        random.setstate(python_state)
        np.random.set_state(numpy_state)


def dry_run(problem: MultitaskProblem) -> None:
    """Build the model on the CPU, take one training step's losses and per-task gradients at
    ``W`` and one test batch's losses and metrics; raise a ``DryRunError`` at the first
    broken contract. Every trial records its normalised loss (each test loss over its
    initial value, whatever the study's objective), so an initial test loss of 0 is one."""
    check = _DryRun(problem)
    with seeded(SEED):
        model = check.model()
        check.training_step(model)
        check.evaluation(model, "test_data", "test")
        if problem.val_data is not None:  # with_validation gives every study's problem one
            check.evaluation(model, "val_data", "validation")


class _DryRun:
    """The checks, in the order a trial meets them."""

    def __init__(self, problem: MultitaskProblem) -> None:
        self.problem = problem
        self.label = str(getattr(problem, "name", type(problem).__name__))
        self.tasks = [task.name for task in problem.tasks]

    def error(self, text: str) -> DryRunError:
        return DryRunError(f"problem {self.label}: {text}")

    def call(self, method: str, function: Callable[[], T]) -> T:
        return call_user(self.label, method, function)

    def model(self) -> MultitaskModel:
        # MultitaskModel's own check (W a parameter of the trunk) raises in build_model
        model = self.call("build_model", self.problem.build_model)
        if not isinstance(model, MultitaskModel):
            raise self.error(f"build_model returned {type(model).__name__}, not a MultitaskModel")
        if len(model.heads) != len(self.tasks):
            raise self.error(
                f"build_model returned {len(model.heads)} heads for {len(self.tasks)} tasks "
                f"({', '.join(self.tasks)})"
            )
        return model.to(CPU)

    def batch(self, split: str, size: int) -> Batch:
        data = self.call(split, lambda: getattr(self.problem, split))
        length = self.call(f"{split}.__len__", lambda: len(data))
        if length < 1:
            raise self.error(f"{split} is empty")
        indices = torch.arange(min(size, length))
        return self.call(f"{split}.batch", lambda: data.batch(indices, CPU))

    def losses(
        self, outputs: Sequence[torch.Tensor], batch: Batch, split: str
    ) -> list[torch.Tensor]:
        """Each task's loss on ``batch``, checked: one finite scalar tensor per task."""
        losses = self.call("task_losses", lambda: self.problem.task_losses(outputs, batch))
        if not isinstance(losses, list | tuple):
            raise self.error(f"task_losses returned a {type(losses).__name__}, not a list")
        if len(losses) != len(self.tasks):
            raise self.error(
                f"task_losses returned {len(losses)} losses for {len(self.tasks)} tasks "
                f"({', '.join(self.tasks)})"
            )
        for name, loss in zip(self.tasks, losses, strict=True):
            if not isinstance(loss, torch.Tensor) or loss.dim() != 0:
                got = (
                    f"a tensor of shape {tuple(loss.shape)}"
                    if isinstance(loss, torch.Tensor)
                    else f"a {type(loss).__name__}"
                )
                raise self.error(
                    f"task_losses: task {name}: the {split} loss is {got}, not a scalar"
                )
            value = float(loss.detach())
            if not math.isfinite(value):
                raise self.error(f"task_losses: task {name}: the initial {split} loss is {value}")
        return list(losses)

    def training_step(self, model: MultitaskModel) -> None:
        """One training batch forward, and each task's loss alone backward to ``W``."""
        batch = self.batch("train_data", min(self.problem.batch_size, TRAIN_BATCH))
        model.train()
        with torch.enable_grad():
            outputs = self.call("the model's forward", lambda: model(batch.inputs))
            losses = self.losses(outputs, batch, "training")
            for name, loss in zip(self.tasks, losses, strict=True):
                if not loss.requires_grad:
                    raise self.error(
                        f"task_losses: task {name}: the loss is not differentiable "
                        "(computed under torch.no_grad(), or detached)"
                    )
            gradients = [self.gradient(model, loss) for loss in losses]
        self.check_gradients(model, gradients)

    def gradient(self, model: MultitaskModel, loss: torch.Tensor) -> torch.Tensor | None:
        (gradient,) = self.call(
            "backward",
            lambda: torch.autograd.grad(
                loss, model.shared_layer, retain_graph=True, allow_unused=True
            ),
        )
        return gradient

    def check_gradients(
        self, model: MultitaskModel, gradients: Sequence[torch.Tensor | None]
    ) -> None:
        """GradNorm balances each task's gradient norm at ``W``: a task whose loss does not
        reach ``W`` (a head that ignores the trunk's output, a ``detach()``) has none."""
        pairs = list(zip(self.tasks, gradients, strict=True))
        missing = [name for name, grad in pairs if grad is None or not bool(grad.any())]
        if missing:
            raise self.error(
                f"build_model/task_losses: {_tasks(missing)}: no gradient at the shared layer "
                f"{model.shared_layer_name} (zero or none): the head or the loss does not "
                "use the trunk's output"
            )
        for name, grad in pairs:
            if grad is not None and not bool(torch.isfinite(grad).all()):
                raise self.error(
                    f"task_losses: task {name}: the gradient at the shared layer "
                    f"{model.shared_layer_name} is not finite"
                )

    def evaluation(self, model: MultitaskModel, split: str, name: str) -> None:
        """One batch of an evaluated split (test, validation) as the loop evaluates it:
        losses, then the metric accumulator."""
        batch = self.batch(split, self.problem.eval_batch_size)
        model.eval()
        with torch.no_grad():
            outputs = self.call("the model's forward", lambda: model(batch.inputs))
            losses = self.losses(outputs, batch, name)
            zero = [task for task, loss in zip(self.tasks, losses, strict=True) if loss == 0]
            if zero:
                raise self.error(
                    f"task_losses: {_tasks(zero)}: the initial {name} loss is 0, and every "
                    f"trial's normalised loss divides each task's {name} loss by it"
                )
            accumulator = self.call("metric_accumulator", self.problem.metric_accumulator)
            self.call("metric_accumulator().update", lambda: accumulator.update(outputs, batch))
            metrics = self.call("metric_accumulator().compute", accumulator.compute)
        self.check_metrics(metrics)

    def check_metrics(self, metrics: object) -> None:
        """One dict per task holding the task's primary metric, a finite number."""
        method = "metric_accumulator().compute"
        if not isinstance(metrics, list | tuple):
            raise self.error(f"{method} returned a {type(metrics).__name__}, not a list")
        if len(metrics) != len(self.tasks):
            raise self.error(
                f"{method} returned {len(metrics)} dicts for {len(self.tasks)} tasks "
                f"({', '.join(self.tasks)})"
            )
        for task, values in zip(self.problem.tasks, metrics, strict=True):
            where = f"{method}: task {task.name}"
            if not isinstance(values, Mapping) or task.metric not in values:
                keys = ", ".join(map(str, values)) if isinstance(values, Mapping) else "no dict"
                raise self.error(
                    f"{where}: no {task.metric!r}, its primary metric (got {keys or 'none'})"
                )
            value = values[task.metric]
            if not _finite_number(value):
                raise self.error(f"{where}: {task.metric} is {value!r}, not a finite number")


def _tasks(names: Sequence[str]) -> str:
    return f"task {names[0]}" if len(names) == 1 else f"tasks {', '.join(names)}"


def _finite_number(value: object) -> bool:
    try:
        return math.isfinite(float(value))  # type: ignore[arg-type]
    except (TypeError, ValueError, RuntimeError):  # not a number, or a tensor of several
        return False
