"""Plain values the writer takes: storage knows nothing of torch, Ray or the trainers."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from gradsweep.arms import TrialStatus


@dataclass(frozen=True)
class StudyRecord:
    name: str
    spec_text: str
    spec_hash: str
    problem: str
    task_names: list[str]
    objective_name: str
    objective_direction: str = "min"
    task_metrics: list[dict[str, str]] | None = None
    planned: int | None = None


@dataclass(frozen=True)
class TrialRecord:
    key: str
    arm: str
    balancer: str
    params: dict[str, Any]
    static_weights: list[float] | None
    alpha: float | None
    seed: int
    also_arms: list[str] | None = None  # other arms asking for this same weighting


@dataclass(frozen=True)
class EpochRow:
    """One task at one evaluation; epoch 0 is the untrained network (no train loss)."""

    epoch: int
    step: int
    task: str
    train_loss: float | None
    test_loss: float | None
    metric_name: str | None
    metric_value: float | None
    metrics: dict[str, float] = field(default_factory=dict)
    weight: float | None = None
    # on the validation split (None without one)
    val_loss: float | None = None
    val_metric_value: float | None = None
    val_metrics: dict[str, float] | None = None


@dataclass(frozen=True)
class TrialOutcome:
    status: TrialStatus
    error: str | None
    node: str | None
    device: str | None
    train_seconds: float | None
    normalized_loss: float | None
    weights_final: list[float] | None
    weights_mean: list[float] | None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    # per task, in task order (see models.Trial)
    initial_test_losses: list[float] | None = None
    test_losses: list[float] | None = None
    final_metrics: list[float | None] | None = None
    traceback: str | None = None  # of a failure that raised
    # the same on validation, and the step of the best validation evaluation
    initial_val_losses: list[float] | None = None
    val_losses: list[float] | None = None
    val_final_metrics: list[float | None] | None = None
    val_normalized_loss: float | None = None
    best_val_step: int | None = None


@dataclass(frozen=True)
class TrialEnd:
    """One trial's ending for ``finish_trials``: its outcome and the rows not written yet."""

    trial_id: int
    outcome: TrialOutcome
    rows: Sequence[EpochRow] = ()
    trace: Sequence[tuple[int, list[float]]] = ()
    raw_trace: Sequence[tuple[int, list[float]]] = ()  # applied weights, where they differ


def failed_outcome(error: str, traceback: str | None = None) -> TrialOutcome:
    return TrialOutcome(
        status=TrialStatus.FAILED,
        error=error,
        traceback=traceback,
        node=None,
        device=None,
        train_seconds=None,
        normalized_loss=None,
        weights_final=None,
        weights_mean=None,
    )
