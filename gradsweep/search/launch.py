"""Launch and resume a study: plan its trials, run them on Ray Tune, record every result.

A study runs in up to three Tune phases: the arms known up front (static, grid, random,
GradNorm) through Tune's variant generator; the Optuna arm through ``OptunaSearch`` with
its Optuna study in the results database; then ``retrain`` at GradNorm's time-averaged
weights, which exist only once GradNorm has run. Completed trials are never run again.

One driver runs a study at a time: launch and resume hold the study's lease
(``storage/lease.py``) while they run it, and a second one is refused in one line naming
the first. SIGTERM stops a study as Ctrl-C does: left ``interrupted``, for ``resume``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import socket
import tempfile
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, replace
from types import FrameType
from typing import Any

from sqlalchemy import Engine

from gradsweep.arms import (
    RETRAIN,
    ArmKind,
    Direction,
    ObjectiveKind,
    StudyStatus,
    TrialStatus,
    weights_in_key,
)
from gradsweep.errors import GradsweepError
from gradsweep.objectives import SEARCH_SCORE
from gradsweep.plan import (
    StudyCounts,
    TrialSpec,
    count_trials,
    plan_up_front,
    planned_count,
    retrain_trials,
)
from gradsweep.plan.trials import confirm_trials, is_suggestion, optuna_number
from gradsweep.results.study import FailedTrial, StudyResults, failed_trials, load_results
from gradsweep.results.summary import optimum_line, study_counts, summarise
from gradsweep.search.extend import check_extension
from gradsweep.search.packing import Pack, PackingDecision, make_packs
from gradsweep.search.packing import decide as packing_decision
from gradsweep.search.progress import LiveProgress
from gradsweep.search.ray_reaper import forget_session, reap_orphans, record_session
from gradsweep.search.reports import WORKER_FAILED, trial_record
from gradsweep.spec import (
    PackSize,
    StudySpec,
    dry_run_problem,
    parse_spec,
    renamed,
    task_metrics,
    validate_spec,
)
from gradsweep.storage import queries
from gradsweep.storage.errors import StorageError
from gradsweep.storage.lease import Lease, LeaseLost, study_lease
from gradsweep.storage.queries import StudyInfo
from gradsweep.storage.records import StudyRecord
from gradsweep.storage.writer import ResultsWriter

OPTUNA_STUDY_PREFIX = "gradsweep:"


@dataclass(frozen=True)
class LaunchOptions:
    """Command-line overrides of the spec and where to run."""

    ray_address: str | None = None
    max_concurrent: int | None = None
    name: str | None = None
    quiet: bool = False
    pack: PackSize | None = None  # --pack: over the spec's resources.pack


@dataclass(frozen=True)
class StudyOutcome:
    """How a launch or resume ended."""

    study: str
    study_id: int
    planned: int
    completed: int
    failed: int
    interrupted: bool
    failures: tuple[FailedTrial, ...] = ()
    settled: bool = False  # resume found nothing left to run, and ran nothing (no Ray)

    @property
    def status(self) -> StudyStatus:
        if self.interrupted:
            return StudyStatus.INTERRUPTED
        if self.completed == self.planned:
            return StudyStatus.COMPLETED
        return StudyStatus.FAILED if self.failed else StudyStatus.INCOMPLETE


RAY_PROBE_SECONDS = 10.0


def check_ray_address(address: str | None) -> None:
    """Fail fast, before anything is written, when a cluster's address does not answer:
    ``ray.init`` would otherwise retry for minutes. ``auto``/``local``/none: nothing to
    probe."""
    if address is None or address in ("auto", "local"):
        return
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        raise GradsweepError(f"--ray-address: expected HOST:PORT, got {address!r}")
    try:
        with socket.create_connection((host, int(port)), timeout=RAY_PROBE_SECONDS):
            pass
    except OSError as exc:
        raise GradsweepError(f"cannot reach Ray at {address}: {exc.strerror or exc}") from None


@contextmanager
def ray_session(address: str | None) -> Iterator[None]:
    """Use the Ray session already open in this process, or open one (local if no address)."""
    import ray

    if ray.is_initialized():
        yield
        return
    local = address in (None, "local")
    if local and (reaped := reap_orphans()):
        logging.getLogger(__name__).warning(
            "ended %d Ray process(es) left by a killed launch", reaped
        )
    try:
        with signal_kept(signal.SIGTERM):
            ray.init(
                address=address or "local",  # no address: a new local Ray, never a stray one
                include_dashboard=False,
                log_to_driver=False,
                logging_level=logging.ERROR,
                runtime_env={"env_vars": {"PYTHONPATH": worker_python_path()}},
            )
    except (ConnectionError, ValueError, RuntimeError) as exc:
        raise GradsweepError(f"cannot start or reach Ray at {address or 'local'}: {exc}") from exc
    record = record_session() if local else None  # for the next launch, if this one is killed
    try:
        yield
    finally:
        ray.shutdown()
        forget_session(record)


def _in_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


@contextmanager
def signal_kept(signum: signal.Signals) -> Iterator[None]:
    """The signal's handler as it was before the block. ``ray.init`` installs its own for
    SIGTERM, which exits on the spot (Ray's fatal-signal dump, the study left
    ``running``); each Tune run installs its own for SIGINT and leaves it there, so that
    a Ctrl-C between two runs would only set the finished run's flag."""
    if not _in_main_thread():
        yield
        return
    before = signal.getsignal(signum)
    try:
        yield
    finally:
        signal.signal(signum, before if before is not None else signal.SIG_DFL)


