"""Docs that cannot drift: every code block of README.md and docs/*.md, and the command
lines in examples/, checked against the code as it is (see tests/docs_blocks.py for what
each kind of block gets)."""

from __future__ import annotations

import contextlib
import io
import re
import shlex
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import typer
import typer.main
import yaml
from sqlalchemy import text

from gradsweep.cli import click_command, run
from gradsweep.search.launch import LaunchOptions, launch
from gradsweep.spec import load_spec, parse_spec
from gradsweep.storage.engine import open_engine
from tests.docs_blocks import KINDS, ROOT, Block, all_blocks, commands

BLOCKS = all_blocks()


def of_kind(*kinds: str) -> list[Any]:
    return [pytest.param(b, id=b.where) for b in BLOCKS if b.kind in kinds]


def test_every_block_says_how_it_is_checked() -> None:
    unmarked = [b.where for b in BLOCKS if b.kind not in KINDS]
    assert unmarked == [], f"blocks without a <!-- docs: KIND --> marker: {unmarked}"
    assert len(BLOCKS) >= 30


# -- a small real demo study, in a folder the commands run in ---------------------------


@pytest.fixture(scope="module")
def demo_folder(tmp_path_factory: pytest.TempPathFactory, ray_session: None) -> Path:
    """``demo.db`` holding the demo's study as `make demo` leaves it, its spec shrunk to
    seconds (fewer steps and samples; no Optuna or retrain phase, which no doc example
    reads)."""
    folder = tmp_path_factory.mktemp("docs")
    spec = yaml.safe_load((ROOT / "configs" / "toy-demo.yaml").read_text())
    spec["problem"]["params"].update(train_samples=200, test_samples=50, batch_size=50)
    spec["budget"]["steps"] = 20
    del spec["arms"]["optuna"], spec["arms"]["retrain"]
    outcome = launch(
        parse_spec(yaml.safe_dump(spec)),
        open_engine(f"sqlite:///{folder / 'demo.db'}"),
        LaunchOptions(quiet=True),
    )
    assert outcome.failed == 0 and not outcome.interrupted
    return folder


