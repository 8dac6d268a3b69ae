"""The HTML report from a real database (the hand-built study of test_compare)."""

from __future__ import annotations

import re
from pathlib import Path

from typer.testing import CliRunner

from gradsweep.cli import app
from gradsweep.results.answer import compare_study
from gradsweep.storage.engine import open_engine
from tests.test_compare import build


def test_report_is_self_contained_and_carries_the_comparison(
    sqlite_url: str, tmp_path: Path
) -> None:
    build(sqlite_url)
    out = tmp_path / "report.html"
    run = CliRunner().invoke(app, ["report", "known", "--out", str(out), "--db", sqlite_url])
    assert run.exit_code == 0, run.stderr
    text = out.read_text()
    assert not re.search(r"<script[^>]+src=", text)  # plotly.js is inline, nothing fetched
    # the comparison as an HTML table, the simplex, distance and best-so-far figures; no
    # weight traces, per-task values or curves in this study: a line each, no empty axes
    assert "Plotly.newPlot" in text and text.count("<section>") == 4
    assert text.count("<table class='comparison'>") == 1
    assert "Not drawn yet: the weights w_i(t)" in text
    assert "Not drawn yet: the Pareto view" in text
    comparison = compare_study(open_engine(sqlite_url), "known")
    assert f"{comparison.static_best.objective:.4f}" in text
    assert f"{comparison.adaptive[0].rank_percentile:.1f}" in text


def test_report_mistakes(sqlite_url: str, tmp_path: Path) -> None:
    build(sqlite_url)
    run = CliRunner().invoke(
        app, ["report", "nope", "--out", str(tmp_path / "r.html"), "--db", sqlite_url]
    )
    assert run.exit_code == 2 and "unknown study 'nope'" in run.stderr
    run = CliRunner().invoke(
        app, ["report", "known", "--out", "/no/such/dir/r.html", "--db", sqlite_url]
    )
    assert run.exit_code == 2 and "does not exist" in run.stderr