@contextmanager
def sigterm_as_ctrl_c() -> Iterator[None]:
    """SIGTERM (``kill``, a batch scheduler's or ``docker stop``'s end) stops the study as
    Ctrl-C does: within Tune's run, Tune's own Ctrl-C handler ends it; elsewhere it is a
    KeyboardInterrupt. Either way the study is left ``interrupted`` and exits 130."""
    if not _in_main_thread():  # signals reach the main thread only
        yield
        return
    with signal_kept(signal.SIGTERM):
        signal.signal(signal.SIGTERM, _as_ctrl_c)
        yield


def _as_ctrl_c(signum: int, frame: FrameType | None) -> None:
    handler = signal.getsignal(signal.SIGINT)
    if callable(handler):
        handler(signal.SIGINT, frame)
    else:  # SIGINT ignored (a background job) or not Python's: still stop
        raise KeyboardInterrupt


def worker_python_path() -> str:
    """Workers import user problems from where the driver runs, as the driver does."""
    parts = [os.getcwd(), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    return os.pathsep.join(dict.fromkeys(parts))


def study_record(spec: StudySpec, tasks: list[dict[str, str]]) -> StudyRecord:
    return StudyRecord(
        name=spec.study,
        spec_text=spec.canonical_text(),
        spec_hash=spec.spec_hash,
        problem=spec.problem.name,
        task_names=[task["name"] for task in tasks],
        objective_name=spec.objective,
        objective_direction=str(Direction.MIN),
        task_metrics=[{"metric": t["metric"], "direction": t["direction"]} for t in tasks],
        planned=planned_count(spec, len(tasks)),
    )


@dataclass(frozen=True)
class LaunchPlan:
    """What launching a spec on a database runs first, and the counts it starts from:
    ``launch`` runs it and ``spec check`` prints it, so both say the same planned count
    and the same pack size.

    The pack size is decided over ``todo``, the trials planned up front and not completed:
    on a study's first launch every one of them; on an extension or a resume only those
    still to run (spread over the concurrent slots, they make smaller packs than the whole
    plan would). The later phases (Optuna, its confirm runs, retrain) run alone."""

    up_front: list[TrialSpec]
    statuses: dict[str, str]  # every trial the study holds or plans up front → its status
    planned: int
    todo: list[TrialSpec]
    packing: PackingDecision
    stored: bool = False  # the study is in the database already (an extension or resume)

    @property
    def counts(self) -> StudyCounts:
        return count_trials(self.planned, self.statuses.values())

    @property
    def done(self) -> set[str]:
        return {key for key, status in self.statuses.items() if status == TrialStatus.COMPLETED}


def plan_launch(
    spec: StudySpec,
    tasks: int,
    stored: Mapping[str, str],
    options: LaunchOptions,
) -> LaunchPlan:
    """The launch of ``spec`` on a study whose stored trials have ``stored`` statuses (key →
    status; empty for a new study): its trials up front, what is left of them, the pack
    size for that, and the planned count (``plan.planned_count`` of the spec and the keys)."""
    up_front = plan_up_front(spec, tasks)
    statuses = {t.key: str(TrialStatus.PENDING) for t in up_front} | dict(stored)
    todo = [t for t in up_front if statuses[t.key] != TrialStatus.COMPLETED]
    concurrency = options.max_concurrent or spec.max_concurrent
    return LaunchPlan(
        up_front=up_front,
        statuses=statuses,
        planned=planned_count(spec, tasks, statuses),
        todo=todo,
        packing=packing_decision(spec, todo, options.pack, concurrency),
        stored=bool(stored),
    )


def preview(spec: StudySpec, engine: Engine | None, options: LaunchOptions) -> LaunchPlan:
    """What ``launch`` with these options would start with on this database (None: none
    there yet, so a new study), writing nothing: ``spec check``'s answer. A stored study of
    the spec's name is extended as launch would extend it, or refused as launch would."""
    if options.name:
        spec = renamed(spec, options.name)
    tasks = validate_spec(spec)
    info = None if engine is None else queries.find_study_or_none(engine, spec.study)
    if engine is None or info is None:
        return plan_launch(spec, tasks, {}, options)
    if info.spec_hash != spec.spec_hash:
        check_extension(parse_spec(info.spec_text, source=f"study {info.name}"), spec, tasks)
    return plan_launch(spec, tasks, stored_statuses(engine, info.id), options)


def stored_statuses(engine: Engine, study_id: int) -> dict[str, str]:
    """Every trial the study holds → its status: what its counts are made of."""
    trials = queries.trials(engine, study=study_id, lean=True)
    pairs = zip(trials["key"], trials["status"], strict=True)
    return {str(key): str(status) for key, status in pairs}


def stored_record(info: StudyInfo) -> StudyRecord:
    """A stored study as the writer takes it back: its text and hash as they are."""
    return StudyRecord(
        name=info.name,
        spec_text=info.spec_text,
        spec_hash=info.spec_hash,
        problem=info.problem,
        task_names=list(info.task_names),
        objective_name=info.objective_name,
        objective_direction=info.objective_direction,
        task_metrics=info.task_metrics,
        planned=info.planned,
    )


def store_planned(writer: ResultsWriter, engine: Engine, study_id: int, planned: int) -> None:
    """Keep the study's stored planned count the plan's: the readers (``status``, the
    study list, the study page) read it, and only launch knows the plan and the keys it
    holds. (``extend_study`` writes a study's text, hash and count: the stored text and
    hash go back unchanged.)"""
    info = queries.find_study(engine, study_id)
    if info.planned != planned:
        writer.extend_study(study_id, replace(stored_record(info), planned=planned))


def launch(spec: StudySpec, engine: Engine, options: LaunchOptions) -> StudyOutcome:
    """Create (or find) the study for this spec and run every trial not yet completed,
    holding the study's lease (another driver running it: StudyBusy, nothing written)."""
    if options.name:
        spec = renamed(spec, options.name)
    tasks = validate_spec(spec)
    dry_run_problem(spec)  # a broken problem stops here, before the study is written
    writer = ResultsWriter(engine)
    record = study_record(spec, task_metrics(spec))
    extended_study(engine, spec, tasks)  # a change it cannot take: refused, nothing written
    stored = queries.find_study_or_none(engine, spec.study)
    study_id = stored.id if stored is not None else writer.get_or_create_study(record)
    with study_lease(engine, study_id, spec.study) as lease:
        if extended_study(engine, spec, tasks) is not None:  # as it is now, under the lease
            writer.extend_study(study_id, record)
            logging.getLogger(__name__).info("study %s extended", spec.study)
        return _run(spec, tasks, engine, writer, study_id, options, lease)


def extended_study(engine: Engine, spec: StudySpec, tasks: int) -> StudyInfo | None:
    """The stored study of the spec's name where the spec changes it (a change that only
    adds trials; any other is refused in one line naming each field), else None."""
    stored = queries.find_study_or_none(engine, spec.study)
    if stored is None or stored.spec_hash == spec.spec_hash:
        return None
    old = parse_spec(stored.spec_text, source=f"study {stored.name}")
    check_extension(old, spec, tasks)
    return stored


def resume(study: str, engine: Engine, options: LaunchOptions) -> StudyOutcome:
    """Run exactly the trials of a stored study that have not completed, holding the
    study's lease. A study with nothing left to run is answered from the database alone,
    without starting Ray (``settled``)."""
    found = queries.find_study(engine, study)
    with study_lease(engine, found.id, found.name) as lease:
        info = queries.find_study(engine, found.id)  # as the last driver left it
        spec = parse_spec(info.spec_text, source=f"study {info.name}")
        tasks = len(info.task_names)
        finished = settled_outcome(spec, tasks, engine, info)
        if finished is not None:
            return finished
        return _run(spec, tasks, engine, ResultsWriter(engine), info.id, options, lease)


def settled_outcome(
    spec: StudySpec, tasks: int, engine: Engine, info: StudyInfo
) -> StudyOutcome | None:
    """The outcome of a study whose phases would run nothing (``nothing_left``) and whose
    planned trials are all completed, stored as resume would leave it (its planned count,
    its status ``completed``); None where resume must run its phases."""
    if not nothing_left(spec, tasks, engine, info.id):
        return None
    writer = ResultsWriter(engine)
    store_planned(
        writer, engine, info.id, planned_count(spec, tasks, stored_statuses(engine, info.id))
    )
    outcome = replace(_outcome(spec.study, info.id, engine, interrupted=False), settled=True)
    if outcome.status != StudyStatus.COMPLETED:
        return None
    if info.status != StudyStatus.COMPLETED:  # e.g. interrupted after its last trial
        writer.set_study_status(info.id, outcome.status)
    return outcome


def nothing_left(spec: StudySpec, tasks: int, engine: Engine, study_id: int) -> bool:
    """Whether every phase would run nothing: every stored trial completed (a failed one
    would be run again), every trial planned up front stored, no Optuna suggestion left
    to make, and the confirm and retrain runs that the results call for all done. Read
    from the database alone, as the phases decide."""
    statuses = stored_statuses(engine, study_id)
    if any(status != TrialStatus.COMPLETED for status in statuses.values()):
        return False
    done = set(statuses)
    if not done.issuperset(t.key for t in plan_up_front(spec, tasks)):
        return False
    if optuna_remaining(spec, done) > 0:
        return False
    if not confirms(spec) and spec.arms.retrain is None:
        return True
    results = load_results(engine, study_id, lean=True)
    if confirms(spec) and not done.issuperset(t.key for t in confirm_todo(spec, results)):
        return False
    if spec.arms.retrain is None:
        return True
    retrain = retrain_todo(spec, results)
    return retrain is not None and not retrain[1] and done.issuperset(t.key for t in retrain[0])


def optuna_remaining(spec: StudySpec, done: set[str]) -> int:
    """The Optuna arm's suggestions still to make: ``n_trials`` less those completed (a
    confirm run, on another seed, is no suggestion)."""
    arm = spec.arms.optuna
    if arm is None:
        return 0
    return arm.n_trials - sum(1 for key in done if is_suggestion(spec, key))


def confirms(spec: StudySpec) -> bool:
    """Whether the study confirms Optuna's best suggestions on its other seeds."""
    arm = spec.arms.optuna
    return arm is not None and arm.confirm > 0 and len(spec.seeds) >= 2


def confirm_todo(spec: StudySpec, results: StudyResults) -> list[TrialSpec]:
    """The confirm runs the results call for: the Optuna arm's best suggestions by
    validation objective, on every other seed."""
    arm = spec.arms.optuna
    assert arm is not None
    return confirm_trials(spec, best_suggestions(results, arm.confirm))


def retrain_todo(spec: StudySpec, results: StudyResults) -> tuple[list[TrialSpec], set[str]] | None:
    """Retrain's trials at GradNorm's time-averaged weights now, and the keys of those
    stored at other weights (to run again); None without a completed GradNorm trial at
    retrain's α."""
    arm = spec.arms.retrain
    assert arm is not None
    weights = results.gradnorm_weights_mean(arm.alpha)
    if not weights:
        return None
    todo = retrain_trials(spec, weights)
    return todo, stale_retrain(results, todo)


def _run(
    spec: StudySpec,
    tasks: int,
    engine: Engine,
    writer: ResultsWriter,
    study_id: int,
    options: LaunchOptions,
    lease: Lease | None = None,
) -> StudyOutcome:
    with sigterm_as_ctrl_c():
        return _run_study(spec, tasks, engine, writer, study_id, options, lease)


def _run_study(
    spec: StudySpec,
    tasks: int,
    engine: Engine,
    writer: ResultsWriter,
    study_id: int,
    options: LaunchOptions,
    lease: Lease | None,
) -> StudyOutcome:
    plan = plan_launch(spec, tasks, stored_statuses(engine, study_id), options)
    trial_ids = writer.upsert_trials(study_id, [trial_record(t) for t in plan.up_front])
    store_planned(writer, engine, study_id, plan.planned)
    if plan.packing.notice:
        logging.getLogger(__name__).warning("%s", plan.packing.reason)
    runner = _PhaseRunner(spec, tasks, engine, writer, study_id, trial_ids, options, lease)
    try:
        writer.set_study_status(study_id, StudyStatus.RUNNING)
        with (
            ray_session(options.ray_address),
            LiveProgress(
                spec.study,
                plan.planned,
                plan.statuses,
                quiet=options.quiet,
                note=plan.packing.reason,
                optimum=lambda: live_optimum(engine, study_id),
            ) as progress,
        ):
            runner.progress = progress
            interrupted = runner.run_phases(plan)
    except LeaseLost:  # another driver runs the study now: its statuses are that driver's
        raise
    except KeyboardInterrupt:  # a Ctrl-C (or SIGTERM) outside Tune's own handler
        writer.mark_interrupted(study_id)
        writer.set_study_status(study_id, StudyStatus.INTERRUPTED)
        raise
    except StorageError:  # the database went away for good: say so; resume finishes it
        with contextlib.suppress(StorageError):
            writer.mark_interrupted(study_id)
            writer.set_study_status(study_id, StudyStatus.INTERRUPTED)
        raise
    except GradsweepError:  # e.g. Ray could not start: the study stays resumable
        writer.mark_interrupted(study_id)
        writer.set_study_status(study_id, StudyStatus.INTERRUPTED)
        raise
    if lease is not None and lease.lost is not None:  # lost after the last phase
        raise lease.lost_error()
    if interrupted:
        writer.mark_interrupted(study_id)
    outcome = _outcome(spec.study, study_id, engine, interrupted)
    writer.set_study_status(study_id, outcome.status)
    return outcome


def _outcome(name: str, study_id: int, engine: Engine, interrupted: bool) -> StudyOutcome:
    """The study's counts as ``status`` reads them back (``study_counts``)."""
    counts = study_counts(load_results(engine, study_id, lean=True))
    assert counts.planned is not None  # launch stored it
    return StudyOutcome(
        study=name,
        study_id=study_id,
        planned=counts.planned,
        completed=counts.completed,
        failed=counts.failed,
        interrupted=interrupted,
        failures=tuple(failed_trials(engine, study_id)) if counts.failed else (),
    )


def live_optimum(engine: Engine, study_id: int) -> str | None:
    """The static optimum so far, read as ``status`` reads it (for the live display)."""
    return optimum_line(summarise(load_results(engine, study_id, lean=True)))


def best_suggestions(results: StudyResults, count: int) -> list[tuple[int, tuple[float, ...]]]:
    """The Optuna arm's ``count`` best suggestions on the first seed by the selection
    objective (validation): their trial numbers and weights."""
    trials = results.scored()
    first = results.seeds[0] if results.seeds else 0
    runs = trials[(trials["arm"] == ArmKind.OPTUNA) & (trials["seed"] == first)]
    best = runs.nsmallest(count, "selection_objective")
    return [
        (optuna_number(str(key)), tuple(float(w) for w in weights))
        for key, weights in zip(best["key"], best["static_weights"], strict=True)
    ]


def stale_retrain(results: StudyResults, todo: list[TrialSpec]) -> set[str]:
    """Keys of stored retrain trials trained at other weights than ``todo`` now asks for."""
    trials = results.trials
    stored = trials[trials["arm"] == RETRAIN].set_index("key")["static_weights"]
    return {
        t.key
        for t in todo
        if t.key in stored.index
        and t.weights is not None
        and isinstance(stored[t.key], list)
        and weights_in_key(stored[t.key]) != weights_in_key(t.weights)
    }


class _PhaseRunner:
    """Runs the phases of one study against one Ray session."""

    def __init__(
        self,
        spec: StudySpec,
        tasks: int,
        engine: Engine,
        writer: ResultsWriter,
        study_id: int,
        trial_ids: dict[str, int],
        options: LaunchOptions,
        lease: Lease | None = None,
    ) -> None:
        self.spec, self.tasks, self.engine, self.writer = spec, tasks, engine, writer
        self.study_id, self.trial_ids, self.options = study_id, trial_ids, options
        self.lease = lease
        self.progress: LiveProgress | None = None

    def run_phases(self, plan: LaunchPlan) -> bool:
        """Every phase in turn; True when one ended early (Ctrl-C)."""
        engine, study_id = self.engine, self.study_id
        interrupted = self.run_planned(make_packs(plan.todo, plan.packing.size))
        if not interrupted:
            interrupted = self.retry_dead_workers(plan.todo)
        if not interrupted:
            interrupted = self.run_optuna(plan.done)
        if not interrupted:
            interrupted = self.run_confirm(queries.completed_keys(engine, study_id))
        if not interrupted:
            interrupted = self.run_retrain(queries.completed_keys(engine, study_id))
        return interrupted

    def run_planned(self, packs: list[Pack]) -> bool:
        from ray import tune

        from gradsweep.search.trainable import PACK, pack_to_config

        if not packs:
            return False
        space = {PACK: tune.grid_search([pack_to_config(pack) for pack in packs])}
        expected = sum(len(pack.trials) for pack in packs)
        return self._fit(space, search_alg=None, samples=1, expected=expected)

    def retry_dead_workers(self, todo: list[TrialSpec]) -> bool:
        """Run again, each alone, the trials whose worker died (not their own code) once
        Tune gave up on them, while their attempts stay within ``max_failures`` retries.
        Tune retries a trial whose actor dies while it trains, but fails one whose reused
        actor dies as it is handed over (seen under load): the spec's promise holds either
        way."""
        planned = {t.key: t for t in todo}
        for _ in range(self.spec.max_failures):
            failed = queries.trials(self.engine, study=self.study_id, status=TrialStatus.FAILED)
            dead = failed[
                failed["error"].fillna("").str.startswith(WORKER_FAILED)
                & (failed["attempts"] <= self.spec.max_failures)
            ]
            again = [planned[key] for key in dead["key"] if key in planned]
            if not again:
                return False
            logging.getLogger(__name__).warning(
                "%d trial(s) whose worker died run again", len(again)
            )
            if self.run_planned(make_packs(again, 1)):
                return True
        return False

    def run_optuna(self, done: set[str]) -> bool:
        remaining = optuna_remaining(self.spec, done)
        if remaining <= 0:
            return False
        results = load_results(self.engine, self.study_id, lean=True)
        baseline = results.selection_baseline  # the sampler steers by validation
        if results.objective is ObjectiveKind.DELTA_M and baseline is None:
            logging.getLogger(__name__).warning(
                "optuna: no completed equal-weight trial, so no Δm%% baseline; not run"
            )
            return False
        return self._fit(
            {},
            search_alg=self._optuna_search(),
            samples=remaining,
            expected=remaining,
            baseline=baseline,
        )

    def run_confirm(self, done: set[str]) -> bool:
        """The Optuna arm's best suggestions by validation objective, on every other seed."""
        if not confirms(self.spec):
            return False
        todo = confirm_todo(self.spec, load_results(self.engine, self.study_id, lean=True))
        self._register(todo)
        self._recount()  # picks other than an earlier launch's: those runs stay, and count
        return self.run_planned(make_packs([t for t in todo if t.key not in done], 1))

    def run_retrain(self, done: set[str]) -> bool:
        arm = self.spec.arms.retrain
        if arm is None:
            return False
        retrain = retrain_todo(self.spec, load_results(self.engine, self.study_id, lean=True))
        if retrain is None:
            logging.getLogger(__name__).warning(
                "retrain: no completed GradNorm trial with alpha %s; nothing to retrain", arm.alpha
            )
            return False
        todo, stale = retrain
        if stale:  # seeds were added: GradNorm's mean weights moved, so retrain runs again
            logging.getLogger(__name__).warning(
                "retrain: GradNorm's mean weights changed; %d retrain trial(s) run again",
                len(stale),
            )
            self.writer.replan_trials(
                self.study_id, [trial_record(t) for t in todo if t.key in stale]
            )
            if self.progress is not None:  # not done while they run again
                self.progress.trials_pending(stale, again=True)
        self._register(todo)
        return self.run_planned(
            make_packs([t for t in todo if t.key not in done or t.key in stale], 1)
        )

    def _register(self, trials: list[TrialSpec]) -> None:
        """Trials a later phase planned: pending rows (known keys keep their status)."""
        self.trial_ids.update(
            self.writer.upsert_trials(self.study_id, [trial_record(t) for t in trials])
        )
        if self.progress is not None:
            self.progress.trials_pending(t.key for t in trials)

    def _recount(self) -> None:
        """The planned count again from the keys the study now holds, stored and shown."""
        held = stored_statuses(self.engine, self.study_id)
        planned = planned_count(self.spec, self.tasks, held)
        store_planned(self.writer, self.engine, self.study_id, planned)
        if self.progress is not None:
            self.progress.replanned(planned)

    def _optuna_search(self) -> Any:
        import optuna
        from ray.tune.search.optuna import OptunaSearch

        from gradsweep.search.optuna_arm import SimplexSpace, make_sampler

        arm = self.spec.arms.optuna
        assert arm is not None
        storage = optuna.storages.RDBStorage(self.engine.url.render_as_string(hide_password=False))
        return OptunaSearch(
            space=SimplexSpace(self.tasks, self.spec.seeds[0]),
            metric=SEARCH_SCORE,
            mode="min",
            sampler=make_sampler(arm.sampler, arm.seed),
            study_name=OPTUNA_STUDY_PREFIX + self.spec.study,
            storage=storage,
        )

    def _fit(
        self,
        space: dict[str, Any],
        search_alg: Any,
        samples: int,
        expected: int,
        baseline: list[float] | None = None,
    ) -> bool:
        """One Tuner.fit; returns True when it ended early (Ctrl-C)."""
        from ray import tune

        from gradsweep.search.recorder import StopOnFailure, StudyRecorder  # imports Ray
        from gradsweep.search.trainable import pack_from_config, run_trial

        recorder = StudyRecorder(
            self.writer,
            self.study_id,
            self.trial_ids,
            resolve=lambda config: pack_from_config(config, self.spec, self.tasks),
            progress=self.progress,
            trial_timeout=self.spec.budget.trial_timeout,
            lease=self.lease,
        )
        resources = self.spec.resources
        trainable = tune.with_resources(
            tune.with_parameters(run_trial, spec=self.spec, tasks=self.tasks, baseline=baseline),
            {"cpu": resources.cpus_per_trial, "gpu": resources.gpus_per_trial},
        )
        concurrency = self.options.max_concurrent or self.spec.max_concurrent
        with quiet_tune(concurrency if search_alg is not None else None) as storage_path:
            tuner = tune.Tuner(
                trainable,
                param_space=space,
                tune_config=tune.TuneConfig(
                    search_alg=search_alg,
                    num_samples=samples,
                    max_concurrent_trials=concurrency,
                    reuse_actors=True,
                ),
                run_config=tune.RunConfig(
                    name="study",
                    storage_path=storage_path,
                    callbacks=[recorder],
                    stop=StopOnFailure(recorder),
                    verbose=0,
                    failure_config=tune.FailureConfig(max_failures=self.spec.max_failures),
                ),
            )
            with signal_kept(signal.SIGINT):  # Ctrl-C: Tune's within its run, ours after
                tuner.fit()
        if recorder.halted():
            assert recorder.failure is not None
            raise recorder.failure
        return bool(recorder.unfinished()) or len(recorder.finished) < expected


@contextmanager
def quiet_tune(searcher_concurrency: int | None = None) -> Iterator[str]:
    """Tune's own loggers, files and console output off; our display and database suffice.

    ``searcher_concurrency``: how many trials a searcher (Optuna's) may have pending. Tune
    before ray#63770 (mid-2026) keeps one pending trial for any searcher but its own
    generator, whatever ``max_concurrent_trials`` says, so on Ray 2.41 Optuna's suggestions
    trained one at a time; its environment variable sets the limit on every version.
    """
    environment = dict(_TUNE_ENV)
    if searcher_concurrency is not None:
        environment["TUNE_MAX_PENDING_TRIALS_PG"] = str(searcher_concurrency)
    saved = {name: os.environ.get(name) for name in environment}
    os.environ.update(environment)
    level = logging.getLogger("ray").level
    logging.getLogger("ray").setLevel(logging.CRITICAL)
    path = tempfile.mkdtemp(prefix="gradsweep-tune-")
    try:
        yield path
    finally:
        logging.getLogger("ray").setLevel(level)
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        shutil.rmtree(path, ignore_errors=True)


_TUNE_ENV = {
    "TUNE_DISABLE_AUTO_CALLBACK_LOGGERS": "1",
    "RAY_AIR_NEW_OUTPUT": "0",
    "TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S": "1000000",
    # Tune's experiment snapshots are never restored (the database is what resumes)
    "TUNE_GLOBAL_CHECKPOINT_S": "3600",
}
