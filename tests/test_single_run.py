"""``gradsweep train``'s table: each task's weights, losses and test metrics."""

from __future__ import annotations

import re

from typer.testing import CliRunner

from gradsweep.cli import app


def test_train_table_shows_each_tasks_test_metrics() -> None:
    run = CliRunner().invoke(
        app,
        ["train", "--problem", "digits", "--steps", "5", "--param", "train_samples=200"]
        + ["--param", "test_samples=100", "--param", "batch_size=50"],
    )
    assert run.exit_code == 0, run.stderr
    out = run.stdout
    assert "test metrics" in out
    rows = {line.split()[1]: line for line in out.splitlines() if line.startswith("│")}
    assert set(rows) == {"left", "right", "reconstruct"}
    number = r"-?[\d.]+(e[-+]\d+)?"
    for task in ("left", "right"):
        assert re.search(rf"accuracy={number}", rows[task])
    assert re.search(rf"mse={number}", rows["reconstruct"])
