"""The user-problem example of docs/problems.md really works as a gradsweep problem."""

from __future__ import annotations

import math

import pytest
import torch

from examples.wine_quality import make_problem
from gradsweep.errors import ProblemError
from gradsweep.spec import load_spec, task_metrics
from gradsweep.trainers import Budget, GradNorm, StaticBalancer, train
from gradsweep.trainers import make_problem as by_name


def test_the_example_is_reachable_by_its_import_path() -> None:
    problem = by_name("examples.wine_quality:make_problem", {"hidden": 8})
    assert problem.task_names == ["cultivar", "colour", "proline"]
    # a tenth of its training examples held out for validation, by the fixed seed
    validation = problem.val_data
    assert validation is not None and len(validation) == round(0.1 * (178 - len(problem.test_data)))
    assert len(problem.train_data) + len(validation) + len(problem.test_data) == 178


def test_it_learns_every_task() -> None:
    problem = make_problem()
    result = train(problem, StaticBalancer(), Budget(steps=300), seed=0, device="cpu")
    accuracy = result.test_metrics[0]["accuracy"]
    assert accuracy > 0.8  # three classes: chance is about 0.4
    assert all(
        final < 0.5 * initial
        for final, initial in zip(result.test_losses, result.initial_test_losses, strict=True)
    )


def test_gradnorm_takes_log_c_for_the_classification_task_only() -> None:
    problem = make_problem()
    balancer = GradNorm(alpha=1.0, initial_loss="theoretical")
    train(problem, balancer, Budget(steps=3), seed=0, device="cpu")
    assert balancer.initial_losses is not None
    assert float(balancer.initial_losses[0]) == pytest.approx(math.log(3))
    batch = problem.train_data.batch(torch.arange(problem.batch_size), torch.device("cpu"))
    assert bool(torch.isfinite(balancer.initial_losses).all()) and batch.inputs.shape[1] == 11


def test_bad_parameters_are_one_clear_line() -> None:
    with pytest.raises(ProblemError, match="wine: hidden must be >= 1, got 0"):
        make_problem(hidden=0)


def test_the_example_study_validates() -> None:
    spec = load_spec("examples/wine.yaml")
    assert spec.objective == "delta_m"
    assert [t["direction"] for t in task_metrics(spec)] == ["max", "min", "min"]
