"""Launch and resume a study: plan its trials, run them on Ray Tune, record every result.

A study runs in up to three Tune phases: the arms known up front (static, grid, random,
GradNorm) through Tune's variant generator; the Optuna arm through ``OptunaSearch`` with
its Optuna study in the results database; then ``retrain`` at GradNorm's time-averaged
weights, which exist only once GradNorm has run. Completed trials are never run again.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import socket
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
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
from gradsweep.plan import TrialSpec, plan_up_front, planned_count, retrain_trials
from gradsweep.plan.trials import confirm_trials, optuna_number
from gradsweep.results.study import FailedTrial, StudyResults, failed_trials, load_results
from gradsweep.results.summary import optimum_line, summarise
from gradsweep.search.extend import check_extension
from gradsweep.search.packing import Pack, make_packs
from gradsweep.search.packing import decide as packing_decision
from gradsweep.search.progress import LiveProgress
from gradsweep.search.ray_reaper import forget_session, reap_orphans, record_session
from gradsweep.search.recorder import WORKER_FAILED, StopOnFailure, StudyRecorder, trial_record
from gradsweep.spec import (
    StudySpec,
    dry_run_problem,
    parse_spec,
    renamed,
    task_metrics,
    validate_spec,
)
from gradsweep.storage import queries
from gradsweep.storage.errors import StorageError
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
    pack: int | None = None


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


def launch(spec: StudySpec, engine: Engine, options: LaunchOptions) -> StudyOutcome:
    """Create (or find) the study for this spec and run every trial not yet completed."""
    if options.name:
        spec = renamed(spec, options.name)
    tasks = validate_spec(spec)
    dry_run_problem(spec)  # a broken problem stops here, before the study is written
    writer = ResultsWriter(engine)
    record = study_record(spec, task_metrics(spec))
    stored = queries.find_study_or_none(engine, spec.study)
    if stored is not None and stored.spec_hash != spec.spec_hash:
        old = parse_spec(stored.spec_text, source=f"study {stored.name}")
        check_extension(old, spec, tasks)  # one line naming each change it cannot take
        writer.extend_study(stored.id, record)
        logging.getLogger(__name__).info("study %s extended", spec.study)
    study_id = writer.get_or_create_study(record)
    return _run(spec, tasks, engine, writer, study_id, options)


def resume(study: str, engine: Engine, options: LaunchOptions) -> StudyOutcome:
    """Run exactly the trials of a stored study that have not completed."""
    info = queries.find_study(engine, study)
    spec = parse_spec(info.spec_text, source=f"study {info.name}")
    tasks = len(info.task_names)
    return _run(spec, tasks, engine, ResultsWriter(engine), info.id, options)


def _run(
    spec: StudySpec,
    tasks: int,
    engine: Engine,
    writer: ResultsWriter,
    study_id: int,
    options: LaunchOptions,
) -> StudyOutcome:
    planned = plan_up_front(spec, tasks)
    trial_ids = writer.upsert_trials(study_id, [trial_record(t) for t in planned])
    done = queries.completed_keys(engine, study_id)
    todo = [t for t in planned if t.key not in done]
    total = planned_count(spec, tasks)
    concurrency = options.max_concurrent or spec.max_concurrent
    packing = packing_decision(spec, todo, options.pack, concurrency)
    if packing.notice:
        logging.getLogger(__name__).warning("%s", packing.reason)
    writer.set_study_status(study_id, StudyStatus.RUNNING)
    runner = _PhaseRunner(spec, tasks, engine, writer, study_id, trial_ids, options)
    try:
        with (
            ray_session(options.ray_address),
            LiveProgress(
                spec.study,
                total,
                len(done),
                quiet=options.quiet,
                note=packing.reason,
                optimum=lambda: live_optimum(engine, study_id),
            ) as progress,
        ):
            runner.progress = progress
            interrupted = runner.run_planned(make_packs(todo, packing.size))
            if not interrupted:
                interrupted = runner.retry_dead_workers(todo)
            if not interrupted:
                interrupted = runner.run_optuna(done)
            if not interrupted:
                interrupted = runner.run_confirm(queries.completed_keys(engine, study_id))
            if not interrupted:
                interrupted = runner.run_retrain(queries.completed_keys(engine, study_id))
    except KeyboardInterrupt:  # a Ctrl-C outside Tune's own handler
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
    if interrupted:
        writer.mark_interrupted(study_id)
    outcome = _outcome(spec.study, study_id, engine, total, interrupted)
    writer.set_study_status(study_id, outcome.status)
    return outcome


def _outcome(
    name: str, study_id: int, engine: Engine, total: int, interrupted: bool
) -> StudyOutcome:
    counts = load_results(engine, study_id, lean=True).counts()
    return StudyOutcome(
        study=name,
        study_id=study_id,
        planned=total,
        completed=counts[TrialStatus.COMPLETED],
        failed=counts[TrialStatus.FAILED],
        interrupted=interrupted,
        failures=tuple(failed_trials(engine, study_id)) if counts[TrialStatus.FAILED] else (),
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
    ) -> None:
        self.spec, self.tasks, self.engine, self.writer = spec, tasks, engine, writer
        self.study_id, self.trial_ids, self.options = study_id, trial_ids, options
        self.progress: LiveProgress | None = None

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
        arm = self.spec.arms.optuna
        if arm is None:
            return False
        finished = sum(1 for key in done if key.startswith("optuna/"))
        remaining = arm.n_trials - finished
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
        arm = self.spec.arms.optuna
        if arm is None or arm.confirm == 0 or len(self.spec.seeds) < 2:
            return False
        results = load_results(self.engine, self.study_id, lean=True)
        todo = confirm_trials(self.spec, best_suggestions(results, arm.confirm))
        self.trial_ids.update(
            self.writer.upsert_trials(self.study_id, [trial_record(t) for t in todo])
        )
        return self.run_planned(make_packs([t for t in todo if t.key not in done], 1))

    def run_retrain(self, done: set[str]) -> bool:
        arm = self.spec.arms.retrain
        if arm is None:
            return False
        results = load_results(self.engine, self.study_id, lean=True)
        weights = results.gradnorm_weights_mean(arm.alpha)
        if not weights:
            logging.getLogger(__name__).warning(
                "retrain: no completed GradNorm trial with alpha %s; nothing to retrain", arm.alpha
            )
            return False
        todo = retrain_trials(self.spec, weights)
        stale = stale_retrain(results, todo)
        if stale:  # seeds were added: GradNorm's mean weights moved, so retrain runs again
            logging.getLogger(__name__).warning(
                "retrain: GradNorm's mean weights changed; %d retrain trial(s) run again",
                len(stale),
            )
            self.writer.replan_trials(
                self.study_id, [trial_record(t) for t in todo if t.key in stale]
            )
        self.trial_ids.update(
            self.writer.upsert_trials(self.study_id, [trial_record(t) for t in todo])
        )
        return self.run_planned(
            make_packs([t for t in todo if t.key not in done or t.key in stale], 1)
        )

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

        from gradsweep.search.trainable import pack_from_config, run_trial

        recorder = StudyRecorder(
            self.writer,
            self.study_id,
            self.trial_ids,
            resolve=lambda config: pack_from_config(config, self.spec, self.tasks),
            progress=self.progress,
        )
        resources = self.spec.resources
        trainable = tune.with_resources(
            tune.with_parameters(run_trial, spec=self.spec, tasks=self.tasks, baseline=baseline),
            {"cpu": resources.cpus_per_trial, "gpu": resources.gpus_per_trial},
        )
        with quiet_tune() as storage_path:
            tuner = tune.Tuner(
                trainable,
                param_space=space,
                tune_config=tune.TuneConfig(
                    search_alg=search_alg,
                    num_samples=samples,
                    max_concurrent_trials=self.options.max_concurrent or self.spec.max_concurrent,
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
            tuner.fit()
        if recorder.failure is not None:
            raise recorder.failure
        return bool(recorder.unfinished()) or len(recorder.finished) < expected


@contextmanager
def quiet_tune() -> Iterator[str]:
    """Tune's own loggers, files and console output off; our display and database suffice."""
    saved = {name: os.environ.get(name) for name in _TUNE_ENV}
    os.environ.update(_TUNE_ENV)
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
