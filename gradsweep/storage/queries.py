"""Every read the package does: plain SQL to pandas DataFrames (ORM rows never leave here)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Engine, Select, Text, case, cast, func, select

from gradsweep.arms import STATIC_ARMS, TrialStatus
from gradsweep.storage.errors import StorageError
from gradsweep.storage.models import EpochMetric, Study, Trial, WeightTrace
from gradsweep.storage.reconnect import reconnecting_reads


@dataclass(frozen=True)
class StudyInfo:
    id: int
    name: str
    spec_text: str
    spec_hash: str
    problem: str
    task_names: list[str]
    objective_name: str
    objective_direction: str
    status: str
    created_at: datetime
    updated_at: datetime
    task_metrics: list[dict[str, str]] | None = None
    planned: int | None = None  # null for studies launched before revision 0006


def _frame(engine: Engine, query: Select, columns: Sequence[str] | None = None) -> pd.DataFrame:
    with engine.connect() as conn:
        result = conn.execute(query)
        return pd.DataFrame(result.all(), columns=list(columns or result.keys()))


def _plain_frame(engine: Engine, query: Select, columns: Sequence[str]) -> pd.DataFrame:
    """For queries of plain numbers and text: the driver's rows as they come, without
    SQLAlchemy's per-row processing (most of the time of a 150,000-row read)."""
    with engine.connect() as conn:
        rows = conn.execute(query).cursor.fetchall()
    return pd.DataFrame.from_records(rows, columns=list(columns))


@reconnecting_reads
def find_study(engine: Engine, study: str | int) -> StudyInfo:
    """A study by name, or by id when given a number; unknown → StorageError."""
    query = select(Study)
    text = str(study)
    condition = Study.name == text
    if text.isdigit():
        condition = condition | (Study.id == int(text))
    with engine.connect() as conn:
        row = conn.execute(query.where(condition).order_by(Study.name != text)).mappings().first()
    if row is None:
        raise StorageError(f"unknown study {text!r}: see `gradsweep status` for the studies")
    return _study_info(row)


def _study_info(row: Any) -> StudyInfo:
    return StudyInfo(**{field: row[field] for field in StudyInfo.__dataclass_fields__})


@reconnecting_reads
def find_study_or_none(engine: Engine, name: str) -> StudyInfo | None:
    """The study of exactly this name, or None."""
    with engine.connect() as conn:
        row = conn.execute(select(Study).where(Study.name == name)).mappings().first()
    return None if row is None else _study_info(row)


def _count(status: str):  # type: ignore[no-untyped-def]
    return func.sum(case((Trial.status == status, 1), else_=0))


@reconnecting_reads
def studies(engine: Engine) -> pd.DataFrame:
    """One row per study with its trial counts, newest first (its static optimum is the
    results layer's: ``results/summary.py``)."""
    query = (
        select(
            Study.id,
            Study.name,
            Study.problem,
            Study.status,
            Study.created_at,
            Study.updated_at,
            func.count(Trial.id).label("trials"),
            _count(TrialStatus.COMPLETED).label("completed"),
            _count(TrialStatus.FAILED).label("failed"),
            _count(TrialStatus.RUNNING).label("running"),
        )
        .outerjoin(Trial, Trial.study_id == Study.id)
        .group_by(Study.id)
        .order_by(Study.created_at.desc(), Study.id.desc())
    )
    frame = _frame(engine, query)
    for column in ("completed", "failed", "running"):
        frame[column] = frame[column].fillna(0).astype(int)
    return frame


