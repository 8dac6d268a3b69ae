"""Every command with generated arguments: exit 0 or 2 (train: 1 for a failed trial), one
line on failure, never a traceback."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.dashboards.study import build_three_task_study
from tests.fuzz_helpers import assert_kept_its_promise, run_cli

noise = st.one_of(
    st.text(max_size=12),
    st.integers(-(10**9), 10**9).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(str),
    st.sampled_from(["", "-", "--", "three", "nope", "1", "0", "-1", "json", "csv", "table",
                     "parquet", "toy", "digits", "nyuv2", "gradnorm", "static", "a,b", "1,1",
                     "/dev/null", "/tmp", "x=1", "=", "cuda", "cpu", "grid", "completed"]),
)  # fmt: skip
COMMANDS: dict[str, list[str]] = {
    "status": ["--format"],
    "query": ["--study", "--arm", "--status", "--format"],
    "compare": ["--format"],
    "export": ["--out", "--format", "--optuna"],
    "report": ["--out"],
    "db upgrade": [],
    "spec check": ["--max-concurrent", "--name", "--pack"],
    "spec schema": [],
    "launch": ["--ray-address", "--max-concurrent", "--name", "--pack", "--quiet"],
    "resume": ["--ray-address", "--max-concurrent", "--pack", "--quiet"],
    "train": ["--problem", "--tasks", "--sigmas", "--balancer", "--weights", "--alpha", "--lr",
              "--initial-loss", "--balancer-param", "--seed", "--param", "--device", "--json"],
}  # fmt: skip
POSITIONAL = {"query": ["studies", "trials", "curves", "weights"]}


@pytest.fixture(scope="module")
def database() -> Iterator[str]:
    """The study, in a folder that is also the working directory: what export and report
    write to generated paths lands there, not in the checkout."""
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{Path(folder) / 'fuzz.db'}"
        build_three_task_study(url)
        before = os.getcwd()
        os.chdir(folder)
        try:
            yield url
        finally:
            os.chdir(before)


@st.composite
def command_lines(draw: st.DrawFn) -> list[str]:
    command = draw(st.sampled_from(sorted(COMMANDS)))
    argv = command.split()
    known = [*POSITIONAL.get(command, []), "three"]
    for _ in range(draw(st.integers(0, 4))):
        kind = draw(st.sampled_from(["option", "value", "positional"]))
        if kind == "option" and COMMANDS[command]:
            argv.append(draw(st.sampled_from([*COMMANDS[command], "--help", "--nope"])))
        if kind != "positional" or draw(st.booleans()):
            argv.append(draw(noise))
        else:
            argv.append(draw(st.sampled_from(known)))
    return argv


@settings(
    max_examples=250,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(argv=command_lines())
def test_no_command_line_produces_a_traceback(argv: list[str], database: str) -> None:
    if argv[0] == "train":  # a real trial: kept tiny, whatever else was drawn
        argv += ["--steps", "2", "--param", "train_samples=60", "--param", "test_samples=20"]
    if argv[0] in ("launch", "resume"):
        argv += ["--ray-address", "127.0.0.1:1"]  # never a real study on a real Ray
    argv += ["--db", database]
    allowed = (0, 1, 2) if argv[0] == "train" else (0, 2)  # train: 1 = the trial failed
    ran = run_cli(argv)
    assert_kept_its_promise(ran, argv, allowed)
    assert "internal error" not in ran.err, (argv, ran.err)
