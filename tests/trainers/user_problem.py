"""A user's own problem, importable as ``tests.trainers.user_problem:make_problem``."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from gradsweep import problem_factory
from gradsweep.trainers import (
    Batch,
    MetricAccumulator,
    MultitaskModel,
    MultitaskProblem,
    ToyRegression,
)


@problem_factory
def make_problem(tasks: int = 2, scale: float = 1.0) -> ToyRegression:
    return ToyRegression(
        tasks=tasks,
        sigmas=[scale * (i + 1) for i in range(tasks)],
        train_samples=400,
        test_samples=100,
        batch_size=40,
    )


class ExplodingToy(ToyRegression):
    """Task 1's loss becomes NaN from step ``at`` on: the non-finite path."""

    def __init__(self, at: int, **params: object) -> None:
        super().__init__(**params)  # type: ignore[arg-type]
        self.at = at
        self.calls = 0

    def task_losses(self, outputs: Sequence[torch.Tensor], batch: Batch) -> list[torch.Tensor]:
        losses = super().task_losses(outputs, batch)
        if torch.is_grad_enabled():
            self.calls += 1
            if self.calls > self.at:
                losses[1] = losses[1] * float("nan")
        return losses


@problem_factory
def make_exploding(at: int = 7) -> ExplodingToy:
    return ExplodingToy(
        at, tasks=2, sigmas=[1.0, 100.0], train_samples=400, test_samples=100, batch_size=40
    )


@problem_factory
def not_a_problem() -> int:  # marked, and still checked: it returns no problem
    return 3


def unmarked_factory() -> ToyRegression:
    """A factory without the mark: a spec naming it is refused before it runs."""
    raise AssertionError("an unmarked factory was called")


class Nameless(MultitaskProblem):
    """Written from docs/problems.md without a ``name``: it is called by its class."""

    def __init__(self) -> None:
        self.toy = ToyRegression(
            tasks=2, sigmas=[1.0, 10.0], train_samples=400, test_samples=100, batch_size=40
        )
        self.tasks = self.toy.tasks
        self.train_data, self.test_data = self.toy.train_data, self.toy.test_data
        self.batch_size = 40

    def build_model(self) -> MultitaskModel:
        return self.toy.build_model()

    def task_losses(self, outputs: Sequence[torch.Tensor], batch: Batch) -> list[torch.Tensor]:
        return self.toy.task_losses(outputs, batch)

    def metric_accumulator(self) -> MetricAccumulator:
        return self.toy.metric_accumulator()


@problem_factory
def make_nameless() -> Nameless:
    return Nameless()
