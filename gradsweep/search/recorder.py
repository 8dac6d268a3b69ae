"""The driver-side Tune callback: the only writer of a study's results while it runs.

A Tune trial runs one pack (one trial, or several trained together); the recorder keeps
each member as its own trial: its own row, status, evaluations, trace and timings. Each
worker report is applied once, in order, whether Tune hands it over as a result or only
as the trial's last result at its end.

It also enforces ``budget.trial_timeout`` where the worker cannot: a Tune trial that has
not ended ``DRIVER_GRACE_SECONDS`` past the limit (stuck inside one step, or between two
evaluations far apart) has its members recorded as failed with the limit's reason, and
its worker ended, without a retry.
"""

from __future__ import annotations

import functools
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Protocol, TypeVar

import ray
from ray import tune

from gradsweep.arms import TrialStatus
from gradsweep.plan.trials import TrialSpec
from gradsweep.search.packing import Pack
from gradsweep.search.reports import (
    WORKER_FAILED,
    Outcome,
    Placement,
    WorkerReport,
    failure,
    timeout_reason,
    trial_record,
)
from gradsweep.storage.errors import StorageError
from gradsweep.storage.lease import Lease, LeaseLost
from gradsweep.storage.records import EpochRow, TrialEnd, TrialOutcome
from gradsweep.storage.writer import ResultsWriter
from gradsweep.trainers.engine.failures import clipped_traceback

FLUSH_SECONDS = 1.0
# the worker checks budget.trial_timeout itself, from its own start: the driver, counting
# from Tune's start of the trial, steps in this much later
DRIVER_GRACE_SECONDS = 10.0


class ProgressSink(Protocol):
    """Told about every trial's start and end (the live display implements it)."""

    def trial_started(self, trial: TrialSpec) -> None: ...

    def trial_finished(self, trial: TrialSpec, status: TrialStatus) -> None: ...


@dataclass
class _Member:
    """One trial of a running pack, with the rows it reported and not yet written."""

    trial: TrialSpec
    trial_id: int
    rows: dict[tuple[int, str], EpochRow] = field(default_factory=dict)
    ended: bool = False


@dataclass
class _Running:
    """A Tune trial in flight: its members and the last report applied."""

    members: dict[str, _Member]
    placement: Placement | None = None
    seq: int = -1
    last_flush: float = field(default_factory=time.monotonic)
    # when the pack started, or its last member ended (a pack run one member after another
    # gives each its own trial_timeout); whether the driver ended it for running too long
    since: float = field(default_factory=time.monotonic)
    timed_out: bool = False

    def unended(self) -> list[_Member]:
        return [member for member in self.members.values() if not member.ended]

    def overdue(self, seconds: float) -> bool:
        return not self.timed_out and time.monotonic() - self.since > seconds


def now() -> datetime:
    return datetime.now(timezone.utc)


Hook = TypeVar("Hook", bound=Callable[..., None])


def _unless_failed(hook: Hook) -> Hook:
    """A Tune callback hook that does nothing once the recorder halted (the database failed,
    or the study's lease was lost: its trials are another driver's now), and that turns a
    StorageError into the recorder's ``failure`` (Tune would only log it and go on)."""

    @functools.wraps(hook)
    def guarded(self: StudyRecorder, *args: Any, **kwargs: Any) -> None:
        if self.halted():
            return
        try:
            hook(self, *args, **kwargs)
        except StorageError as exc:
            self.failure = exc

    return guarded  # type: ignore[return-value]


class StopOnFailure(tune.Stopper):
    """Stops every trial once the recorder may no longer write the results (the database
    failed, or another driver took the study over)."""

    def __init__(self, recorder: StudyRecorder) -> None:
        self.recorder = recorder

    def __call__(self, trial_id: str, result: dict[str, Any]) -> bool:
        return self.recorder.halted()

    def stop_all(self) -> bool:
        return self.recorder.halted()