JSON_TRIAL_COLUMNS = ("params", "static_weights", "also_arms", "weights_final", "weights_mean")
FINAL_COLUMNS = ("initial_test_losses", "test_losses", "final_metrics")
VAL_FINAL_COLUMNS = ("initial_val_losses", "val_losses", "val_final_metrics")
TRIAL_COLUMNS = (
    Trial.id,
    Trial.key,
    Trial.arm,
    Trial.balancer,
    cast(Trial.params, Text).label("params"),
    cast(Trial.static_weights, Text).label("static_weights"),
    Trial.alpha,
    Trial.seed,
    cast(Trial.also_arms, Text).label("also_arms"),
    Trial.status,
    Trial.error,
    Trial.traceback,
    Trial.node,
    Trial.device,
    Trial.attempts,
    Trial.pack,
    Trial.started_at,
    Trial.finished_at,
    Trial.train_seconds,
    Trial.normalized_loss,
    Trial.val_normalized_loss,
    Trial.best_val_step,
    cast(Trial.weights_final, Text).label("weights_final"),
    cast(Trial.weights_mean, Text).label("weights_mean"),
)


LEAN_SKIPPED = {
    "params",
    "error",
    "traceback",
    "node",
    "device",
    "attempts",
    "pack",
    "started_at",
}


@reconnecting_reads
def study_signature(engine: Engine, study: str | int) -> str:
    """Changes whenever a trial of the study is added, starts or ends: one aggregate row."""
    study_id = find_study(engine, study).id
    query = select(
        func.count(Trial.id),
        _count(TrialStatus.COMPLETED),
        _count(TrialStatus.RUNNING),
        func.max(Trial.finished_at),
    ).where(Trial.study_id == study_id)
    with engine.connect() as conn:
        row = conn.execute(query).one()
    return f"{study_id}|" + "|".join(str(value) for value in row)


def decode_json_columns(frame: pd.DataFrame, columns: Sequence[str]) -> pd.DataFrame:
    """JSON text to Python values with one parse per column, not one per row: for 50,000
    trials, per-row parsing was most of a query's time."""
    for column in columns:
        # a missing text is None, or NaN in pandas 3's string columns
        texts = [t if isinstance(t, str) else "null" for t in frame[column]]
        values = json.loads("[" + ",".join(texts) + "]") if texts else []
        # object dtype: JSON null stays None (pandas 3 would infer strings and make it NaN)
        frame[column] = pd.Series(values, index=frame.index, dtype=object)
    return frame


@reconnecting_reads
def trials(
    engine: Engine,
    study: str | int | None = None,
    arm: str | Sequence[str] | None = None,
    balancer: str | None = None,
    status: str | None = None,
    lean: bool = False,
) -> pd.DataFrame:
    """Trials (of one study, or all), filtered by arm(s), balancer and status.

    ``lean`` leaves out params, error, traceback, node, device, attempts, pack and
    started_at: what the
    comparison and the figures do not need, for studies of tens of thousands of trials.
    """
    columns = [c for c in TRIAL_COLUMNS if not lean or c.key not in LEAN_SKIPPED]
    if lean:  # a static trial's mean and final weights are its static weights: not re-read
        static = Trial.arm.in_(STATIC_ARMS)
        columns = [
            case((static, None), else_=c).label(c.key)
            if c.key in ("weights_mean", "weights_final")
            else c
            for c in columns
        ]
    query = select(Study.name.label("study"), *columns).join(Study, Trial.study_id == Study.id)
    if study is not None:
        query = query.where(Trial.study_id == find_study(engine, study).id)
    if arm is not None:
        arms = [arm] if isinstance(arm, str) else list(arm)
        query = query.where(Trial.arm.in_(arms))
    if balancer is not None:
        query = query.where(Trial.balancer == balancer)
    if status is not None:
        query = query.where(Trial.status == status)
    names = ["study", *(c.key for c in columns)]
    frame = _plain_frame(engine, query.order_by(Trial.study_id, Trial.id), names)
    for column in ("started_at", "finished_at"):  # SQLite hands back text
        if column in frame.columns:
            frame[column] = pd.to_datetime(frame[column], format="mixed")
    return decode_json_columns(frame, [c for c in JSON_TRIAL_COLUMNS if c in frame.columns])


def _keys_filter(query: Select, trial_keys: Sequence[str] | None) -> Select:
    return query if trial_keys is None else query.where(Trial.key.in_(list(trial_keys)))


