"""``gradsweep query`` and ``export`` on the hand-built study of test_compare."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from gradsweep.cli import app
from tests.test_compare import TRIALS, build

TRIAL_KEYS = {
    "study",
    "key",
    "arm",
    "balancer",
    "seed",
    "status",
    "weights",
    "alpha",
    "objective",
    "weights_mean",
    "weights_final",
    "train_seconds",
    "node",
    "error",
}


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_trials_json_has_the_documented_keys(db_url: str) -> None:
    build(db_url)
    code, out, err = run("query", "trials", "--study", "known", "--format", "json", "--db", db_url)
    assert code == 0, err
    records = json.loads(out)
    assert len(records) == len(TRIALS) and TRIAL_KEYS <= set(records[0])
    gradnorm = next(r for r in records if r["key"] == "gradnorm/a=0.12/s0")
    assert gradnorm["weights"] is None and gradnorm["alpha"] == 0.12
    grid = next(r for r in records if r["key"] == "grid/a/s0")
    assert grid["weights"] == [1.5, 0.5] and grid["alpha"] is None


@pytest.mark.parametrize("kind", ["studies", "trials", "curves", "weights"])
@pytest.mark.parametrize("fmt", ["table", "csv", "json"])
def test_every_kind_in_every_format(sqlite_url: str, kind: str, fmt: str) -> None:
    build(sqlite_url)
    code, out, err = run("query", kind, "--study", "known", "--format", fmt, "--db", sqlite_url)
    assert code == 0, err
    if fmt == "json":
        assert isinstance(json.loads(out), list)
    elif fmt == "csv":
        frame = pd.read_csv(io.StringIO(out)) if out.strip() else pd.DataFrame()
        if kind == "trials":
            assert len(frame) == len(TRIALS)
    else:
        assert out.strip()


def test_filters(sqlite_url: str) -> None:
    build(sqlite_url)
    code, out, _ = run(
        "query",
        "trials",
        "--study",
        "known",
        "--arm",
        "grid",
        "--format",
        "json",
        "--db",
        sqlite_url,
    )
    assert code == 0 and {r["arm"] for r in json.loads(out)} == {"grid"}
    code, out, _ = run(
        "query", "trials", "--status", "failed", "--format", "json", "--db", sqlite_url
    )
    assert code == 0 and json.loads(out) == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["query", "nonsense"], "unknown query 'nonsense'"),
        (["query", "curves"], "query curves needs --study"),
        (["query", "trials", "--study", "nope"], "unknown study 'nope'"),
        (["query", "trials", "--format", "xml"], "--format: expected table, csv or json"),
        (["export", "nope", "--out", "x"], "unknown study 'nope'"),
    ],
)
def test_mistakes_exit_2(sqlite_url: str, args: list[str], message: str) -> None:
    build(sqlite_url)
    code, _, err = run(*args, "--db", sqlite_url)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_export(sqlite_url: str, tmp_path: Path, fmt: str) -> None:
    build(sqlite_url)
    code, out, err = run(
        "export", "known", "--out", str(tmp_path / "out"), "--format", fmt, "--db", sqlite_url
    )
    assert code == 0, err
    paths = [Path(line) for line in out.split()]
    assert sorted(p.name for p in paths) == sorted(
        f"known-{kind}.{fmt}" for kind in ("trials", "curves", "weights")
    )
    trials = next(p for p in paths if "trials" in p.name)
    frame = pd.read_parquet(trials) if fmt == "parquet" else pd.read_csv(trials)
    assert len(frame) == len(TRIALS)


def test_query_studies_counts_and_scores_as_status_does(sqlite_url: str) -> None:
    """One study, read by `status` and by `query studies`: the same planned count (the
    column `planned`, beside `trials`, the rows stored) and the same static optimum."""
    build(sqlite_url)
    code, out, err = run("query", "studies", "--format", "json", "--db", sqlite_url)
    assert code == 0, err
    (row,) = json.loads(out)
    code, out, err = run("status", "known", "--format", "json", "--db", sqlite_url)
    status = json.loads(out)
    shared = ("planned", "completed", "failed", "running", "objective", "static_optimum")
    assert {k: row[k] for k in shared} == {k: status[k] for k in shared}
    assert row["static_optimum_weights"] == status["static_optimum_weights"]
    assert row["selected_on"] == status["selected_on"]
    columns = list(row)
    assert columns[columns.index("planned") + 1] == "trials"
