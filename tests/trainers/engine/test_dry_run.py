from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch

from examples.wine_quality import make_problem as make_wine
from gradsweep.errors import DryRunError
from gradsweep.trainers import MultiDigits, MultiMNIST, MultitaskProblem, NYUv2, ToyRegression
from gradsweep.trainers.engine.dry_run import call_user, dry_run
from tests.trainers import broken_problems as broken
from tests.trainers.nyuv2_dataset import write_dataset
from tests.trainers.user_problem import make_problem

HERE = "tests/trainers/broken_problems.py:"


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (
            broken.make_two_losses,
            "problem two-losses: task_losses returned 2 losses for 3 tasks (task0, task1, task2)",
        ),
        (
            broken.make_two_heads,
            "problem two-heads: build_model returned 2 heads for 3 tasks (task0, task1, task2)",
        ),
        (
            broken.make_unlabelled_test,
            "problem unlabelled-test: task_losses: task task2: the initial test loss is 0, "
            "and every trial's normalised loss divides each task's test loss by it",
        ),
        (
            broken.make_ignores_shared_features,
            "problem ignores-shared: build_model/task_losses: task task1: no gradient at the "
            "shared layer trunk.6.weight (zero or none): the head or the loss does not use the "
            "trunk's output",
        ),
        (
            broken.make_per_sample_loss,
            "problem per-sample-loss: task_losses: task task2: the training loss is a tensor "
            "of shape (4,), not a scalar",
        ),
        (
            broken.make_missing_metric,
            "problem missing-metric: metric_accumulator().compute: task task0: no 'mse', its "
            "primary metric (got mae)",
        ),
    ],
)
def test_a_broken_contract_is_one_line_naming_the_task_and_method(
    make: Callable[[], MultitaskProblem], message: str
) -> None:
    with pytest.raises(DryRunError) as error:
        dry_run(make())
    assert str(error.value) == message


@pytest.mark.parametrize(
    ("make", "start", "method"),
    [
        (
            broken.make_raising_loss,
            "problem raising-loss: task_losses raised RuntimeError: mat1 and mat2 shapes cannot",
            "in task_losses)",
        ),
        (
            broken.make_wrong_shared_layer,
            "problem wrong-shared-layer: build_model raised ValueError: shared_layer must be a "
            "parameter of the trunk",
            "in build_model)",
        ),
    ],
)
def test_an_exception_in_the_users_code_names_its_line(
    make: Callable[[], MultitaskProblem], start: str, method: str
) -> None:
    with pytest.raises(DryRunError) as error:
        dry_run(make())
    text = str(error.value)
    assert text.startswith(start) and f"({HERE}" in text and text.endswith(method)
    assert "\n" not in text


def test_a_factory_that_raises_is_one_line_with_its_line() -> None:
    name = "tests.trainers.broken_problems:make_raising_factory"
    with pytest.raises(DryRunError) as error:
        call_user(name, "make_raising_factory", broken.make_raising_factory)
    assert str(error.value).startswith(
        f"problem {name}: make_raising_factory raised FileNotFoundError: no data at /data/mine "
        f"({HERE}"
    )


def test_the_callers_generators_are_left_as_they_were() -> None:
    torch.manual_seed(123)
    random.seed(4)
    np.random.seed(5)
    expected = (torch.rand(3), random.random(), np.random.rand())
    torch.manual_seed(123)
    random.seed(4)
    np.random.seed(5)
    dry_run(make_problem(2))
    assert torch.equal(torch.rand(3), expected[0])
    assert (random.random(), np.random.rand()) == expected[1:]


def built_in_problems(tmp_path: Path) -> list[MultitaskProblem]:
    small = {"train_samples": 64, "test_samples": 32, "batch_size": 32}
    return [
        ToyRegression(tasks=3, sigmas=[1, 10, 100], **small),
        ToyRegression(tasks=10, **small),
        MultiDigits(**small),
        MultiMNIST(**small),
        NYUv2(root=str(write_dataset(tmp_path / "nyuv2")), width=4, levels=2, batch_size=2),
        make_wine(),
    ]


def test_every_built_in_problem_and_the_example_pass(tmp_path: Path) -> None:
    for problem in built_in_problems(tmp_path):
        dry_run(problem)
