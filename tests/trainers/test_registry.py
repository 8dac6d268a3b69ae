from __future__ import annotations

from pathlib import Path

import pytest

from gradsweep.errors import BalancerError, ProblemError
from gradsweep.trainers import GradNorm, StaticBalancer, ToyRegression, make_balancer, make_problem
from tests.trainers.nyuv2_dataset import write_dataset


def test_builtin_problem() -> None:
    problem = make_problem("toy", {"tasks": 2, "train_samples": 200, "test_samples": 10})
    assert isinstance(problem, ToyRegression)


def test_user_problem_by_import_path() -> None:
    problem = make_problem("tests.trainers.user_problem:make_problem", {"tasks": 3, "scale": 2})
    assert problem.task_names == ["task0", "task1", "task2"]
    assert problem.sigmas == (2.0, 4.0, 6.0)  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("name", "params", "message"),
    [
        ("nope", None, "unknown problem 'nope'"),
        ("no_such_module_xyz:make", None, "cannot import 'no_such_module_xyz'"),
        ("tests.trainers.user_problem:missing", None, "has no attribute 'missing'"),
        ("tests.trainers.user_problem:not_a_problem", None, "did not return a MultitaskProblem"),
        ("toy", {"colour": "red"}, "bad parameters"),
    ],
)
def test_problem_errors(name: str, params: dict[str, object] | None, message: str) -> None:
    with pytest.raises(ProblemError, match=message):
        make_problem(name, params)


def test_balancers() -> None:
    assert isinstance(make_balancer("static", {"weights": [1, 2]}), StaticBalancer)
    gradnorm = make_balancer("gradnorm", {"alpha": 1.5})
    assert isinstance(gradnorm, GradNorm)
    assert gradnorm.describe() == {
        "name": "gradnorm",
        "alpha": 1.5,
        "lr": 0.025,
        "initial_loss": "first_batch",
    }
    with pytest.raises(BalancerError, match="unknown balancer"):
        make_balancer("nope")
    with pytest.raises(BalancerError, match="bad parameters"):
        make_balancer("gradnorm", {"beta": 1})


def test_nyuv2_by_name(tmp_path: Path) -> None:
    root = write_dataset(tmp_path / "nyuv2")
    problem = make_problem("nyuv2", {"root": str(root), "width": 4, "levels": 2, "batch_size": 2})
    assert problem.task_names == ["segmentation", "depth", "normal"]
    with pytest.raises(ProblemError, match=str(tmp_path / "missing")):
        make_problem("nyuv2", {"root": str(tmp_path / "missing")})
