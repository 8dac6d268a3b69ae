"""What ``gradsweep query`` and ``gradsweep export`` read: one DataFrame per kind of result."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import pandas as pd
from sqlalchemy import Engine

from gradsweep.errors import GradsweepError
from gradsweep.outfiles import (
    FileKind,
    check_folder,
    check_target,
    database_files,
    file_head,
    replace_atomically,
)
from gradsweep.output import csv_header, write_csv
from gradsweep.results import readers
from gradsweep.results.study import TRIAL_COLUMNS, belongs_to, load_results
from gradsweep.results.summary import study_list

KINDS = ("studies", "trials", "curves", "weights")
# what `query trials` shows: the results layer's columns, a static trial's weights as
# `weights`, without the bookkeeping columns
TRIAL_FIELDS = [
    "weights" if column == "static_weights" else column
    for column in TRIAL_COLUMNS
    if column not in ("attempts", "started_at", "finished_at", "params")
]


def trial_frame(
    engine: Engine, study: str | None, arm: str | None, status: str | None
) -> pd.DataFrame:
    """Trials with the documented columns (``weights``: a static trial's fixed weights;
    ``objective``: its study's objective, ``normalized_loss``: the stored per-trial one).

    Each study scores its own trials (a Δm% study against its equal-weight trials)."""
    names = [study] if study is not None else readers.studies(engine)["name"].tolist()
    frames = [load_results(engine, name).trials for name in names]
    frame = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=TRIAL_COLUMNS)
    if arm is not None:
        frame = frame[belongs_to(frame, arm)]
    if status is not None:
        frame = frame[frame["status"] == status]
    return frame.rename(columns={"static_weights": "weights"})[TRIAL_FIELDS]


def study_frame(engine: Engine) -> pd.DataFrame:
    """Every study with its counts (``planned``: what ``status`` counts completed against;
    ``trials``: the rows stored), its objective and its static optimum as ``status`` and
    ``compare`` choose it (the test objective of the weighting chosen on validation, and
    the split it was chosen on)."""
    frame = readers.studies(engine)
    scored = {summary.name: summary for summary in study_list(engine)}
    planned = [scored[name].planned for name in frame["name"]]  # as status counts it
    frame.insert(int(frame.columns.get_loc("trials")), "planned", planned)
    frame["objective"] = [str(scored[name].objective) for name in frame["name"]]
    frame["static_optimum"] = [scored[name].static_optimum for name in frame["name"]]
    frame["static_optimum_weights"] = [
        scored[name].static_optimum_weights for name in frame["name"]
    ]
    frame["selected_on"] = [scored[name].selected_on for name in frame["name"]]
    return frame


def query_frame(
    engine: Engine,
    kind: str,
    study: str | None = None,
    arm: str | None = None,
    status: str | None = None,
) -> pd.DataFrame:
    if kind not in KINDS:
        raise GradsweepError(f"unknown query {kind!r}: use one of {', '.join(KINDS)}")
    if kind == "studies":
        return study_frame(engine)
    if kind == "trials":
        return trial_frame(engine, study, arm, status)
    if study is None:
        raise GradsweepError(f"query {kind} needs --study")
    keys = None
    if arm is not None or status is not None:
        keys = trial_frame(engine, study, arm, status)["key"].tolist()
    if kind == "curves":
        return readers.curves(engine, study, trial_keys=keys)
    return readers.weight_traces(engine, study, trial_keys=keys)


def export_study(
    engine: Engine, study: str, out: Path, fmt: str = "parquet", force: bool = False
) -> list[Path]:
    """Write a study's trials, curves and weight traces as Parquet or CSV files, each put in
    place atomically. Refused in one line, before any file is written: an ``out`` that is
    a file (the database among them), and a file of the export that would replace the
    database, a folder, a device, or (without ``force``) a file export did not write."""
    if fmt not in ("parquet", "csv"):
        raise GradsweepError(f"--format: expected parquet or csv, got {fmt!r}")
    name = readers.study_name(engine, study)
    protected = database_files(engine)
    folder = check_folder("--out", out, protected)
    frames = {
        "trials": trial_frame(engine, name, None, None),
        "curves": readers.curves(engine, name),
        "weights": readers.weight_traces(engine, name),
    }
    paths = {kind: folder / f"{name}-{kind}.{fmt}" for kind in frames}
    targets = {
        kind: check_target("--out", paths[kind], export_kind(fmt, frame), protected, force)
        for kind, frame in frames.items()
    }
    for kind, frame in frames.items():
        replace_atomically("--out", targets[kind], partial(_write, frame, fmt))
    return list(paths.values())


def _write(frame: pd.DataFrame, fmt: str, path: Path) -> None:
    if fmt == "parquet":
        frame.to_parquet(path, index=False)
    else:
        write_csv(frame, path)


def export_kind(fmt: str, frame: pd.DataFrame) -> FileKind:
    """The file export writes for this frame, and how it knows one it wrote before: a CSV
    file whose header is the frame's, a Parquet file with the frame's columns."""
    if fmt == "csv":
        return FileKind("a CSV file gradsweep exported", partial(_is_csv_of, frame))
    return FileKind("a Parquet file gradsweep exported", partial(_is_parquet_of, frame))


def _is_csv_of(frame: pd.DataFrame, path: Path) -> bool:
    first = file_head(path).split(b"\n", 1)[0].rstrip(b"\r")
    return first.decode("utf-8", errors="replace") == csv_header(frame)


def _is_parquet_of(frame: pd.DataFrame, path: Path) -> bool:
    if file_head(path, 4) != b"PAR1":
        return False
    import pyarrow.parquet as pq  # type: ignore[import-untyped]  # pandas' engine: the schema

    try:
        return list(pq.read_schema(path).names) == [str(c) for c in frame.columns]
    except Exception:  # not a Parquet file after all: not one of ours
        return False
