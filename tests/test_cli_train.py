"""``gradsweep train`` as a user runs it: a real process, real exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gradsweep.cli import app
from tests.fuzz_helpers import run_cli

SMALL = ["--param", "train_samples=400", "--param", "test_samples=100", "--param", "batch_size=40"]


def gradsweep(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gradsweep.cli", *args], capture_output=True, text=True, timeout=300
    )


def test_train_json_has_the_documented_keys() -> None:
    run = gradsweep("train", "--steps", "30", "--json", *SMALL)
    assert run.returncode == 0, run.stderr
    data = json.loads(run.stdout)
    for key in (
        "problem",
        "tasks",
        "balancer",
        "steps",
        "seed",
        "weights_final",
        "weights_mean",
        "test_losses",
        "objective",
        "train_seconds",
    ):
        assert key in data
    assert data["problem"] == "toy" and data["balancer"] == "gradnorm" and data["steps"] == 30
    assert sum(data["weights_final"]) == pytest.approx(2.0)


PLUG_IN = ["--balancer", "examples.inverse_norm_balancer:InverseGradientNorm"]


def test_a_users_balancer_trains_by_import_path() -> None:
    run = gradsweep("train", *PLUG_IN, "--balancer-param", "power=0.5", "--steps", "30",
                    "--json", *SMALL)  # fmt: skip
    assert run.returncode == 0, run.stderr
    data = json.loads(run.stdout)
    assert data["balancer"] == "inverse_norm" and data["balancer_params"]["power"] == 0.5
    assert sum(data["weights_final"]) == pytest.approx(2.0)
    assert data["weights_final"] != pytest.approx([1.0, 1.0])  # σ = (1, 100): not equal


def test_one_flag_takes_several_pairs() -> None:
    """``--param a=1 b=2`` is ``--param a=1 --param b=2``, for --balancer-param too."""
    pairs = ["train_samples=400", "test_samples=100", "batch_size=40"]
    common = ["train", "--steps", "10", "--balancer", "dwa", "--json"]
    several = run_cli([*common, "--param", *pairs, "--balancer-param", "temperature=3"])
    repeated = run_cli([*common, *SMALL, "--balancer-param", "temperature=3"])
    assert several.code == repeated.code == 0, several.err
    one, other = json.loads(several.out), json.loads(repeated.out)
    for data in (one, other):
        data.pop("train_seconds")
    assert one == other
    stray = CliRunner().invoke(app, ["train", "--param", "train_samples=400", "oops"])
    assert stray.exit_code == 2


def test_train_in_bf16_says_so() -> None:
    run = gradsweep("train", "--steps", "30", "--precision", "bf16", "--json", *SMALL)
    assert run.returncode == 0, run.stderr
    data = json.loads(run.stdout)
    assert data["precision"] == "bf16" and data["status"] == "completed"


def test_train_table_for_static_weights() -> None:
    run = gradsweep("train", "--balancer", "static", "--weights", "1,3", "--steps", "20", *SMALL)
    assert run.returncode == 0, run.stderr
    assert "static on toy: completed" in run.stdout and "3.0000" in run.stdout


def test_a_problem_without_a_name_is_called_by_its_class() -> None:
    run = gradsweep(
        "train", "--problem", "tests.trainers.user_problem:make_nameless", "--steps", "10",
        "--balancer", "static",
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert "static on Nameless: completed" in run.stdout


def test_user_problem_from_the_command_line() -> None:
    run = gradsweep(
        "train",
        "--problem",
        "tests.trainers.user_problem:make_problem",
        "--param",
        "tasks=3",
        "--steps",
        "10",
        "--json",
    )
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["tasks"] == ["task0", "task1", "task2"]


def test_a_failed_trial_exits_1_with_its_reason() -> None:
    run = gradsweep(
        "train",
        "--problem",
        "tests.trainers.user_problem:make_exploding",
        "--steps",
        "20",
        "--json",
    )
    assert run.returncode == 1
    data = json.loads(run.stdout)
    assert data["status"] == "failed" and "non-finite loss" in data["error"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--tasks", "1"], "tasks must be at least 2"),
        (["--balancer", "static", "--weights", "1,2,3"], "--weights: 3 given for 2 tasks"),
        (["--balancer", "static", "--weights", "-1,2"], "weights must be non-negative"),
        (["--problem", "nope"], "unknown problem 'nope'"),
        (["--sigmas", "1,2,3"], "3 sigmas given for 2 tasks"),
        (["--sigmas", "1,x"], "--sigmas: expected comma-separated numbers"),
        (["--alpha", "-1"], "alpha must be >= 0"),
        (["--steps", "0"], "--steps must be >= 1"),
        (["--balancer", "nope"], "unknown balancer 'nope'"),
        (["--balancer", "static", "--alpha", "1"], "--alpha only applies to"),
        (["--weights", "1,1"], "--weights only applies to"),
        (["--param", "oops"], "--param: expected key=value"),
        (["--precision", "fp16"], "precision must be one of fp32, bf16, got 'fp16'"),
        (["--balancer", "nopkg.mod:Mine"], "balancer 'nopkg.mod:Mine': cannot import 'nopkg.mod'"),
        (["--balancer", "tests.trainers.broken_balancers:RaisesInStep"],
         "balancer tests.trainers.broken_balancers:RaisesInStep: step raised ZeroDivisionError: "
         "division by zero (tests/trainers/broken_balancers.py:32 in step)"),
        ([*PLUG_IN, "--alpha", "1"], "--alpha only applies to --balancer gradnorm"),
        (["--balancer", "tests.trainers.broken_balancers:NeedsAMissingExtra"],
         "pip install 'gradsweep[canon]'"),
        ([*PLUG_IN, "--balancer-param", "beta=1"], "bad parameters"),
    ],
)  # fmt: skip
def test_bad_arguments_are_one_line_and_exit_2(args: list[str], message: str) -> None:
    result = CliRunner().invoke(app, ["train", *args])
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and "Traceback" not in result.stderr


def test_bad_arguments_from_a_real_process() -> None:
    run = gradsweep("train", "--tasks", "1")
    assert run.returncode == 2
    assert run.stderr.strip() == "error: toy: tasks must be at least 2, got 1"


BROKEN = "tests.trainers.broken_problems:"


@pytest.mark.parametrize(
    ("problem", "message"),
    [
        ("make_two_losses", "problem two-losses: task_losses returned 2 losses for 3 tasks"),
        ("make_two_heads", "problem two-heads: build_model returned 2 heads for 3 tasks"),
        ("make_unlabelled_test", "task_losses: task task2: the initial test loss is 0"),
        ("make_ignores_shared_features", "task task1: no gradient at the shared layer"),
        ("make_missing_metric", "compute: task task0: no 'mse', its primary metric"),
        ("make_wrong_shared_layer", "build_model raised ValueError: shared_layer must be a"),
        (
            "make_module_shared_layer",
            "build_model raised ValueError: shared_layer must be a parameter of the trunk, got "
            "the module Linear(in_features=100, out_features=100, bias=True): give its weight, "
            "e.g. trunk[-1].weight",
        ),
    ],
)
def test_a_broken_problem_is_one_line_and_exit_2_before_training(
    problem: str, message: str
) -> None:
    result = CliRunner().invoke(app, ["train", "--problem", BROKEN + problem, "--steps", "2"])
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and "Traceback" not in result.stderr
    assert result.stdout == ""


def test_a_first_layer_shared_layer_is_one_warning_line_and_runs(tmp_path: Path) -> None:
    """Accepted (it is a parameter of the trunk), with one line saying GradNorm's slower
    path, from spec check's dry run and from train; a real process, as Python shows a
    warning once per process."""
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        f"study: s\nproblem: {BROKEN}make_first_layer_shared\nbudget: {{steps: 10}}\n"
        "arms: {gradnorm: {alphas: [0.12]}}\n"
    )
    warning = (
        "warning: shared_layer is the trunk's first layer: GradNorm's per-task gradient "
        "norms then take the slower graph path (the trunk's output z is not that layer's "
        "output, so each step keeps its whole graph and differentiates z back through the "
        "trunk to W for every task: more time and memory); the paper uses the last shared "
        "layer, e.g. trunk[-1].weight"
    )
    checked = gradsweep("spec", "check", str(spec))
    assert checked.returncode == 0, checked.stderr
    assert checked.stderr.splitlines() == [warning]
    trained = gradsweep("train", "--problem", BROKEN + "make_first_layer_shared", "--steps", "2")
    assert trained.returncode == 0 and trained.stderr.splitlines()[0] == warning


@pytest.mark.parametrize(
    ("problem", "message"),
    [
        (
            "make_raising_factory",
            f"error: problem {BROKEN}make_raising_factory: make_raising_factory raised "
            "FileNotFoundError: no data at /data/mine (tests/trainers/broken_problems.py:",
        ),
        (
            "make_raising_loss",
            "error: problem raising-loss: task_losses raised RuntimeError: mat1 and mat2 shapes "
            "cannot be multiplied (4x100 and 4x100) (tests/trainers/broken_problems.py:",
        ),
    ],
)
def test_a_problem_that_raises_is_one_line_from_a_real_process(problem: str, message: str) -> None:
    run = gradsweep("train", "--problem", BROKEN + problem, "--steps", "2")
    assert run.returncode == 2
    assert run.stderr.startswith(message) and len(run.stderr.strip().splitlines()) == 1
    assert "Traceback" not in run.stderr