@reconnecting_reads
def curves(
    engine: Engine, study: str | int, trial_keys: Sequence[str] | None = None
) -> pd.DataFrame:
    """Per-evaluation, per-task rows of a study's trials (long format)."""
    study_id = find_study(engine, study).id
    query = (
        select(
            Trial.key,
            Trial.arm,
            EpochMetric.epoch,
            EpochMetric.step,
            EpochMetric.task,
            EpochMetric.train_loss,
            EpochMetric.test_loss,
            EpochMetric.metric_name,
            EpochMetric.metric_value,
            EpochMetric.metrics,
            EpochMetric.weight,
            EpochMetric.val_loss,
            EpochMetric.val_metric_value,
        )
        .join(Trial, EpochMetric.trial_id == Trial.id)
        .where(Trial.study_id == study_id)
        .order_by(Trial.id, EpochMetric.epoch, EpochMetric.task)
    )
    return _frame(engine, _keys_filter(query, trial_keys))


@reconnecting_reads
def weight_traces(
    engine: Engine, study: str | int, trial_keys: Sequence[str] | None = None
) -> pd.DataFrame:
    """The recorded weight trajectories ``w(t)`` of a study's trials (``weights`` rescaled
    to Σ = T; ``raw_weights`` as applied, null where they are the same)."""
    study_id = find_study(engine, study).id
    query = (
        select(
            Trial.key,
            Trial.arm,
            Trial.alpha,
            Trial.seed,
            WeightTrace.step,
            WeightTrace.weights,
            WeightTrace.raw_weights,
        )
        .join(Trial, WeightTrace.trial_id == Trial.id)
        .where(Trial.study_id == study_id)
        .order_by(Trial.id, WeightTrace.step)
    )
    return _frame(engine, _keys_filter(query, trial_keys))


def best_static_trials(engine: Engine, study: str | int, n: int = 10) -> pd.DataFrame:
    """The n completed static-weight trials (static, grid, random, optuna) with the lowest
    normalised loss."""
    frame = trials(engine, study=study, arm=STATIC_ARMS, status=TrialStatus.COMPLETED)
    best = frame.dropna(subset=["normalized_loss"]).nsmallest(n, "normalized_loss")
    return best.reset_index(drop=True)


@reconnecting_reads
def completed_keys(engine: Engine, study_id: int) -> set[str]:
    with engine.connect() as conn:
        return set(
            conn.scalars(
                select(Trial.key).where(
                    Trial.study_id == study_id, Trial.status == TrialStatus.COMPLETED
                )
            )
        )


def _number_rows(texts: list[str | None], width: int) -> np.ndarray:
    """JSON lists of ``width`` numbers (null: NaN; a missing list: a row of NaN) as an
    n × width array, parsed by numpy's C reader: 50,000 trials' lists in milliseconds,
    where ``json`` and Python lists took a third of a second."""
    if not texts:
        return np.empty((0, width))
    missing = ",".join(["nan"] * width)
    inner = ",".join(
        missing if t is None or t.strip() == "null" else t.strip()[1:-1] for t in texts
    ).replace("null", "nan")
    values = np.array(inner.split(","), dtype=float)
    if values.size != len(texts) * width:
        raise StorageError(f"stored per-task values are not {width} per trial")
    return values.reshape(len(texts), width)


@reconnecting_reads
def trial_finals(engine: Engine, study_id: int, tasks: int) -> dict[str, pd.DataFrame]:
    """Per completed trial that stores them (revision 0006 on): ``initial_test_losses``,
    ``test_losses`` and ``final_metrics``, and their validation twins (revision 0011 on;
    NaN before), each a frame indexed by key with one column per task (in task order)."""
    names = (*FINAL_COLUMNS, *VAL_FINAL_COLUMNS)
    columns = [cast(getattr(Trial, name), Text) for name in names]
    query = (
        select(Trial.key, *columns)
        .where(Trial.study_id == study_id, Trial.status == TrialStatus.COMPLETED)
        .where(Trial.test_losses.is_not(None))
        .order_by(Trial.id)
    )
    rows = _plain_frame(engine, query, ["key", *names])
    index = pd.Index(rows["key"], name="key")
    return {
        name: pd.DataFrame(_number_rows(rows[name].tolist(), tasks), index=index) for name in names
    }


