"""Reliability: specs that name code that is not a problem, and specs of any size.

Two families (docs/reliability.md):

- a spec (or ``train``) naming, by import path, something that is not a problem or a
  balancer (``shutil:rmtree`` with a path, ``os:system`` with a command, any unmarked
  function, a class of the wrong kind) is refused in one line before it is called: the
  canary directory survives, the marker command never runs, no database is created;
- a spec asking for more than a study can hold (a billion weightings, ten thousand seeds
  times a grid, a billion steps) is refused in one line, counted by arithmetic in well
  under a second, before the problem is built or anything is written; and a trial's memory
  does not grow with its step budget.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gradsweep import problem_factory
from gradsweep.cli import app
from gradsweep.spec import parse_spec
from gradsweep.storage import queries
from gradsweep.storage.engine import open_engine
from gradsweep.storage.records import StudyRecord
from gradsweep.storage.writer import ResultsWriter
from gradsweep.trainers import ToyRegression

ROOT = Path(__file__).resolve().parents[1]
RUNNER = CliRunner()
BUILT: list[dict[str, object]] = []  # the calls of ``counting_problem``


@problem_factory
def counting_problem(**params: object) -> ToyRegression:
    """A marked factory that remembers it was called: a refused spec never calls it."""
    BUILT.append(params)
    return ToyRegression(tasks=2, train_samples=40, test_samples=10, batch_size=10)


def write(tmp_path: Path, problem: object, **fields: object) -> Path:
    spec: dict[str, object] = {
        "study": "reliability",
        "problem": problem,
        "budget": {"steps": 5},
        "arms": {"static": {"weights": [[1, 1]]}},
        **fields,
    }
    path = tmp_path / "spec.yaml"
    path.write_text(json.dumps(spec, separators=(",", ":")))  # JSON is YAML, and compact
    return path


def refused(args: list[str]) -> str:
    """The one error line of a command that must exit 2."""
    result = RUNNER.invoke(app, args)
    lines = result.stderr.strip().splitlines()
    assert result.exit_code == 2 and len(lines) == 1, (result.exit_code, result.stderr)
    assert lines[0].startswith("error: ") and "Traceback" not in result.output
    return lines[0]


# -- code only where the user means code ------------------------------------------------


@pytest.fixture
def canary(tmp_path: Path) -> Path:
    folder = tmp_path / "canary"
    folder.mkdir()
    (folder / "keep.txt").write_text("still here")
    return folder


@pytest.mark.parametrize("command", ["check", "launch"])
def test_a_spec_naming_rmtree_deletes_nothing(tmp_path: Path, canary: Path, command: str) -> None:
    path = write(tmp_path, {"name": "shutil:rmtree", "params": {"path": str(canary)}})
    database = tmp_path / "results.db"
    args = ["spec", "check", str(path)] if command == "check" else ["launch", str(path)]
    line = refused([*args, "--db", f"sqlite:///{database}"])
    assert line == (
        f"error: {path}: problem.name: problem 'shutil:rmtree': shutil.rmtree is a function, "
        "not a problem factory, so it was not called: name a MultitaskProblem subclass, a "
        "function marked @gradsweep.problem_factory, or one registered in the "
        "'gradsweep.problems' entry points"
    )
    assert (canary / "keep.txt").read_text() == "still here" and not database.exists()


def test_a_spec_naming_os_system_runs_no_command(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    path = write(tmp_path, {"name": "os:system", "params": {"command": f"touch {marker}"}})
    line = refused(["spec", "check", str(path)])
    assert "os.system is a built-in function, not a problem factory" in line
    assert not marker.exists()


@pytest.mark.parametrize(
    ("name", "params", "said"),
    [
        ("shutil:rmtree", "path={canary}", "shutil.rmtree is a function, not a problem factory"),
        ("os:system", "command=touch {canary}/ran", "os.system is a built-in function"),
        ("os:remove", "path={canary}/keep.txt", "os.remove is a built-in function"),
        ("pathlib:Path", "", "pathlib.Path is a class, not a MultitaskProblem subclass"),
        ("os:sep", "", "os.sep is a str, not callable"),
    ],
)
def test_train_refuses_them_too(canary: Path, name: str, params: str, said: str) -> None:
    told = ["--param", params.format(canary=canary)] if params else []
    line = refused(["train", "--problem", name, *told, "--steps", "2"])
    assert said in line
    assert sorted(p.name for p in canary.iterdir()) == ["keep.txt"]


@pytest.mark.parametrize("name", ["os:system", "shutil:rmtree", "builtins:exec"])
def test_a_balancer_named_by_any_function_is_refused(tmp_path: Path, name: str) -> None:
    path = write(tmp_path, "toy", arms={"static": {"weights": [[1, 1]]}, name: {}})
    line = refused(["spec", "check", str(path)])
    assert f"arms.{name}: balancer '{name}': {name.replace(':', '.')} is a" in line
    assert "not a subclass of gradsweep.trainers.Balancer, so it was not called" in line
    line = refused(["train", "--balancer", name, "--steps", "2"])
    assert "not a subclass of gradsweep.trainers.Balancer, so it was not called" in line


def test_an_unmarked_factory_is_refused_and_a_marked_one_runs(tmp_path: Path) -> None:
    unmarked = write(tmp_path, "tests.trainers.user_problem:unmarked_factory")
    line = refused(["spec", "check", str(unmarked)])  # it would raise AssertionError if called
    assert "user_problem.unmarked_factory is a function, not a problem factory" in line
    marked = write(tmp_path, "tests.test_reliability_specs:counting_problem")
    database = tmp_path / "results.db"
    ok = RUNNER.invoke(app, ["spec", "check", str(marked), "--db", f"sqlite:///{database}"])
    assert ok.exit_code == 0 and "2 tasks" in ok.stdout, ok.output
    assert not database.exists()


# -- bounded everywhere ------------------------------------------------------------------

HUGE = [
    (
        "random",
        {"arms": {"random": {"n": 1_000_000}}, "seeds": list(range(2_000))},
        "2,000,000,000 trials planned (2,000 seed(s) × 1,000,000 trials each), more than "
        "limits.max_trials (100,000)",
    ),
    (
        "seeds-times-grid",
        {"arms": {"grid": {"resolution": 10_000}}, "seeds": list(range(10_000))},
        "99,990,000 trials planned (10,000 seed(s) × 9,999 trials each)",
    ),
    (
        "twenty-thousand-seeds",
        {"arms": {"grid": {"resolution": 200}}, "seeds": list(range(20_000))},
        "seeds: must hold at most 10,000 items (got 20,000)",
    ),
    ("a-billion-weightings", {"arms": {"random": {"n": 10**9}}}, "arms.random.n: must be <="),
    (
        "optuna",
        {"arms": {"optuna": {"n_trials": 10**9}}},
        "arms.optuna.n_trials: must be <= 100,000",
    ),
    (
        "alphas",
        {"arms": {"gradnorm": {"alphas": [i / 1000 for i in range(1_001)]}}},
        "arms.gradnorm.alphas: must hold at most 1,000 items (got 1,001)",
    ),
    (
        "resolution",
        {"arms": {"grid": {"resolution": 10**12}}},
        "arms.grid.resolution: must be <= 10,000",
    ),
    ("steps", {"budget": {"steps": 10**12}}, "budget.steps: must be <= 1,000,000,000"),
    (
        "trace",
        {"budget": {"steps": 10**9}},
        "budget.trace_every: 1,000,000,000 steps record 100,000,000 w(t) points a trial (at "
        "most 1,000,000): set trace_every to at least 1,000",
    ),
    (
        "evaluations",
        {"budget": {"steps": 10**9, "trace_every": 10**4, "eval_every": 10}},
        "budget.eval_every: 1,000,000,000 steps make 100,000,000 evaluations a trial",
    ),
    ("seed", {"seeds": [2**31]}, "seeds[0]: must be <= 2,147,483,647"),
    ("limit", {"limits": {"max_trials": 10**9}}, "limits.max_trials: must be <= 1,000,000"),
    ("failures", {"max_failures": 10**9}, "max_failures: must be <= 100"),
]


@pytest.mark.parametrize(("case", "fields", "said"), HUGE, ids=[c[0] for c in HUGE])
def test_a_huge_spec_is_refused_at_once(
    tmp_path: Path, case: str, fields: dict[str, object], said: str
) -> None:
    path = write(tmp_path, "toy", **fields)
    database = tmp_path / "results.db"
    args = ["spec", "check", str(path), "--db", f"sqlite:///{database}"]
    refused(args)  # the first imports the commands' modules
    started = time.perf_counter()
    line = refused(args)
    assert time.perf_counter() - started < 1.0
    assert said in line
    launched = refused(["launch", str(path), "--db", f"sqlite:///{database}"])
    assert launched == line and not database.exists()


def test_the_plan_is_counted_before_a_users_problem_is_built(tmp_path: Path) -> None:
    problem = "tests.test_reliability_specs:counting_problem"
    path = write(tmp_path, problem, arms={"random": {"n": 600_000}}, seeds=[0, 1])
    BUILT.clear()
    line = refused(["spec", "check", str(path)])
    assert "1,200,000 trials planned" in line and BUILT == []


def test_a_grid_beyond_the_limit_is_counted_not_built(tmp_path: Path) -> None:
    """T = 10 at R = 10,000: C(10,009, 9) − 10 points, a 31-digit count, refused at once."""
    toy = {"name": "toy", "params": {"tasks": 10}}
    path = write(tmp_path, toy, arms={"grid": {"resolution": 10_000}})
    refused(["spec", "check", str(path)])
    started = time.perf_counter()
    line = refused(["spec", "check", str(path)])
    assert time.perf_counter() - started < 1.0
    assert line.endswith(
        f"arms.grid.resolution: {math.comb(10_009, 9) - 10} grid points for 10 tasks at "
        "resolution 10000 (at most 100000; try random or optuna)"
    )


def test_a_raised_limit_is_the_users_choice(tmp_path: Path) -> None:
    fields = {"arms": {"random": {"n": 60_000}}, "seeds": [0, 1]}
    path = write(tmp_path, "toy", **fields)
    assert "120,000 trials planned" in refused(["spec", "check", str(path)])
    default = parse_spec(path.read_text())
    spec = parse_spec(
        json.dumps({**json.loads(path.read_text()), "limits": {"max_trials": 120_000}})
    )
    assert spec.limits.max_trials == 120_000
    assert spec.spec_hash == default.spec_hash  # it changes no trial
    assert json.loads(spec.canonical_text())["limits"] == {"max_trials": 120_000}
    assert "limits" not in json.loads(default.canonical_text())  # the text stored before


def test_resume_of_a_stored_study_beyond_the_limit_writes_nothing(tmp_path: Path) -> None:
    """A study stored before the limit existed: resume counts it, refuses, and leaves it."""
    url = f"sqlite:///{tmp_path / 'results.db'}"
    spec = parse_spec(
        write(tmp_path, "toy", arms={"random": {"n": 300_000}}, seeds=[0]).read_text()
    )
    engine = open_engine(url)
    record = StudyRecord(
        name=spec.study,
        spec_text=spec.canonical_text(),
        spec_hash=spec.spec_hash,
        problem="toy",
        task_names=["task0", "task1"],
        objective_name="normalized_loss",
        objective_direction="min",
        task_metrics=None,
        planned=None,
    )
    ResultsWriter(engine).get_or_create_study(record)
    line = refused(["resume", spec.study, "--db", url])
    assert line == (
        "error: study reliability: 300,000 trials planned (1 seed(s) × 300,000 trials each), "
        "more than limits.max_trials (100,000): shrink the spec, or set limits: "
        "{max_trials: N} (at most 1,000,000) to run it deliberately"
    )
    study = queries.find_study(engine, spec.study)
    assert study.status == "created" and queries.trials(engine, study=study.id).empty


PEAK = """
import sys
from gradsweep.trainers import Budget, StaticBalancer, train
from gradsweep.trainers.packed.loop import train_packed
from tests.trainers.user_problem import make_problem

