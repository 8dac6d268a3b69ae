"""What runs inside a Ray worker: one pack (one trial, or several trained together),
reported to Tune one ``WorkerReport`` per evaluation round.

Workers never open the database; the driver's recorder writes what they report.
Exceptions from a user's problem are reported as failed trials (a deterministic error
would fail again on a retry); only a crashed worker is retried by Tune. A pack whose
packed run raises before its first step is done runs its members one by one instead, so
a model that cannot be packed loses nothing.

``budget.trial_timeout`` is checked here, after every evaluation is reported: a trial (a
pack: its members together) past it fails with that reason, keeping what it reported. A
trial stuck inside one step never gets back here; the driver's recorder stops that one.
"""

from __future__ import annotations

import socket
import time
from dataclasses import asdict
from typing import Any

import ray
import torch
from ray import tune

from gradsweep.arms import TrialStatus
from gradsweep.objectives import delta_m
from gradsweep.plan.simplex import weights_from_optuna_params
from gradsweep.plan.trials import TrialSpec, optuna_trial
from gradsweep.search.packing import Pack
from gradsweep.search.reports import (
    Evaluation,
    Outcome,
    Placement,
    WorkerReport,
    failure,
    timeout_reason,
)
from gradsweep.spec import StudySpec
from gradsweep.storage.records import EpochRow
from gradsweep.trainers import (
    Budget,
    EpochRecord,
    MultitaskProblem,
    TrainResult,
    make_balancer,
    train,
)
from gradsweep.trainers.engine.failures import error_line, exception_traceback
from gradsweep.trainers.packed.loop import PackRound, train_packed
from gradsweep.trainers.registry import built_problem

OPTUNA_NUMBER = "optuna_number"
PACK = "pack"


def pack_to_config(pack: Pack) -> dict[str, Any]:
    return {"label": pack.label, "trials": [asdict(trial) for trial in pack.trials]}


def _trial_from_dict(data: dict[str, Any]) -> TrialSpec:
    data = dict(data)
    data["weights"] = None if data["weights"] is None else tuple(data["weights"])
    data["also_arms"] = tuple(data.get("also_arms") or ())
    return TrialSpec(**data)


def pack_from_config(config: dict[str, Any], spec: StudySpec, tasks: int) -> Pack:
    """A planned pack travels whole in its config; an Optuna trial as its sampled params."""
    if PACK in config:
        data = config[PACK]
        return Pack(tuple(_trial_from_dict(t) for t in data["trials"]), data["label"])
    weights = weights_from_optuna_params(config, tasks)
    return Pack((optuna_trial(spec, int(config[OPTUNA_NUMBER]), weights),))


def problem_for(spec: StudySpec) -> MultitaskProblem:
    return built_problem(
        spec.problem.name, spec.problem.params_json(), spec.selection.validation_fraction
    )


def choose_device(spec: StudySpec) -> str:
    """CUDA when the trial was given a GPU and this worker really has one."""
    if spec.resources.gpus_per_trial > 0 and torch.cuda.is_available():
        return "cuda"
    return "cpu"


def epoch_rows(record: EpochRecord, problem: MultitaskProblem) -> list[EpochRow]:
    """One row per task in the storage's long format."""
    return [
        EpochRow(
            epoch=record.epoch,
            step=record.step,
            task=task.task,
            train_loss=task.train_loss,
            test_loss=task.test_loss,
            metric_name=info.metric,
            metric_value=task.metrics.get(info.metric),
            metrics=task.metrics,
            weight=task.weight,
            val_loss=task.val_loss,
            val_metric_value=None
            if task.val_metrics is None
            else task.val_metrics.get(info.metric),
            val_metrics=task.val_metrics,
        )
        for task, info in zip(record.tasks, problem.tasks, strict=True)
    ]


