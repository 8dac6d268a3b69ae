"""The only way results get into the database: idempotent upserts, batched.

Keys make every write safe to repeat: a study by name (and spec hash), a trial by
``(study, key)``, an epoch row by ``(trial, epoch, task)``, a trace point by
``(trial, step)``. A trial run again starts by deleting what its earlier attempt wrote,
so nothing is ever duplicated.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, Table, delete, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError

from gradsweep.arms import StudyStatus, TrialStatus
from gradsweep.storage.errors import StorageError
from gradsweep.storage.models import (
    Comparison,
    EpochMetric,
    Study,
    Trial,
    WeightTrace,
    utcnow,
)
from gradsweep.storage.reconnect import reconnecting
from gradsweep.storage.records import (
    EpochRow,
    StudyRecord,
    TrialEnd,
    TrialOutcome,
    TrialRecord,
    failed_outcome,
)

BATCH_ROWS = 2000


def upsert(
    conn: Connection,
    table: Table,
    rows: Sequence[dict[str, Any]],
    keys: Sequence[str],
    update_columns: Sequence[str],
) -> None:
    """INSERT … ON CONFLICT (keys) DO UPDATE, in batches, on SQLite or PostgreSQL."""
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    for start in range(0, len(rows), BATCH_ROWS):
        batch = rows[start : start + BATCH_ROWS]
        stmt = dialect.insert(table)
        if update_columns:
            stmt = stmt.on_conflict_do_update(
                index_elements=list(keys),
                set_={name: stmt.excluded[name] for name in update_columns},
            )
        else:
            stmt = stmt.on_conflict_do_nothing(index_elements=list(keys))
        conn.execute(stmt, list(batch))


TRACE_TABLE: Table = WeightTrace.__table__  # type: ignore[assignment]
TRIAL_TABLE: Table = Trial.__table__  # type: ignore[assignment]
EPOCH_COLUMNS = (
    "trial_id",
    "epoch",
    "task",
    "step",
    "train_loss",
    "test_loss",
    "metric_name",
    "metric_value",
    "metrics",
    "weight",
    "val_loss",
    "val_metric_value",
    "val_metrics",
)
EPOCH_UPDATES = EPOCH_COLUMNS[3:]
JSON_EPOCH_COLUMNS = ("metrics", "val_metrics")


def epoch_upsert_sql(dialect: str) -> str:
    """INSERT … ON CONFLICT for epoch rows in the driver's parameter style."""
    mark = "?" if dialect == "sqlite" else "%s"
    json_mark = mark if dialect == "sqlite" else "CAST(%s AS jsonb)"
    marks = ", ".join(json_mark if c in JSON_EPOCH_COLUMNS else mark for c in EPOCH_COLUMNS)
    updates = ", ".join(f"{c} = excluded.{c}" for c in EPOCH_UPDATES)
    return (
        f"INSERT INTO gs_epoch_metrics ({', '.join(EPOCH_COLUMNS)}) VALUES ({marks}) "
        f"ON CONFLICT (trial_id, epoch, task) DO UPDATE SET {updates}"
    )


FINITE_LISTS = (
    "initial_test_losses",
    "test_losses",
    "final_metrics",
    "initial_val_losses",
    "val_losses",
    "val_final_metrics",
)


def finite_or_none(metrics: dict[str, float]) -> dict[str, float | None]:
    """JSON has no NaN or infinity (PostgreSQL's jsonb refuses them): store null."""
    return {k: v if v is None or math.isfinite(v) else None for k, v in metrics.items()}