def run_gradsweep(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = run(argv)
    return code, out.getvalue(), err.getvalue()


@pytest.mark.parametrize("block", of_kind("run"))
def test_commands_run(block: Block, demo_folder: Path) -> None:
    with contextlib.chdir(demo_folder):
        for line in commands(block.text):
            argv = shlex.split(line)
            if argv[0] == "gradsweep":
                code, out, err = run_gradsweep(argv[1:])
            else:
                done = subprocess.run(["bash", "-c", line], capture_output=True, text=True)
                code, out, err = done.returncode, done.stdout, done.stderr
            assert code == block.exit_code, (block.where, line, out[-2000:], err[-2000:])
            assert "Traceback" not in err, (block.where, line, err)


@pytest.mark.parametrize("block", of_kind("python"))
def test_python_runs(block: Block, demo_folder: Path) -> None:
    with contextlib.chdir(demo_folder):
        exec(compile(block.text, block.where, "exec"), {"__name__": "docs"})  # noqa: S102


@pytest.mark.parametrize("block", of_kind("sql"))
def test_sql_runs_on_the_demo_database(block: Block, demo_folder: Path) -> None:
    engine = open_engine(f"sqlite:///{demo_folder / 'demo.db'}", read_only=True)
    statements = [s for s in block.text.split(";") if s.strip() and not _only_comments(s)]
    with engine.connect() as conn:
        for statement in statements:
            rows = conn.execute(text(statement)).all()
            assert rows, (block.where, statement)  # each example finds something in the demo


def _only_comments(statement: str) -> bool:
    return all(not line.strip() or line.strip().startswith("--") for line in statement.splitlines())


# -- verdict blocks: a small study run again, its verdicts those of the block ------------

COMPUTE_CLAIM = "C6 "  # measures wall time: checked by its outcome only
DECIMAL = re.compile(r"[-+]?\d+\.\d+(?:e[-+]?\d+)?")
ROBUSTNESS = re.compile(r"\); (not robust|robustness not checked|robust)\b")
# A re-run on another CPU (AVX-512 against AVX2 kernels) ends a 300-step toy run a few
# percent away. A robust verdict must come back with its outcome and its figures within
# this relative tolerance (or 0.005); a verdict its own line calls not robust (it flips
# with the budget, a sub-grid or a seed) must come back not robust, its outcome free.
RELATIVE, ABSOLUTE = 0.15, 0.005


def verdict_lines(lines: list[str]) -> list[str]:
    """The lines to compare: the compute claim's cut to its outcome; a claim's robustness
    clause to whether it is robust; a claim that is not robust to its title."""
    kept = []
    for line in lines:
        found = ROBUSTNESS.search(line)
        if line.startswith(COMPUTE_CLAIM):
            line = line.split(" (", 1)[0]
        elif found is not None and found.group(1) == "not robust":
            line = f"{line.split(': ', 1)[0]}: … not robust"
        elif found is not None:
            line = line[: found.end()]
        kept.append(line)
    return kept


def same_verdicts(printed: list[str], documented: list[str]) -> bool:
    """The same lines, words and counts exactly, decimal figures within the tolerance."""
    if len(printed) != len(documented):
        return False
    for ours, theirs in zip(printed, documented, strict=True):
        if DECIMAL.sub("#", ours) != DECIMAL.sub("#", theirs):
            return False
        for a, b in zip(DECIMAL.findall(ours), DECIMAL.findall(theirs), strict=True):
            if abs(float(a) - float(b)) > max(ABSOLUTE, RELATIVE * abs(float(b))):
                return False
    return True


@pytest.mark.parametrize("block", of_kind("verdicts"))
def test_verdict_blocks_are_what_a_rerun_prints(
    block: Block, tmp_path: Path, ray_session: None
) -> None:
    commands_run = [line[2:] for line in block.text.splitlines() if line.startswith("$ ")]
    printed = [line for line in block.text.splitlines() if line and not line.startswith("$ ")]
    launch_line, compare_line = (shlex.split(line) for line in commands_run)
    assert launch_line[:2] == ["gradsweep", "launch"] and compare_line[:2] == [
        "gradsweep",
        "compare",
    ]
    assert "--format" in compare_line and "verdicts" in compare_line
    url = f"sqlite:///{tmp_path / 'study.db'}"
    outcome = launch(load_spec(ROOT / launch_line[2]), open_engine(url), LaunchOptions(quiet=True))
    assert outcome.failed == 0 and not outcome.interrupted
    argv = [*compare_line[1 : compare_line.index("--db")], "--db", url]
    code, out, err = run_gradsweep(argv)
    assert code == 0, err
    rerun, documented = verdict_lines(out.strip().splitlines()), verdict_lines(printed)
    assert same_verdicts(rerun, documented), (block.where, rerun, documented)


# -- commands that cannot run here: parsed by the real command line ---------------------


def parse_command(argv: list[str]) -> None:
    """Resolve the (sub)command and parse its options and arguments as the real command line
    does (types, choices, unknown options), without running it."""
    command, args = click_command(), list(argv)
    context = typer.Context(command, info_name="gradsweep")
    while hasattr(command, "commands"):
        name = args.pop(0)
        assert name in command.commands, f"no command {name!r} in {' '.join(argv)}"
        command = command.commands[name]
        if hasattr(command, "commands"):
            context = typer.Context(command, info_name=name, parent=context)
    command.make_context(name, args, parent=context)


def gradsweep_lines(block_text: str) -> list[list[str]]:
    found = []
    for line in commands(block_text):
        for part in line.split("&&"):
            argv = shlex.split(part)
            if argv and argv[0] == "gradsweep":
                found.append(argv[1:])
    return found


@pytest.mark.parametrize("block", of_kind("parse"))
def test_illustrative_commands_parse(block: Block) -> None:
    for line in commands(block.text):
        for part in line.split("&&"):
            argv = shlex.split(part)
            if argv and argv[0] == "gradsweep":
                parse_command(argv[1:])
            else:
                check = subprocess.run(["bash", "-n", "-c", part], capture_output=True, text=True)
                assert check.returncode == 0, (block.where, part, check.stderr)


def example_command_lines() -> list[Any]:
    """The command lines in the examples' comments (``#   gradsweep …``)."""
    found = []
    for path in sorted((ROOT / "examples").glob("*")):
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            body = line.lstrip("# ").rstrip()
            if line.lstrip().startswith("#") and body.startswith("gradsweep "):
                found.append(pytest.param(body, id=f"{path.name}:{number}"))
    return found


@pytest.mark.parametrize("line", example_command_lines())
def test_example_command_lines_parse_and_name_their_database(line: str) -> None:
    for argv in gradsweep_lines(line):
        parse_command(argv)
        assert "--db" in argv, f"{line}: without --db, {argv[0]} reads gradsweep.db"


def test_the_examples_have_command_lines() -> None:
    assert len(example_command_lines()) >= 1


# -- synopses, specs, fragments and diagrams --------------------------------------------


def synopsis_commands(block_text: str) -> list[tuple[list[str], set[str]]]:
    """(command path, options shown) of each ``gradsweep …`` line and its continuations."""
    entries: list[tuple[list[str], set[str]]] = []
    for raw in block_text.splitlines():
        line = raw.split("  #")[0]
        if line.startswith("gradsweep "):
            words = line.split()[1:]
            path = []
            for word in words:
                if not re.fullmatch(r"[a-z][a-z-]*", word):
                    break
                path.append(word)
            entries.append((path, set(re.findall(r"--[a-z][a-z-]*", line))))
        elif line.strip() and entries:
            entries[-1][1].update(re.findall(r"--[a-z][a-z-]*", line))
    return entries


@pytest.mark.parametrize("block", of_kind("usage"))
def test_synopses_name_real_commands_and_options(block: Block) -> None:
    entries = synopsis_commands(block.text)
    assert entries, block.where
    for path, options in entries:
        command = click_command()
        words = list(path)
        while hasattr(command, "commands"):
            name = words.pop(0)
            assert name in command.commands, (block.where, path)
            command = command.commands[name]
        known = {opt for param in command.params for opt in getattr(param, "opts", ())}
        assert options <= known, (block.where, path, options - known)


@pytest.mark.parametrize("block", of_kind("spec"))
def test_whole_specs_are_valid(block: Block, tmp_path: Path) -> None:
    path = tmp_path / "spec.yaml"
    path.write_text(block.text)
    assert load_spec(path).study


@pytest.mark.parametrize("block", of_kind("yaml"))
def test_yaml_parses(block: Block) -> None:
    assert yaml.safe_load(block.text) is not None


@pytest.mark.parametrize("block", of_kind("fragment"))
def test_python_fragments_compile(block: Block) -> None:
    compile(textwrap.dedent(block.text), block.where, "exec")


@pytest.mark.parametrize("block", of_kind("diagram"))
def test_diagrams_name_what_exists(block: Block) -> None:
    package = ROOT / "gradsweep"
    names = set(re.findall(r"\b([\w/]+\.py)\b", block.text))
    folders = set(re.findall(r"\b(\w+)/", block.text))
    assert names or folders, block.where
    for name in names:
        assert list(package.rglob(Path(name).name)), (block.where, name)
    for folder in folders:
        assert (package / folder).is_dir(), (block.where, folder)


# -- error lines, each reproduced from its input ----------------------------------------

BASE_SPEC = """\
study: s
problem: {name: toy, params: {tasks: 3, sigmas: [1, 10, 100], train_samples: 200,
          test_samples: 50, batch_size: 50}}
budget: {steps: 10}
arms:
  static: {weights: [[1, 1, 1]]}
  gradnorm: {alphas: [0.12]}
"""


def spec_error(content: str | bytes | None) -> Callable[[Path], str]:
    """What `spec check` says of a spec file with this content (None: no file)."""

    def produce(folder: Path) -> str:
        path = folder / "spec.yaml"
        if isinstance(content, bytes):
            path.write_bytes(content)
        elif content is not None:
            path.write_text(content)
        code, _, err = run_gradsweep(["spec", "check", str(path)])
        assert code == 2, err
        return err.strip().removeprefix("error: ").replace(str(path), "spec.yaml")

    return produce


def problem_error(factory: str) -> Callable[[Path], str]:
    """What `spec check` says of a spec naming a broken problem of the test suite."""

    def produce(folder: Path) -> str:
        path = folder / "spec.yaml"
        path.write_text(
            f"study: s\nproblem: tests.trainers.broken_problems:{factory}\n"
            "budget: {steps: 10}\narms: {static: {weights: [[1, 1, 1]]}}\n"
        )
        code, _, err = run_gradsweep(["spec", "check", str(path)])
        assert code == 2, err
        return err.strip().replace(str(ROOT) + "/", "")

    return produce


DEEP = "".join(f"{'  ' * i}k{i}:\n" for i in range(40)) + "  " * 40 + "v: 1\n"
LAUGHS = 'a: &a ["x","x","x","x","x","x","x","x","x","x"]\n' + "".join(
    f"{b}: &{b} [{','.join([f'*{a}'] * 10)}]\n"
    for a, b in zip("abcdefgh", "bcdefghi", strict=False)
)
DOCUMENTED_ERRORS: dict[str, Callable[[Path], str]] = {
    "spec.yaml: arms.grid.resolution: must be >= 1 (got -2)": spec_error(
        BASE_SPEC + "  grid: {resolution: -2}\n"
    ),
    "spec.yaml: arms.grid.resolutoin: unknown key": spec_error(
        BASE_SPEC + "  grid: {resolution: 2, resolutoin: 4}\n"
    ),
    "spec.yaml: arms.gradnorm.alphas[1]: alpha must be >= 0 (got -1.0)": spec_error(
        BASE_SPEC.replace("alphas: [0.12]", "alphas: [0.12, -1]")
    ),
    "spec.yaml: arms.static.weights[0]: 2 weights given for 3 tasks": spec_error(
        BASE_SPEC.replace("[[1, 1, 1]]", "[[1, 1]]")
    ),
    "spec.yaml: arms.retrain.alpha: 0.5 is not one of arms.gradnorm.alphas [0.12]": spec_error(
        BASE_SPEC + "  retrain: {alpha: 0.5}\n"
    ),
    "spec.yaml: arms.grid: listed twice (lines 8 and 13)": spec_error(
        BASE_SPEC + "  grid: {resolution: 2}\n" + "\n" * 4 + "  grid: {resolution: 3}\n"
    ),
    "spec.yaml: problem.name: unknown problem 'nope': use one of digits, multimnist, nyuv2, "
    "toy or 'package.module:callable'": spec_error(
        BASE_SPEC.replace(
            "{name: toy, params: {tasks: 3, sigmas: [1, 10, 100], train_samples: 200,\n"
            "          test_samples: 50, batch_size: 50}}",
            "nope",
        )
    ),  # fmt: skip
    "spec.yaml: problem.params: toy: 2 sigmas given for 3 tasks": spec_error(
        BASE_SPEC.replace("sigmas: [1, 10, 100]", "sigmas: [1, 10]")
    ),
    "spec.yaml: invalid YAML at line 3, column 1: did not find expected ',' or ']'": spec_error(
        "study: s\nseeds: [0, 1\n{steps: 10}\n"
    ),
    "spec.yaml: cannot read: No such file or directory": spec_error(None),
    "spec.yaml: larger than a spec can be (at most 128 KiB)": spec_error(
        "# " + "x" * 131_072 + "\n" + BASE_SPEC
    ),
    "spec.yaml: expands to more than 100,000 values (aliases of aliases?)": spec_error(LAUGHS),
    "spec.yaml: nested too deeply (at most 32 levels)": spec_error(DEEP),
    "error: problem two-losses: task_losses returned 2 losses for 3 tasks (task0, task1, task2)": (
        problem_error("make_two_losses")
    ),
    "error: problem ignores-shared: build_model/task_losses: task task1: no gradient at the "
    "shared layer trunk.6.weight (zero or none): the head or the loss does not use the "
    "trunk's output": problem_error("make_ignores_shared_features"),
    "error: problem unlabelled-test: task_losses: task task2: the initial test loss is 0, and "
    "every trial's normalised loss divides each task's test loss by it": problem_error(
        "make_unlabelled_test"
    ),
    "error: problem missing-metric: metric_accumulator().compute: task task0: no 'mse', its "
    "primary metric (got mae)": problem_error("make_missing_metric"),
    "error: problem raising-loss: task_losses raised RuntimeError: mat1 and mat2 shapes cannot "
    "be multiplied (4x100 and 4x100) (tests/trainers/broken_problems.py:112 in task_losses)": (
        problem_error("make_raising_loss")
    ),
}


def error_lines() -> list[Any]:
    return [
        pytest.param(line, id=f"{block.where}: {line[:60]}")
        for block in BLOCKS
        if block.kind == "errors"
        for line in block.text.splitlines()
        if line.strip()
    ]


@pytest.mark.parametrize("line", error_lines())
def test_documented_errors_are_what_the_code_says(line: str, tmp_path: Path) -> None:
    assert line in DOCUMENTED_ERRORS, f"a documented error with no input in this test: {line}"
    assert DOCUMENTED_ERRORS[line](tmp_path) == line


def test_results_md_writes_no_verdict_by_hand() -> None:
    """docs/results.md's verdict words come from gradsweep (its verdict blocks and the
    rules that define them), never from prose that no code checks."""
    section, prose = "", []
    inside = False
    for number, line in enumerate((ROOT / "docs" / "results.md").read_text().splitlines(), 1):
        if line.startswith("```"):
            inside = not inside
        elif line.startswith("## "):
            section = line
        elif not inside and section != "## Verdicts, computed":
            if re.search(r"\b(confirmed|refuted|inconclusive)\b", line, re.IGNORECASE):
                prose.append(f"{number}: {line}")
    assert prose == []


def test_the_notebook_example_runs_as_a_script(demo_folder: Path) -> None:
    script = ROOT / "examples" / "notebook.py"
    url = f"sqlite:///{demo_folder / 'demo.db'}"
    done = subprocess.run(
        [sys.executable, str(script), url], capture_output=True, text=True, cwd=demo_folder
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "static optimum" in done.stdout and "C1 " in done.stdout
