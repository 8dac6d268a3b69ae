"""The driver-side Tune callback: the only writer of a study's results while it runs."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Protocol

from ray import tune

from gradsweep.search.plan import TrialSpec
from gradsweep.storage.records import EpochRow, TrialOutcome, TrialRecord
from gradsweep.storage.writer import ResultsWriter

FLUSH_SECONDS = 1.0


class ProgressSink(Protocol):
    """Told about every trial's start and end (the live display implements it)."""

    def trial_started(self, trial: TrialSpec) -> None: ...

    def trial_finished(self, trial: TrialSpec, status: str, objective: float | None) -> None: ...


def trial_record(trial: TrialSpec) -> TrialRecord:
    return TrialRecord(
        key=trial.key,
        arm=trial.arm,
        balancer=trial.balancer,
        params=trial.params(),
        static_weights=list(trial.weights) if trial.weights is not None else None,
        alpha=trial.alpha,
        seed=trial.seed,
    )


@dataclass
class _Running:
    trial: TrialSpec
    trial_id: int
    rows: list[EpochRow] = field(default_factory=list)
    last_flush: float = field(default_factory=time.monotonic)


def now() -> datetime:
    return datetime.now(timezone.utc)


class StudyRecorder(tune.Callback):
    """Writes each trial's start, per-evaluation rows and outcome through the storage writer.

    ``resolve`` turns a Tune trial's config into its TrialSpec. Trials not yet in the
    database (Optuna's, known only once sampled) are registered when they start.
    """

    def __init__(
        self,
        writer: ResultsWriter,
        study_id: int,
        trial_ids: dict[str, int],
        resolve: Callable[[dict[str, Any]], TrialSpec],
        progress: ProgressSink | None = None,
    ) -> None:
        self.writer = writer
        self.study_id = study_id
        self.trial_ids = trial_ids
        self.resolve = resolve
        self.progress = progress
        self.running: dict[str, _Running] = {}
        self.finished: dict[str, str] = {}

    def __getstate__(self) -> dict[str, Any]:
        # Tune pickles its callbacks into its experiment state; the database handle and the
        # display stay with the live driver (gradsweep resumes from its own database).
        return {"study_id": self.study_id}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)

    def _start(self, tune_trial: Any) -> _Running:
        trial = self.resolve(tune_trial.config)
        if trial.key not in self.trial_ids:
            self.trial_ids.update(self.writer.upsert_trials(self.study_id, [trial_record(trial)]))
        trial_id = self.trial_ids[trial.key]
        self.writer.reset_trial(trial_id)  # a re-run replaces what an earlier attempt wrote
        self.writer.mark_running(trial_id, node=None, device=None, started_at=now())
        state = _Running(trial, trial_id)
        self.running[tune_trial.trial_id] = state
        if self.progress is not None:
            self.progress.trial_started(trial)
        return state

    def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._start(trial)

    def on_trial_recover(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        state = self.running.pop(trial.trial_id, None)
        if state is not None:
            self.writer.reset_trial(state.trial_id)

    def on_trial_result(
        self, iteration: int, trials: list, trial: Any, result: dict[str, Any], **info: Any
    ) -> None:
        state = self.running.get(trial.trial_id) or self._start(trial)
        if result.get("kind") != "epoch":
            return
        if "node" in result:  # the first evaluation says where the trial runs
            self.writer.set_placement(state.trial_id, result["node"], describe_device(result))
        state.rows.extend(EpochRow(**row) for row in result.get("rows", []))
        if time.monotonic() - state.last_flush >= FLUSH_SECONDS:
            self.writer.write_epochs(state.trial_id, state.rows)
            state.rows.clear()
            state.last_flush = time.monotonic()

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        state = self.running.pop(trial.trial_id, None) or self._start(trial)
        self.running.pop(trial.trial_id, None)
        result = trial.last_result or {}
        if result.get("kind") != "final":
            self._fail(state, "the trial ended without reporting an outcome")
            return
        if result.get("status") != "completed":
            self._fail(state, str(result.get("error") or "failed"))
            return
        objective = result.get("objective")
        outcome = TrialOutcome(
            status="completed",
            error=None,
            node=result.get("node"),
            device=describe_device(result),
            train_seconds=float(result.get("train_seconds", 0.0)),
            objective=objective if objective is not None and math.isfinite(objective) else None,
            weights_final=list(result.get("weights_final", [])),
            weights_mean=list(result.get("weights_mean", [])),
            started_at=None,
            finished_at=now(),
        )
        trace = [(int(step), list(weights)) for step, weights in result.get("trace", [])]
        self.writer.finish_trial(state.trial_id, outcome, rows=state.rows, trace=trace)
        self._finished(state.trial, "completed", outcome.objective)

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        state = self.running.pop(trial.trial_id, None) or self._start(trial)
        self.running.pop(trial.trial_id, None)
        self._fail(state, f"worker failed: {last_error_line(trial)}")

    def _fail(self, state: _Running, error: str) -> None:
        self.writer.fail_trial(state.trial_id, error, rows=state.rows)
        self._finished(state.trial, "failed", None)

    def _finished(self, trial: TrialSpec, status: str, objective: float | None) -> None:
        self.finished[trial.key] = status
        if self.progress is not None:
            self.progress.trial_finished(trial, status, objective)

    def unfinished(self) -> list[TrialSpec]:
        """Trials that started and did not end (the run was interrupted)."""
        return [state.trial for state in self.running.values()]


def describe_device(result: dict[str, Any]) -> str | None:
    device = result.get("device")
    gpu_ids = result.get("gpu_ids") or []
    if device is None:
        return None
    return f"{device} (ray gpu {','.join(gpu_ids)})" if gpu_ids else str(device)


def last_error_line(trial: Any) -> str:
    """The last line of Tune's error text for a trial, or a generic reason."""
    try:
        text = trial.get_error()
    except Exception:  # the error file may be gone with a dead node
        text = None
    if not text:
        return "the worker process died"
    lines = [line for line in str(text).strip().splitlines() if line.strip()]
    return lines[-1] if lines else "the worker process died"