def primary(
    metrics: list[dict[str, float]] | None, problem: MultitaskProblem
) -> list[float | None]:
    """Each task's primary metric (empty without the split)."""
    if metrics is None:
        return []
    return [values.get(info.metric) for values, info in zip(metrics, problem.tasks, strict=True)]


def search_score(
    record: EpochRecord, problem: MultitaskProblem, baseline: list[float] | None
) -> float:
    """What the Optuna sampler minimises: the study's objective on validation (the
    normalised loss, or Δm% against ``baseline``, the equal-weight trials' validation
    metrics), so that no search steers by test; on test for a problem without validation."""
    on_validation = record.val_normalized_loss is not None
    if baseline is None:
        loss = record.val_normalized_loss if on_validation else record.normalized_loss
        return float("nan") if loss is None else loss
    metrics = [
        (task.val_metrics if on_validation and task.val_metrics is not None else task.metrics).get(
            info.metric, float("nan")
        )
        for task, info in zip(record.tasks, problem.tasks, strict=True)
    ]
    return float(delta_m(metrics, baseline, [info.direction for info in problem.tasks]))


def placement(device: str) -> Placement:
    """Where the trial runs: host name, address and Ray node id (several nodes may share one
    host), the device, and the GPU ids Ray assigned."""
    node_id = ray.get_runtime_context().get_node_id()[:8]
    return Placement(
        node=f"{socket.gethostname()} ({ray.util.get_node_ip_address()}, node {node_id})",
        device=device,
        gpu_ids=[str(i) for i in ray.get_gpu_ids()],
    )


class _Reporter:
    """Builds the worker's reports: numbered, the first one saying where the trial runs."""

    def __init__(
        self, where: Placement, problem: MultitaskProblem | None, baseline: list[float] | None
    ) -> None:
        self.where, self.problem, self.baseline = where, problem, baseline
        self.seq = 0
        self.ended: set[str] = set()

    def evaluation(self, trial: TrialSpec, record: EpochRecord) -> Evaluation:
        assert self.problem is not None
        score = search_score(record, self.problem, self.baseline)
        rows = epoch_rows(record, self.problem)
        return Evaluation(trial.key, record.epoch, record.step, record.normalized_loss, score, rows)

    def outcome(self, trial: TrialSpec, result: TrainResult) -> Outcome:
        if result.status != TrialStatus.COMPLETED or self.problem is None:
            return failure(trial.key, result.error or "failed")
        score = search_score(result.epochs[-1], self.problem, self.baseline)
        return Outcome(
            key=trial.key,
            status=TrialStatus.COMPLETED,
            normalized_loss=result.normalized_loss,
            search_score=score if result.normalized_loss is not None else float("nan"),
            steps=result.steps,
            weights_final=result.weights_final,
            weights_mean=result.weights_mean,
            train_seconds=result.train_seconds,
            trace=result.trace,
            raw_trace=result.raw_trace,
            initial_test_losses=list(result.initial_test_losses),
            test_losses=list(result.test_losses),
            final_metrics=primary(result.test_metrics, self.problem),
            initial_val_losses=list(result.initial_val_losses or []),
            val_losses=list(result.val_losses or []),
            val_final_metrics=primary(result.val_metrics, self.problem),
            val_normalized_loss=result.val_normalized_loss,
            best_val_step=result.best_val_step,
        )

    def send(self, evaluations: list[Evaluation], outcomes: list[Outcome]) -> None:
        outcomes = [o for o in outcomes if o.key not in self.ended]
        self.ended.update(o.key for o in outcomes)
        report = WorkerReport(self.seq, evaluations, outcomes, self.where if not self.seq else None)
        self.seq += 1
        tune.report(report.to_result())


class TrialTimeout(Exception):
    """Raised from a report callback to end a trial past ``budget.trial_timeout``."""