class StudyRecorder(tune.Callback):
    """Writes each member's start, per-evaluation rows and outcome through the writer.

    ``resolve`` turns a Tune trial's config into its pack. Trials not yet in the database
    (Optuna's, known only once sampled) are registered when they start.
    """

    def __init__(
        self,
        writer: ResultsWriter,
        study_id: int,
        trial_ids: dict[str, int],
        resolve: Callable[[dict[str, Any]], Pack],
        progress: ProgressSink | None = None,
        trial_timeout: float | None = None,
        lease: Lease | None = None,
    ) -> None:
        self.writer = writer
        self.study_id = study_id
        self.trial_ids = trial_ids
        self.resolve = resolve
        self.progress = progress
        self.trial_timeout = trial_timeout
        self.lease = lease
        self.running: dict[str, _Running] = {}
        self.finished: dict[str, str] = {}
        # the database could not be written (after reconnecting for a while), or another
        # driver took the study over: the study stops, writes nothing more, and launch
        # reports this in one line
        self.failure: StorageError | LeaseLost | None = None

    def __getstate__(self) -> dict[str, Any]:
        # Tune pickles its callbacks into its experiment state; the database handle and the
        # display stay with the live driver (gradsweep resumes from its own database).
        return {"study_id": self.study_id}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)

    def halted(self) -> bool:
        """Whether to write nothing more (and stop Tune's run): ``failure`` is set, or is
        set now from the study's lease, lost to another driver."""
        if self.failure is None and self.lease is not None and self.lease.lost is not None:
            self.failure = self.lease.lost_error()
        return self.failure is not None

    def _start(self, tune_trial: Any) -> _Running:
        pack = self.resolve(tune_trial.config)
        unknown = [trial for trial in pack.trials if trial.key not in self.trial_ids]
        if unknown:
            records = [trial_record(trial) for trial in unknown]
            self.trial_ids.update(self.writer.upsert_trials(self.study_id, records))
        members = {t.key: _Member(t, self.trial_ids[t.key]) for t in pack.trials}
        # a re-run replaces what an earlier attempt wrote
        self.writer.start_trials([m.trial_id for m in members.values()], now(), pack.label)
        state = _Running(members)
        self.running[tune_trial.trial_id] = state
        if self.progress is not None:
            for trial in pack.trials:
                self.progress.trial_started(trial)
        return state

    def _state(self, tune_trial: Any) -> _Running:
        return self.running.get(tune_trial.trial_id) or self._start(tune_trial)

    @_unless_failed
    def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._start(trial)

    @_unless_failed
    def on_trial_recover(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        state = self.running.pop(trial.trial_id, None)
        if state is not None:  # Tune runs the whole pack again: it starts afresh
            self.writer.reset_trials([m.trial_id for m in state.members.values()])

    @_unless_failed
    def on_trial_result(
        self, iteration: int, trials: list, trial: Any, result: dict[str, Any], **info: Any
    ) -> None:
        self._apply(self._state(trial), WorkerReport.from_result(result))

    @_unless_failed
    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        state = self._state(trial)
        self._apply(state, WorkerReport.from_result(trial.last_result))
        self._end(trial, state, "the trial ended without reporting an outcome")

    @_unless_failed
    def on_step_end(self, iteration: int, trials: list, **info: Any) -> None:
        """Tune's loop turned: end the trials that ran past ``budget.trial_timeout``."""
        if self.trial_timeout is None:
            return
        limit = self.trial_timeout + DRIVER_GRACE_SECONDS
        for tune_trial in trials:
            state = self.running.get(tune_trial.trial_id)
            if state is not None and state.overdue(limit):
                self._time_out(tune_trial, state)

    def _time_out(self, tune_trial: Any, state: _Running) -> None:
        """Record the members still running as failed past the limit, then end the worker.
        Tune then reports the trial's error (``on_trial_error``), which finds nothing left
        to record."""
        assert self.trial_timeout is not None
        reason = timeout_reason(self.trial_timeout)
        self._finish(state, [failure(m.trial.key, reason) for m in state.unended()])
        state.timed_out = True
        end_worker(tune_trial)

    @_unless_failed
    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        text = error_text(trial)
        reason = f"{WORKER_FAILED}{last_line(text) or 'the worker process died'}"
        self._end(trial, self._state(trial), reason, text)

    def _end(
        self, tune_trial: Any, state: _Running, reason: str, traceback: str | None = None
    ) -> None:
        """The Tune trial is over: members that did not end fail with ``reason``."""
        self.running.pop(tune_trial.trial_id, None)
        ended = [failure(m.trial.key, reason, traceback) for m in state.unended()]
        self._finish(state, ended)

    def _apply(self, state: _Running, report: WorkerReport | None) -> None:
        if report is None or report.seq <= state.seq:
            return
        state.seq = report.seq
        if report.placement is not None:
            state.placement = report.placement
            ids = [m.trial_id for m in state.members.values()]
            self.writer.set_placement(
                ids, report.placement.node, report.placement.describe_device()
            )
        for evaluation in report.evaluations:
            member = state.members[evaluation.key]
            member.rows.update({(row.epoch, row.task): row for row in evaluation.rows})
        if report.outcomes:
            self._finish(state, report.outcomes)
        if time.monotonic() - state.last_flush >= FLUSH_SECONDS:
            self.writer.write_epochs_of(
                {m.trial_id: list(m.rows.values()) for m in state.unended() if m.rows}
            )
            for member in state.unended():
                member.rows.clear()
            state.last_flush = time.monotonic()

    def _finish(self, state: _Running, outcomes: list[Outcome]) -> None:
        """Members' outcomes and their last rows, in one transaction."""
        ended = {o.key: o for o in outcomes if not state.members[o.key].ended}
        ends: list[TrialEnd] = []
        for key, outcome in ended.items():
            member = state.members[key]
            member.ended = True
            rows = list(member.rows.values())
            member.rows.clear()
            ends.append(
                TrialEnd(
                    member.trial_id,
                    self._outcome(state, outcome),
                    rows,
                    outcome.trace,
                    outcome.raw_trace,
                )
            )
        if ends:
            self.writer.finish_trials(ends)
            state.since = time.monotonic()
        for key, outcome in ended.items():
            self._finished(state.members[key].trial, outcome.status)

    @staticmethod
    def _normalized_loss(outcome: Outcome) -> float | None:
        return finite(outcome.normalized_loss)

    def _outcome(self, state: _Running, outcome: Outcome) -> TrialOutcome:
        where = state.placement
        return TrialOutcome(
            status=outcome.status,
            error=outcome.error,
            node=where.node if where else None,
            device=where.describe_device() if where else None,
            train_seconds=outcome.train_seconds
            if outcome.status == TrialStatus.COMPLETED
            else None,
            normalized_loss=self._normalized_loss(outcome),
            weights_final=list(outcome.weights_final) or None,
            weights_mean=list(outcome.weights_mean) or None,
            finished_at=now(),
            initial_test_losses=list(outcome.initial_test_losses) or None,
            test_losses=list(outcome.test_losses) or None,
            final_metrics=list(outcome.final_metrics) or None,
            traceback=outcome.traceback,
            initial_val_losses=list(outcome.initial_val_losses) or None,
            val_losses=list(outcome.val_losses) or None,
            val_final_metrics=list(outcome.val_final_metrics) or None,
            val_normalized_loss=finite(outcome.val_normalized_loss),
            best_val_step=outcome.best_val_step,
        )

    def _finished(self, trial: TrialSpec, status: TrialStatus) -> None:
        self.finished[trial.key] = status
        if self.progress is not None:
            self.progress.trial_finished(trial, status)

    def unfinished(self) -> list[TrialSpec]:
        """Trials that started and did not end (the run was interrupted)."""
        return [m.trial for state in self.running.values() for m in state.unended()]


def end_worker(tune_trial: Any) -> None:
    """End a Tune trial's worker now, and tell Tune not to run the trial again: its actor
    may be stuck inside a step, where no graceful stop reaches it (a stopped trial's actor
    would also be kept for the next trial, whose reset would then fail)."""
    tune_trial.max_failures = 0  # the kill is its failure: no retry
    actor = getattr(getattr(tune_trial, "temporary_state", None), "ray_actor", None)
    if actor is None:
        logging.getLogger(__name__).warning(
            "trial past budget.trial_timeout: its worker could not be found to end it"
        )
        return
    ray.kill(actor, no_restart=True)


def finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def error_text(trial: Any) -> str | None:
    """Tune's error text for a trial (the worker's traceback), if it can still be read."""
    try:
        text = trial.get_error()
    except Exception:  # the error file may be gone with a dead node
        return None
    return clipped_traceback(str(text)) if text else None


def last_line(text: str | None) -> str | None:
    lines = [line for line in (text or "").strip().splitlines() if line.strip()]
    return lines[-1].strip() if lines else None