class ResultsWriter:
    """Writes studies, trials and their rows; every method is one transaction, run again
    on a new connection when the database drops it (``storage/reconnect.py``)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @reconnecting
    def get_or_create_study(self, record: StudyRecord, *, new_if_different: bool = False) -> int:
        """Same name and spec → the same study; a different spec is refused unless asked
        for a new study, which gets the first free name ``<name>-2``, ``<name>-3``, …"""
        try:
            return self._get_or_create_study(record, new_if_different)
        except IntegrityError:
            # Another process created the same name between our look and our insert.
            return self._get_or_create_study(record, new_if_different)

    def _get_or_create_study(self, record: StudyRecord, new_if_different: bool) -> int:
        with self.engine.begin() as conn:
            existing = conn.execute(
                select(Study.id, Study.spec_hash).where(Study.name == record.name)
            ).first()
            if existing is not None and existing.spec_hash == record.spec_hash:
                return int(existing.id)
            name = record.name
            if existing is not None:
                if not new_if_different:
                    raise StorageError(
                        f"study {record.name!r} exists with a different spec; "
                        "choose another name (--name) or resume it"
                    )
                name = self._free_name(conn, record.name)
            values = {
                **asdict(record),
                "name": name,
                "status": StudyStatus.CREATED.value,
                "created_at": utcnow(),
                "updated_at": utcnow(),
            }
            created = insert(Study).values(**values).returning(Study.id)
            return int(conn.execute(created).scalar_one())

    @reconnecting
    def replan_trials(self, study_id: int, records: Sequence[TrialRecord]) -> None:
        """Trials whose training configuration changed (retrain weights after seeds were
        added): their new parameters, and pending again, so they run once more."""
        with self.engine.begin() as conn:
            for record in records:
                conn.execute(
                    update(Trial)
                    .where(Trial.study_id == study_id, Trial.key == record.key)
                    .values(
                        params=record.params,
                        static_weights=record.static_weights,
                        status=TrialStatus.PENDING.value,
                    )
                )

    @reconnecting
    def extend_study(self, study_id: int, record: StudyRecord) -> None:
        """Store a study's new spec (one that only adds trials): text, hash, planned count."""
        with self.engine.begin() as conn:
            conn.execute(
                update(Study)
                .where(Study.id == study_id)
                .values(
                    spec_text=record.spec_text,
                    spec_hash=record.spec_hash,
                    planned=record.planned,
                    updated_at=utcnow(),
                )
            )

    @staticmethod
    def _free_name(conn: Connection, base: str) -> str:
        taken = set(conn.scalars(select(Study.name).where(Study.name.like(f"{base}-%"))))
        suffix = 2
        while f"{base}-{suffix}" in taken:
            suffix += 1
        return f"{base}-{suffix}"

    @reconnecting
    def upsert_trials(self, study_id: int, records: Iterable[TrialRecord]) -> dict[str, int]:
        """Register trials as pending; known keys keep their status (and take the arms
        that now also ask for them). Returns key → id."""
        rows = [
            {
                **asdict(record),
                "study_id": study_id,
                "status": TrialStatus.PENDING.value,
                "attempts": 0,
            }
            for record in records
        ]
        with self.engine.begin() as conn:
            if rows:
                upsert(conn, TRIAL_TABLE, rows, ("study_id", "key"), ("also_arms",))
            keys = [row["key"] for row in rows]
            found: dict[str, int] = {}
            for start in range(0, len(keys), BATCH_ROWS):
                chunk = keys[start : start + BATCH_ROWS]
                result = conn.execute(
                    select(Trial.key, Trial.id).where(
                        Trial.study_id == study_id, Trial.key.in_(chunk)
                    )
                )
                found.update({key: int(trial_id) for key, trial_id in result})
        return found

    @reconnecting
    def mark_running(
        self, trial_id: int, node: str | None, device: str | None, started_at: datetime
    ) -> None:
        with self.engine.begin() as conn:
            self._mark_running(conn, [trial_id], started_at, pack=None)
            self._set_placement(conn, [trial_id], node, device)

    @reconnecting
    def start_trials(
        self, trial_ids: Sequence[int], started_at: datetime, pack: str | None = None
    ) -> None:
        """Trials about to run (a pack's members together): forget what an earlier attempt
        wrote, mark them running in ``pack`` (None: not packed), in one transaction."""
        with self.engine.begin() as conn:
            self._reset(conn, trial_ids)
            self._mark_running(conn, trial_ids, started_at, pack)

    @staticmethod
    def _mark_running(
        conn: Connection, trial_ids: Sequence[int], started_at: datetime, pack: str | None
    ) -> None:
        conn.execute(
            update(Trial)
            .where(Trial.id.in_(trial_ids))
            .values(
                status=TrialStatus.RUNNING.value,
                node=None,
                device=None,
                pack=pack,
                started_at=started_at,
                finished_at=None,
                error=None,
                attempts=Trial.attempts + 1,
            )
        )

    @reconnecting
    def set_placement(
        self, trial_ids: int | Sequence[int], node: str | None, device: str | None
    ) -> None:
        """Where running trials run, once their worker has said so."""
        ids = [trial_ids] if isinstance(trial_ids, int) else list(trial_ids)
        with self.engine.begin() as conn:
            self._set_placement(conn, ids, node, device)

    @staticmethod
    def _set_placement(
        conn: Connection, trial_ids: Sequence[int], node: str | None, device: str | None
    ) -> None:
        conn.execute(update(Trial).where(Trial.id.in_(trial_ids)).values(node=node, device=device))

    def reset_trial(self, trial_id: int) -> None:
        """Forget what an earlier attempt of this trial wrote (it is about to run again)."""
        self.reset_trials([trial_id])

    @reconnecting
    def reset_trials(self, trial_ids: Sequence[int]) -> None:
        with self.engine.begin() as conn:
            self._reset(conn, trial_ids)

    @staticmethod
    def _reset(conn: Connection, trial_ids: Sequence[int]) -> None:
        for start in range(0, len(trial_ids), BATCH_ROWS):
            chunk = list(trial_ids[start : start + BATCH_ROWS])
            conn.execute(delete(EpochMetric).where(EpochMetric.trial_id.in_(chunk)))
            conn.execute(delete(WeightTrace).where(WeightTrace.trial_id.in_(chunk)))
            conn.execute(
                update(Trial)
                .where(Trial.id.in_(chunk))
                .values(
                    status=TrialStatus.PENDING.value,
                    error=None,
                    normalized_loss=None,
                    weights_final=None,
                    weights_mean=None,
                    train_seconds=None,
                    finished_at=None,
                )
            )

    def write_epochs(self, trial_id: int, rows: Sequence[EpochRow]) -> None:
        self.write_epochs_of({trial_id: rows})

    @reconnecting
    def write_epochs_of(self, rows_by_trial: Mapping[int, Sequence[EpochRow]]) -> None:
        """Several trials' rows (a pack's evaluation) in one transaction."""
        with self.engine.begin() as conn:
            for trial_id, rows in rows_by_trial.items():
                self._write_epochs(conn, trial_id, rows)

    @staticmethod
    def _write_epochs(conn: Connection, trial_id: int, rows: Sequence[EpochRow]) -> None:
        # The hot path of a study: plain executemany with the driver's own parameters.
        # SQLAlchemy's per-row bind processing cost more than the database itself.
        if not rows:
            return
        values = [
            (
                trial_id,
                r.epoch,
                r.task,
                r.step,
                r.train_loss,
                r.test_loss,
                r.metric_name,
                r.metric_value,
                json.dumps(finite_or_none(r.metrics)),
                r.weight,
                r.val_loss,
                r.val_metric_value,
                None if r.val_metrics is None else json.dumps(finite_or_none(r.val_metrics)),
            )
            for r in rows
        ]
        sql = epoch_upsert_sql(conn.dialect.name)
        for start in range(0, len(values), BATCH_ROWS):
            conn.exec_driver_sql(sql, values[start : start + BATCH_ROWS])

    @reconnecting
    def write_trace(
        self,
        trial_id: int,
        points: Sequence[tuple[int, list[float]]],
        raw_points: Sequence[tuple[int, list[float]]] = (),
    ) -> None:
        with self.engine.begin() as conn:
            self._write_trace(conn, trial_id, points, raw_points)

    @staticmethod
    def _write_trace(
        conn: Connection,
        trial_id: int,
        points: Sequence[tuple[int, list[float]]],
        raw_points: Sequence[tuple[int, list[float]]] = (),
    ) -> None:
        """``w(step)`` rescaled to Σ = T, and the applied weights of the same steps where a
        balancer's differ (null otherwise)."""
        if points:
            raw = {s: list(w) for s, w in raw_points}
            values = [
                {"trial_id": trial_id, "step": s, "weights": list(w), "raw_weights": raw.get(s)}
                for s, w in points
            ]
            upsert(conn, TRACE_TABLE, values, ("trial_id", "step"), ("weights", "raw_weights"))

    def finish_trial(
        self,
        trial_id: int,
        outcome: TrialOutcome,
        rows: Sequence[EpochRow] = (),
        trace: Sequence[tuple[int, list[float]]] = (),
    ) -> None:
        """The outcome and the trial's last rows, in one transaction."""
        self.finish_trials([TrialEnd(trial_id, outcome, rows, trace)])

    @reconnecting
    def finish_trials(self, ends: Sequence[TrialEnd]) -> None:
        """Several trials' outcomes (a pack's members ending together), in one transaction.

        A failed trial keeps only its reason beside the rows it wrote: its other outcome
        fields describe a run that did not finish.
        """
        with self.engine.begin() as conn:
            for end in ends:
                self._write_epochs(conn, end.trial_id, end.rows)
                if end.outcome.status == TrialStatus.FAILED:
                    values: dict[str, Any] = {
                        "status": TrialStatus.FAILED.value,
                        "error": end.outcome.error,
                        "traceback": end.outcome.traceback,
                        "finished_at": end.outcome.finished_at or utcnow(),
                    }
                else:
                    self._write_trace(conn, end.trial_id, end.trace, end.raw_trace)
                    values = {
                        k: v
                        for k, v in asdict(end.outcome).items()
                        if v is not None or k == "error"
                    }
                    values.setdefault("finished_at", utcnow())
                    for name in FINITE_LISTS:
                        if name in values:  # jsonb refuses NaN
                            values[name] = [
                                v if v is None or math.isfinite(v) else None for v in values[name]
                            ]
                conn.execute(update(Trial).where(Trial.id == end.trial_id).values(**values))

    def fail_trial(
        self,
        trial_id: int,
        error: str,
        rows: Sequence[EpochRow] = (),
        traceback: str | None = None,
    ) -> None:
        self.finish_trials([TrialEnd(trial_id, failed_outcome(error, traceback), rows)])

    @reconnecting
    def mark_interrupted(self, study_id: int) -> int:
        """Running trials of a study become ``interrupted`` (resume will run them)."""
        with self.engine.begin() as conn:
            result = conn.execute(
                update(Trial)
                .where(Trial.study_id == study_id, Trial.status == TrialStatus.RUNNING)
                .values(status=TrialStatus.INTERRUPTED.value, finished_at=utcnow())
            )
            return int(result.rowcount or 0)

    @reconnecting
    def set_study_status(self, study_id: int, status: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                update(Study)
                .where(Study.id == study_id)
                .values(status=str(status), updated_at=utcnow())
            )

    @reconnecting
    def save_comparison(self, study_id: int, payload: dict[str, Any]) -> int:
        with self.engine.begin() as conn:
            row = insert(Comparison).values(study_id=study_id, payload=payload, created_at=utcnow())
            return int(conn.execute(row.returning(Comparison.id)).scalar_one())
