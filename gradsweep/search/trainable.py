"""What runs inside a Ray worker: one trial, reported to Tune one record per evaluation.

Workers never open the database; the driver's recorder writes what they report.
Exceptions from a user's problem are reported as a failed trial (a deterministic error
would fail again on a retry); only a crashed worker is retried by Tune.
"""

from __future__ import annotations

import functools
import json
import socket
import traceback
from dataclasses import asdict
from typing import Any

import ray
import torch
from ray import tune

from gradsweep.objectives import SEARCH_SCORE, delta_m
from gradsweep.search.plan import TrialSpec, optuna_trial
from gradsweep.search.simplex import weights_from_optuna_params
from gradsweep.spec import StudySpec
from gradsweep.trainers import (
    Budget,
    EpochRecord,
    MultitaskProblem,
    TrainResult,
    make_balancer,
    make_problem,
    train,
)

OPTUNA_NUMBER = "optuna_number"


def trial_to_config(trial: TrialSpec) -> dict[str, Any]:
    return {"trial": asdict(trial)}


def trial_from_config(config: dict[str, Any], spec: StudySpec, tasks: int) -> TrialSpec:
    """A planned trial travels whole in its config; an Optuna one as its sampled params."""
    if "trial" in config:
        data = dict(config["trial"])
        data["weights"] = None if data["weights"] is None else tuple(data["weights"])
        return TrialSpec(**data)
    weights = weights_from_optuna_params(config, tasks)
    return optuna_trial(spec, int(config[OPTUNA_NUMBER]), weights)


@functools.lru_cache(maxsize=4)
def _cached_problem(name: str, params_json: str) -> MultitaskProblem:
    # A reused worker builds each problem's data once, not once per trial.
    return make_problem(name, json.loads(params_json))


def problem_for(spec: StudySpec) -> MultitaskProblem:
    return _cached_problem(spec.problem.name, json.dumps(spec.problem.params, sort_keys=True))


def choose_device(spec: StudySpec) -> str:
    """CUDA when the trial was given a GPU and this worker really has one."""
    if spec.resources.gpus_per_trial > 0 and torch.cuda.is_available():
        return "cuda"
    return "cpu"


def epoch_rows(record: EpochRecord, problem: MultitaskProblem) -> list[dict[str, Any]]:
    """One row per task in the storage's long format."""
    return [
        {
            "epoch": record.epoch,
            "step": record.step,
            "task": task.task,
            "train_loss": task.train_loss,
            "test_loss": task.test_loss,
            "metric_name": info.metric,
            "metric_value": task.metrics.get(info.metric),
            "metrics": task.metrics,
            "weight": task.weight,
        }
        for task, info in zip(record.tasks, problem.tasks, strict=True)
    ]


def search_score(
    record: EpochRecord, problem: MultitaskProblem, baseline: list[float] | None
) -> float:
    """The normalised loss, or Δm% against ``baseline`` (the equal-weight trials' metrics)."""
    if baseline is None:
        return record.objective
    metrics = [
        task.metrics.get(info.metric, float("nan"))
        for task, info in zip(record.tasks, problem.tasks, strict=True)
    ]
    return float(delta_m(metrics, baseline, [info.direction for info in problem.tasks]))


def epoch_report(
    trial: TrialSpec,
    record: EpochRecord,
    problem: MultitaskProblem,
    where: dict[str, Any],
    baseline: list[float] | None = None,
) -> dict[str, Any]:
    """One evaluation; the first also says where the trial runs (for status while running)."""
    report = {
        "key": trial.key,
        "kind": "epoch",
        "epoch": record.epoch,
        "step": record.step,
        "objective": record.objective,
        SEARCH_SCORE: search_score(record, problem, baseline),
        "rows": epoch_rows(record, problem),
    }
    return {**report, **where} if record.epoch == 0 else report


def final_report(
    trial: TrialSpec, result: TrainResult, where: dict[str, Any], score: float
) -> dict[str, Any]:
    """The last record: the outcome (the last evaluation was reported already)."""
    return {
        SEARCH_SCORE: score if result.objective is not None else float("nan"),
        "key": trial.key,
        "kind": "final",
        "status": result.status,
        "error": result.error,
        "objective": result.objective if result.objective is not None else float("nan"),
        "step": result.steps,
        "weights_final": result.weights_final,
        "weights_mean": result.weights_mean,
        "train_seconds": result.train_seconds,
        "trace": result.trace,
        **where,
    }


def failure_report(trial: TrialSpec, error: str, where: dict[str, Any]) -> dict[str, Any]:
    return {
        "key": trial.key,
        "kind": "final",
        "status": "failed",
        "error": error,
        "objective": float("nan"),
        SEARCH_SCORE: float("nan"),
        **where,
    }


def placement(device: str) -> dict[str, Any]:
    """Where the trial ran: host name, address and Ray node id (several nodes may share one
    host), the device, and the GPU ids Ray assigned."""
    gpu_ids = [str(i) for i in ray.get_gpu_ids()]
    node_id = ray.get_runtime_context().get_node_id()[:8]
    return {
        "node": f"{socket.gethostname()} ({ray.util.get_node_ip_address()}, node {node_id})",
        "device": device,
        "gpu_ids": gpu_ids,
    }


def run_trial(
    config: dict[str, Any], spec: StudySpec, tasks: int, baseline: list[float] | None = None
) -> None:
    """The Tune function trainable: train one trial, reporting every evaluation.

    ``baseline``: the equal-weight trials' final metrics when the study's objective is Δm%
    (known from the Optuna phase on), so the sampler minimises the study's objective.
    """
    trial = trial_from_config(config, spec, tasks)
    device = choose_device(spec)
    where = placement(device)
    budget = Budget(
        steps=spec.budget.steps,
        eval_every=spec.budget.eval_every,
        trace_every=spec.budget.trace_every,
    )
    try:
        problem = problem_for(spec)
        balancer = make_balancer(trial.balancer, dict(trial.balancer_params))
        result = train(
            problem,
            balancer,
            budget,
            seed=trial.seed,
            on_epoch=lambda record: tune.report(
                epoch_report(trial, record, problem, where, baseline)
            ),
            device=device,
        )
    except Exception as exc:  # a user's problem may raise anything; record it, go on
        last_line = traceback.format_exception_only(type(exc), exc)[-1].strip()
        tune.report(failure_report(trial, last_line, where))
        return
    score = search_score(result.epochs[-1], problem, baseline)
    tune.report(final_report(trial, result, where, score))