CHECKPOINT_COLUMNS = ("key", "task", "test_loss", "metric_value", "val_loss", "val_metric_value")


@reconnecting_reads
def checkpoint_values(engine: Engine, study_id: int) -> pd.DataFrame:
    """Per completed trial with a best validation step and task: the evaluation at that
    step (``selection.checkpoint: best_validation``), in ``CHECKPOINT_COLUMNS``."""
    query = (
        select(
            Trial.key,
            EpochMetric.task,
            EpochMetric.test_loss,
            EpochMetric.metric_value,
            EpochMetric.val_loss,
            EpochMetric.val_metric_value,
        )
        .join(EpochMetric, EpochMetric.trial_id == Trial.id)
        .where(Trial.study_id == study_id, Trial.status == TrialStatus.COMPLETED)
        .where(EpochMetric.step == Trial.best_val_step)
        .order_by(Trial.id)
    )
    return _plain_frame(engine, query, CHECKPOINT_COLUMNS)


@reconnecting_reads
def evaluation_values(engine: Engine, study_id: int) -> pd.DataFrame:
    """Per completed trial, evaluation step and task: the values a trial would be scored on
    had it stopped there (``step`` and ``CHECKPOINT_COLUMNS``): the verdicts' robustness
    over the training budget reads them."""
    query = (
        select(
            Trial.key,
            EpochMetric.step,
            EpochMetric.task,
            EpochMetric.test_loss,
            EpochMetric.metric_value,
            EpochMetric.val_loss,
            EpochMetric.val_metric_value,
        )
        .join(EpochMetric, EpochMetric.trial_id == Trial.id)
        .where(Trial.study_id == study_id, Trial.status == TrialStatus.COMPLETED)
        .order_by(Trial.id, EpochMetric.step)
    )
    key, task, *values = CHECKPOINT_COLUMNS
    return _plain_frame(engine, query, (key, "step", task, *values))


@reconnecting_reads
def final_task_values(
    engine: Engine, study_id: int, trial_keys: Sequence[str] | None = None
) -> pd.DataFrame:
    """Per trial and task: the test loss of the untrained network (epoch 0), and the test
    loss and primary metric at the trial's last evaluation (``key, task, initial_test_loss,
    test_loss, metric_value``), read from every evaluation row: for trials written before
    ``gs_trials.test_losses`` and its siblings existed (revision 0006), which hold the same."""
    trials = select(Trial.id).where(Trial.study_id == study_id)
    if trial_keys is not None:
        trials = trials.where(Trial.key.in_(list(trial_keys)))
    last = (
        select(EpochMetric.trial_id, func.max(EpochMetric.epoch).label("epoch"))
        .where(EpochMetric.trial_id.in_(trials))
        .group_by(EpochMetric.trial_id)
        .subquery()
    )
    first = EpochMetric.__table__.alias("first")
    query = (
        select(
            Trial.key,
            EpochMetric.task,
            first.c.test_loss.label("initial_test_loss"),
            EpochMetric.test_loss,
            EpochMetric.metric_value,
        )
        .join(EpochMetric, EpochMetric.trial_id == Trial.id)
        .join(last, (last.c.trial_id == EpochMetric.trial_id) & (last.c.epoch == EpochMetric.epoch))
        .outerjoin(
            first,
            (first.c.trial_id == EpochMetric.trial_id)
            & (first.c.task == EpochMetric.task)
            & (first.c.epoch == 0),
        )
        .order_by(Trial.id)
    )
    columns = ["key", "task", "initial_test_loss", "test_loss", "metric_value"]
    return _plain_frame(engine, query, columns)