class Stop(Exception):
    pass

seen = []

def stop(_record):
    seen.append(_record)
    if len(seen) >= 3:  # the untrained network, then two evaluations: 40 steps
        raise Stop

steps, packed = int(sys.argv[1]), sys.argv[2] == "packed"
budget = Budget(steps=steps, eval_every=20, trace_every=10)
try:
    if packed:
        members = [StaticBalancer([1.0, 1.0]), StaticBalancer([0.5, 1.5])]
        train_packed(make_problem(2), members, budget, on_round=stop, device="cpu")
    else:
        train(make_problem(2), StaticBalancer([1.0, 1.0]), budget, on_epoch=stop, device="cpu")
except Stop:
    pass
status = open("/proc/self/status").read().split("VmHWM:")[1].split()[0]
print(int(status) // 1024)
"""


def peak_mib(steps: int, loop: str) -> int:
    """The peak resident memory of a child that trains ``steps``'s first 40 steps."""
    done = subprocess.run(
        [sys.executable, "-c", PEAK, str(steps), loop],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return int(done.stdout.strip())


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads /proc (Linux)")
@pytest.mark.parametrize("loop", ["single", "packed"])
def test_a_trials_memory_does_not_grow_with_its_budget(loop: str) -> None:
    """10^8 steps once allocated 10^8 × T floats before the first step (0.8 GB here, 1.6 GB
    packed); the trace now grows with the points recorded, so the peak is the small
    budget's."""
    small, huge = peak_mib(100, loop), peak_mib(10**8, loop)
    assert huge - small < 64, (small, huge)
