"""benchmarks/balancer_overhead.py runs (a smoke run, quick) with torch, numpy,
scikit-learn and torchjd alone, writes nothing when told, and computes its verdicts."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

import benchmarks._results as results_file
from benchmarks.balancer_overhead import (
    AT_Z,
    EQUAL,
    GRAMIAN,
    LOSS,
    Column,
    ColumnResult,
    Health,
    Settings,
    Variant,
    section_body,
    variants,
)
from gradsweep.trainers.balancers.catalog import built_in

ROOT = Path(__file__).resolve().parents[2]
# what a GPU machine with torch, numpy, scikit-learn and torchjd alone does not have
SERVICE_PACKAGES = ("ray", "sqlalchemy", "optuna", "pydantic", "alembic", "psycopg", "dash")

QUICK_RUN = f"""
import importlib.abc, sys
from pathlib import Path

class Refuse(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in {SERVICE_PACKAGES!r}:
            raise ImportError(f"refused: {{name}}")
        return None

sys.meta_path.insert(0, Refuse())
import benchmarks._results
from benchmarks import balancer_overhead

benchmarks._results.RESULTS = Path(sys.argv[1])
balancer_overhead.main(["--quick", "--no-write", "--problems", "toy", "--tasks", "2"])
"""


def test_a_quick_run_times_every_balancer_and_writes_nothing(tmp_path: Path) -> None:
    results = tmp_path / "RESULTS.md"
    done = subprocess.run(
        [sys.executable, "-c", QUICK_RUN, str(results)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "refused:" not in done.stdout + done.stderr  # nothing reached for a service
    assert not results.exists()
    table = [line for line in done.stdout.splitlines() if line.startswith("| ")]
    labels = {line.split(" | ")[0].removeprefix("| ") for line in table}
    assert table[0].startswith("| balancer | kind | toy T=2 |")
    for row in variants():
        if row.label != EQUAL and row.skipped is None:
            assert row.label in labels, row.label
    assert "inverse_norm (example plug-in)" in labels
    assert "mgda (at z)" in labels


def test_every_balancer_is_a_row_and_each_gramian_one_also_at_z() -> None:
    rows = {row.label: row for row in variants()}
    assert next(iter(rows)) == EQUAL
    for name in built_in():
        label = EQUAL if name == "static" else name
        assert label in rows
        if rows[label].kind == GRAMIAN:
            assert rows[f"{label} (at z)"].params["gradients"] == "representation"
    assert "mgda (at z)" in rows and rows["mgda (at z)"].kind == AT_Z
    assert rows["uncertainty"].kind == LOSS and rows["gradnorm"].kind != LOSS


def test_the_verdicts_are_computed_from_the_figures(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rows = [
        Variant(EQUAL, "static", {}, "static"),
        Variant("cheap", "cheap", {}, LOSS),
        Variant("costly", "costly", {}, LOSS),
        Variant("solver", "solver", {}, GRAMIAN),
        Variant("solver (at z)", "solver", {"gradients": "representation"}, AT_Z),
        Variant("broken (at z)", "broken", {}, AT_Z),
        Variant("absent", "absent", {}, LOSS, "absent needs qp, not installed here"),
    ]
    column = Column("T=10", "toy", 10)
    result = ColumnResult(
        equal_seconds=[0.002, 0.003],
        ratios={"cheap": [1.1, 1.2, 1.3], "costly": [1.4], "solver": [5.0], "solver (at z)": [1.9]},
        errors={"broken (at z)": "at step 3: ValueError: no"},
        health={"solver": Health(10, 2, False)},
    )
    settings = Settings(torch.device("cpu"), 1, 5, 2, 3, 2, 2)
    body = section_body(settings, [column], {"T=10": result}, rows, ("1", "2"), "python -m x")
    assert "| equal: step time | static | 2.500 ms |" in body
    assert "| cheap | loss | 1.20× (1.10–1.30) |" in body
    assert "| solver | Gramian (exact) | 5.00× ⚠ |" in body
    assert "cheap / equal at T=10, toy (loss-based): target ≤ 1.3×, measured 1.2× — **met**" in body
    assert (
        "costly / equal at T=10, toy (loss-based): target ≤ 1.3×, measured 1.4× — **not met**"
        in (body)
    )
    assert (
        "solver (at z) / equal at T=10, toy (Gramian at z): target ≤ 2×, measured 1.9× — **met**"
        in (body)
    )
    assert (
        "broken (at z) / equal at T=10, toy (Gramian at z): target ≤ 2×, the balancer raised"
        in (body)
    )
    assert "- absent: absent needs qp, not installed here" in body
    assert "non-finite weights after 2 of 10 steps" in body
    monkeypatch.setattr(results_file, "RESULTS", tmp_path / "RESULTS.md")
    results_file.update_section("Adaptive balancers: step cost (CPU)", body)
    assert "## Adaptive balancers: step cost (CPU)" in (tmp_path / "RESULTS.md").read_text()
