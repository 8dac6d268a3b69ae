"""What a worker tells the driver, as typed records (Tune carries them as plain dicts).

One Ray trial runs one pack: a single trial, or several trained together. Every
``tune.report`` carries one ``WorkerReport``: the evaluations since the last report (one
per member evaluated), the members that ended, and on the first report where the trial
runs. The driver's recorder applies each report once, in order (``seq``).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from gradsweep.arms import TrialStatus
from gradsweep.objectives import SEARCH_SCORE
from gradsweep.plan.trials import TrialSpec
from gradsweep.storage.records import EpochRow, TrialRecord

REPORT = "gradsweep"  # the result key that holds the report
# the reason of a trial whose worker failed (not its own code): launch may run it again
WORKER_FAILED = "worker failed: "


def trial_record(trial: TrialSpec) -> TrialRecord:
    """A planned trial's row as the writer takes it (launch plans, the recorder adds)."""
    return TrialRecord(
        key=trial.key,
        arm=trial.arm,
        balancer=trial.balancer,
        params=trial.params(),
        static_weights=list(trial.weights) if trial.weights is not None else None,
        alpha=trial.alpha,
        seed=trial.seed,
        also_arms=list(trial.also_arms) or None,
    )


@dataclass(frozen=True)
class Placement:
    """Where the trial runs: host (address, Ray node), device, the GPU ids Ray assigned."""

    node: str
    device: str
    gpu_ids: list[str] = field(default_factory=list)

    def describe_device(self) -> str:
        return f"{self.device} (ray gpu {','.join(self.gpu_ids)})" if self.gpu_ids else self.device


@dataclass(frozen=True)
class Evaluation:
    """One member's evaluation: its rows in the storage's long format, and its scores."""

    key: str
    epoch: int
    step: int
    normalized_loss: float
    search_score: float
    rows: list[EpochRow]


@dataclass(frozen=True)
class Outcome:
    """How one member ended; a failed member carries only its reason."""

    key: str
    status: TrialStatus  # completed or failed
    error: str | None = None
    traceback: str | None = None  # a failure that raised: where, for debugging
    normalized_loss: float | None = None
    search_score: float | None = None
    steps: int = 0
    weights_final: list[float] = field(default_factory=list)
    weights_mean: list[float] = field(default_factory=list)
    train_seconds: float = 0.0
    trace: list[tuple[int, list[float]]] = field(default_factory=list)
    raw_trace: list[tuple[int, list[float]]] = field(default_factory=list)  # applied weights
    # per task, in task order: test loss of the untrained network and at the end, and the
    # final primary metric
    initial_test_losses: list[float] = field(default_factory=list)
    test_losses: list[float] = field(default_factory=list)
    final_metrics: list[float | None] = field(default_factory=list)
    # the same on validation (empty without a validation split), its normalised loss and
    # the step of the best validation evaluation
    initial_val_losses: list[float] = field(default_factory=list)
    val_losses: list[float] = field(default_factory=list)
    val_final_metrics: list[float | None] = field(default_factory=list)
    val_normalized_loss: float | None = None
    best_val_step: int | None = None


def failure(key: str, error: str, traceback: str | None = None) -> Outcome:
    return Outcome(key=key, status=TrialStatus.FAILED, error=error, traceback=traceback)


def timeout_reason(seconds: float) -> str:
    """Why a trial that ran past ``budget.trial_timeout`` failed (the worker's check and
    the driver's stop say it alike)."""
    return f"exceeded budget.trial_timeout of {seconds:g} s"


@dataclass(frozen=True)
class WorkerReport:
    """One ``tune.report``: evaluations and endings of the pack's members since the last."""

    seq: int
    evaluations: list[Evaluation] = field(default_factory=list)
    outcomes: list[Outcome] = field(default_factory=list)
    placement: Placement | None = None

    def to_result(self) -> dict[str, Any]:
        """The Tune result: the report, and the search score on top for Optuna (a single
        trial's latest score; NaN for a pack, which Optuna never runs)."""
        scores = [e.search_score for e in self.evaluations] + [
            o.search_score for o in self.outcomes if o.search_score is not None
        ]
        keys = {e.key for e in self.evaluations} | {o.key for o in self.outcomes}
        score = scores[-1] if scores and len(keys) == 1 else math.nan
        return {REPORT: asdict(self), SEARCH_SCORE: score}

    @classmethod
    def from_result(cls, result: dict[str, Any] | None) -> WorkerReport | None:
        data = (result or {}).get(REPORT)
        if not isinstance(data, dict):
            return None
        placement = data.get("placement")
        return cls(
            seq=int(data["seq"]),
            evaluations=[
                Evaluation(**{**e, "rows": [EpochRow(**row) for row in e["rows"]]})
                for e in data.get("evaluations", [])
            ],
            outcomes=[
                Outcome(
                    **{
                        **o,
                        "trace": [(int(s), list(w)) for s, w in o.get("trace", [])],
                        "raw_trace": [(int(s), list(w)) for s, w in o.get("raw_trace", [])],
                    }
                )
                for o in data.get("outcomes", [])
            ],
            placement=Placement(**placement) if placement else None,
        )