class _Deadline:
    """``budget.trial_timeout`` from now on, checked between evaluations. The last
    evaluation is never checked: a trial that got there finished, and keeps its result."""

    def __init__(self, spec: StudySpec) -> None:
        self.seconds = spec.budget.trial_timeout
        self.steps = spec.budget.steps
        self.ends = None if self.seconds is None else time.monotonic() + self.seconds

    def check(self, step: int) -> None:
        if self.ends is not None and step < self.steps and time.monotonic() > self.ends:
            assert self.seconds is not None
            raise TrialTimeout(timeout_reason(self.seconds))


def _budget(spec: StudySpec) -> Budget:
    budget = spec.budget
    return Budget(steps=budget.steps, eval_every=budget.eval_every, trace_every=budget.trace_every)


def _run_alone(trial: TrialSpec, spec: StudySpec, reporter: _Reporter, device: str) -> None:
    """One trial through the ordinary loop, each evaluation reported as it comes."""
    deadline = _Deadline(spec)

    def on_epoch(record: EpochRecord) -> None:
        reporter.send([reporter.evaluation(trial, record)], [])
        deadline.check(record.step)

    try:
        problem = reporter.problem or problem_for(spec)
        reporter.problem = problem
        balancer = make_balancer(trial.balancer, dict(trial.balancer_params))
        result = train(
            problem,
            balancer,
            _budget(spec),
            seed=trial.seed,
            on_epoch=on_epoch,
            device=device,
            precision=spec.precision,
        )
    except TrialTimeout as exc:  # not the trial's code: no traceback
        reporter.send([], [failure(trial.key, str(exc))])
        return
    except Exception as exc:  # a user's problem may raise anything; record it, go on
        reporter.send([], [failure(trial.key, error_line(exc), exception_traceback(exc))])
        return
    reporter.send([], [reporter.outcome(trial, result)])


def _run_packed(pack: Pack, spec: StudySpec, reporter: _Reporter, device: str) -> None:
    """The pack's members trained together; one report per evaluation round."""
    rounds = 0
    deadline = _Deadline(spec)  # the pack's: its members train in the same time

    def on_round(packed: PackRound) -> None:
        nonlocal rounds
        rounds += 1
        evaluations = [reporter.evaluation(pack.trials[k], r) for k, r in packed.records.items()]
        ended = [reporter.outcome(pack.trials[k], r) for k, r in packed.failed.items()]
        reporter.send(evaluations, ended)
        deadline.check(packed.step)

    try:
        problem = reporter.problem = problem_for(spec)
        balancers = [make_balancer(t.balancer, dict(t.balancer_params)) for t in pack.trials]
        seed = pack.trials[0].seed
        results = train_packed(
            problem, balancers, _budget(spec), seed, on_round, device, precision=spec.precision
        )
    except TrialTimeout as exc:  # every member still training fails with the reason
        reporter.send([], [failure(t.key, str(exc)) for t in pack.trials])
        return
    except Exception as exc:
        if rounds <= 1:  # before the first step was done: run the members one by one
            for trial in pack.trials:
                _run_alone(trial, spec, reporter, device)
            return
        line, text = error_line(exc), exception_traceback(exc)
        reporter.send([], [failure(t.key, line, text) for t in pack.trials])
        return
    reporter.send([], [reporter.outcome(t, r) for t, r in zip(pack.trials, results, strict=True)])


def run_trial(
    config: dict[str, Any], spec: StudySpec, tasks: int, baseline: list[float] | None = None
) -> None:
    """The Tune function trainable: train one pack, reporting every evaluation.

    ``baseline``: the equal-weight trials' final metrics when the study's objective is Δm%
    (known from the Optuna phase on), so the sampler minimises the study's objective.
    """
    pack = pack_from_config(config, spec, tasks)
    device = choose_device(spec)
    reporter = _Reporter(placement(device), None, baseline)
    if len(pack.trials) == 1:
        _run_alone(pack.trials[0], spec, reporter, device)
    else:
        _run_packed(pack, spec, reporter, device)
