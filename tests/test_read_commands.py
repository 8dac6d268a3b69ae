"""The read commands stay light: none imports torch, Ray, Optuna, scipy, Dash or Alembic (a
second each on import); their speed is measured in benchmarks/read_commands.py."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.dashboards.study import build_three_task_study

HEAVY = ("torch", "ray", "optuna", "scipy", "dash", "alembic")


def heavy_imports(argv: list[str], url: str) -> tuple[int, list[str]]:
    """A command's exit code and the heavy packages it imported, run in a fresh process."""
    probe = (
        "import contextlib, io, sys\n"
        "from gradsweep.cli import run\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        f"    code = run({[*argv, '--db', url]!r})\n"
        f"print(code, *[m for m in {HEAVY!r} if m in sys.modules])\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    code, *imported = done.stdout.split()
    return int(code), imported


@pytest.mark.parametrize(
    "argv",
    [["status"], ["status", "three"], ["query", "trials", "--study", "three"],
     ["compare", "three"], ["compare", "three", "--format", "json"]],
    ids=lambda argv: " ".join(argv),
)  # fmt: skip
def test_a_read_command_imports_nothing_heavy(argv: list[str], tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'r.db'}"
    build_three_task_study(url)
    assert heavy_imports(argv, url) == (0, [])
