"""A study's results as every reader needs them: read once, typed, scored.

``StudyResults.trials`` has fixed columns (``TRIAL_COLUMNS``), in which three scores keep
three names: ``normalized_loss`` (stored per trial: mean over tasks of test L_i / L_i of
the untrained network), ``objective`` (the study's objective: the normalised loss, or Δm%
against the equal-weight trials, scored here) and, for the Optuna sampler only, the
worker's ``search_score`` (never stored). ``finals`` holds each trial's per-task test
losses at its first and last evaluation and its final primary metrics: the Pareto view
and Δm% read them.
"""

from __future__ import annotations

import functools
import gc
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import pandas as pd
from sqlalchemy import Engine

from gradsweep.arms import (
    RETRAIN,
    STATIC_ARMS,
    Direction,
    ObjectiveKind,
    StudyStatus,
    TrialStatus,
    is_adaptive,
)
from gradsweep.objectives import score
from gradsweep.plan import planned_count
from gradsweep.spec import RETRAINED, SpecError, parse_spec
from gradsweep.storage import queries
from gradsweep.storage.queries import StudyInfo

TRIAL_COLUMNS = (
    "study",
    "key",
    "arm",
    "balancer",
    "seed",
    "also_arms",  # the other arms that asked for this static weighting (trained once)
    "status",
    "static_weights",  # a static trial's fixed weights, else None
    "alpha",  # GradNorm's α (and the α a retrain trial came from), else None
    "objective",
    "normalized_loss",
    "weights_mean",
    "weights_final",
    "train_seconds",
    "node",
    "device",
    "pack",
    "attempts",
    "started_at",
    "finished_at",
    "error",
    "traceback",  # of a failure that raised: the worker's Python traceback
    "params",
)


@dataclass(frozen=True)
class StudyResults:
    """One study: its description with closed sets as enums, its scored trials, the
    per-task final values, and the Δm% baseline (None for a normalised-loss study, or
    while the equal-weight trials have not finished: ``scoring_error`` then says so)."""

    id: int
    name: str
    status: StudyStatus
    problem: str
    objective: ObjectiveKind
    task_names: list[str]
    directions: list[Direction] | None
    planned: int | None
    created_at: datetime
    trials: pd.DataFrame
    finals: Finals
    baseline: list[float] | None
    scoring_error: str | None
    info: StudyInfo

    @property
    def objective_label(self) -> str:
        return self.objective.label

    def scored(self) -> pd.DataFrame:
        """Completed trials with a finite objective."""
        trials = self.trials
        done = trials[(trials["status"] == TrialStatus.COMPLETED) & trials["objective"].notna()]
        return done[np.isfinite(done["objective"].astype(float))]

    def static(self) -> pd.DataFrame:
        """Scored trials of the arms that search static weightings."""
        done = self.scored()
        return done[done["arm"].isin(STATIC_ARMS)]

    def adaptive(self) -> pd.DataFrame:
        done = self.scored()
        return done[done["balancer"].map(is_adaptive).astype(bool)]

    def retrain(self) -> pd.DataFrame:
        done = self.scored()
        return done[done["arm"] == RETRAIN]

    def adaptive_keys(self) -> list[str]:
        """Every adaptive trial's key, whatever its status (for weight traces)."""
        adaptive = self.trials["balancer"].map(is_adaptive).astype(bool)
        return self.trials.loc[adaptive, "key"].tolist()

    def best_objective(self) -> float | None:
        done = self.scored()
        return float(done["objective"].min()) if len(done) else None

    def counts(self) -> dict[str, int]:
        """Trials by status, every status present (0 when none)."""
        found = self.trials["status"].value_counts().to_dict() if len(self.trials) else {}
        return {str(status): int(found.get(str(status), 0)) for status in TrialStatus}

    @property
    def task_value_name(self) -> str:
        """What ``task_values`` holds, for axis titles and the JSON."""
        if self.objective is ObjectiveKind.DELTA_M:
            return "metric change vs equal weights, % (lower is better)"
        return "test loss / test loss at initialisation"

    @functools.cached_property
    def task_values(self) -> pd.DataFrame:
        """Per trial (index: key), one column per task, lower better: the normalised test
        loss ``L_i / L_i(0)``, or for a Δm% study ``100·s_i·(M_i − B_i)/B_i`` (whose mean
        over tasks is the trial's Δm%). Only trials with every value; computed once."""
        finals = self.finals
        if self.objective is ObjectiveKind.DELTA_M:
            if self.baseline is None or self.directions is None:
                return pd.DataFrame(columns=self.task_names)
            base = np.array(self.baseline, dtype=float)
            signs = np.array([1.0 if d is Direction.MIN else -1.0 for d in self.directions])
            values = 100.0 * signs * (finals.metric_value - base) / base
        else:
            values = finals.test_loss / finals.initial_test_loss
        values = values.replace([np.inf, -np.inf], np.nan).dropna()
        return values

    @functools.cached_property
    def static_weighting_values(self) -> tuple[np.ndarray, np.ndarray]:
        """Each static weighting (rows of weights) and its per-task values, mean over
        seeds; computed once (the Pareto view's and the dashboard's)."""
        values = self.task_values
        static = self.static()
        static = static[static["key"].isin(values.index)]
        tasks = len(self.task_names)
        if static.empty:
            return np.empty((0, tasks)), np.empty((0, tasks))
        weights = np.round(np.array(static["static_weights"].tolist(), dtype=float), 9)
        unique, inverse = unique_rows(weights)
        rows = values.loc[static["key"]].to_numpy(dtype=float)
        sums = np.zeros((len(unique), rows.shape[1]))
        np.add.at(sums, inverse, rows)
        return unique, sums / np.bincount(inverse, minlength=len(unique))[:, None]

    def gradnorm_weights_mean(self, alpha: float) -> dict[int, list[float]]:
        """Per seed, ``E_t[w(t)]`` of the completed GradNorm trial at ``alpha``."""
        trials = self.trials
        runs = trials[
            (trials["arm"] == RETRAINED)
            & (trials["status"] == TrialStatus.COMPLETED)
            & (trials["alpha"] == alpha)
        ]
        return {int(row.seed): list(row.weights_mean) for row in runs.itertuples()}


def unique_rows(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct rows in lexicographic order, and each input row's index among them."""
    unique, inverse = np.unique(points, axis=0, return_inverse=True)
    return unique, inverse.reshape(-1)


def belongs_to(trials: pd.DataFrame, arm: str) -> pd.Series:
    """Which trials are the arm's: its own, and those another arm trained for it (a static
    weighting the grid also holds is one trial of both; ``also_arms`` names the others)."""
    own = trials["arm"] == arm
    if "also_arms" not in trials.columns:
        return own
    claimed = trials["also_arms"].map(lambda others: isinstance(others, list) and arm in others)
    return own | claimed.astype(bool)


def _planned(info: StudyInfo) -> int | None:
    """The stored planned count, or for a study from before it was stored, its spec's."""
    if info.planned is not None:
        return int(info.planned)
    try:
        spec = parse_spec(info.spec_text, source=f"study {info.name}")
    except SpecError:
        return None
    return planned_count(spec, len(info.task_names))


MAX_KEYS_IN_QUERY = 1000  # beyond, read the whole study (SQLite caps bound parameters)


@dataclass(frozen=True)
class Finals:
    """Per completed trial (index: key) and task (columns, in task order): the test loss of
    the untrained network and at the last evaluation, and the final primary metric."""

    initial_test_loss: pd.DataFrame
    test_loss: pd.DataFrame
    metric_value: pd.DataFrame


def final_values(
    engine: Engine, study_id: int, trials: pd.DataFrame, task_names: list[str]
) -> Finals:
    """From the trials' rows where they hold them, else (trials from before revision 0006)
    from their evaluations."""
    stored = queries.trial_finals(engine, study_id, len(task_names))
    parts = [
        frame.set_axis(task_names, axis=1)
        for frame in (stored[name] for name in queries.FINAL_COLUMNS)
    ]
    done = trials.loc[trials["status"] == TrialStatus.COMPLETED, "key"]
    missing = done[~done.isin(parts[1].index)].tolist()
    if missing:
        chosen = missing if len(missing) <= MAX_KEYS_IN_QUERY else None
        older = queries.final_task_values(engine, study_id, trial_keys=chosen)
        older = older[older["key"].isin(missing)]
        for i, column in enumerate(("initial_test_loss", "test_loss", "metric_value")):
            wide = older.pivot_table(index="key", columns="task", values=column, aggfunc="first")
            wide = wide.reindex(columns=task_names)
            parts[i] = pd.concat([parts[i], wide]) if len(parts[i]) else wide
    return Finals(*parts)


@contextmanager
def collector_paused() -> Iterator[None]:
    """Python's cyclic collector off while a study is read and drawn, then back on.

    Reading 50,000 trials allocates hundreds of thousands of small lists; the collector's
    passes over them were a third of a study page's server time. Nothing built here forms
    reference cycles, so deferring collection to the end loses nothing.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def load_results(engine: Engine, study: str | int, lean: bool = False) -> StudyResults:
    """Read and score one study. ``lean`` leaves out the trial columns the comparison and
    the figures do not need (params, error, node, device, attempts, pack, started_at)."""
    info = queries.find_study(engine, study)
    trials = queries.trials(engine, study=info.id, lean=lean)
    finals = final_values(engine, info.id, trials, list(info.task_names))
    scored = score(info, trials, finals.metric_value)
    columns = [c for c in TRIAL_COLUMNS if c in scored.trials.columns]
    directions = (
        [Direction(str(t["direction"])) for t in info.task_metrics] if info.task_metrics else None
    )
    return StudyResults(
        id=info.id,
        name=info.name,
        status=StudyStatus(info.status),
        problem=info.problem,
        objective=ObjectiveKind(info.objective_name),
        task_names=list(info.task_names),
        directions=directions,
        planned=_planned(info),
        created_at=info.created_at,
        trials=scored.trials[columns],
        finals=finals,
        baseline=scored.baseline,
        scoring_error=scored.error,
        info=info,
    )


@dataclass(frozen=True)
class StudySummary:
    """A line of the study list: the same figures ``status`` shows for one study."""

    id: int
    name: str
    problem: str
    status: StudyStatus
    objective: ObjectiveKind
    planned: int | None
    counts: dict[str, int]
    best_objective: float | None
    created_at: datetime

    def to_dict(self) -> dict[str, object]:
        return {
            "study": self.name,
            "id": self.id,
            "status": str(self.status),
            "problem": self.problem,
            "planned": self.planned,
            **self.counts,
            "objective": str(self.objective),
            "best_objective": self.best_objective,
            "created_at": self.created_at,
        }


@dataclass(frozen=True)
class FailedTrial:
    """A failed trial as a person debugs it: its key, the one-line reason (naming the
    user's file:line where it can) and the worker's traceback when the failure raised."""

    key: str
    error: str
    traceback: str | None

    def to_dict(self) -> dict[str, str | None]:
        return {"key": self.key, "error": self.error, "traceback": self.traceback}


def failed_trials(engine: Engine, study: str | int) -> list[FailedTrial]:
    """Every failed trial of a study, in the order they were planned."""
    failed = queries.trials(engine, study=study, status=str(TrialStatus.FAILED))
    return [
        FailedTrial(
            key=str(row.key),
            error=str(row.error or "no reason recorded"),
            traceback=None if pd.isna(row.traceback) else str(row.traceback),
        )
        for row in failed.itertuples()
    ]


def summarise(results: StudyResults) -> StudySummary:
    return StudySummary(
        id=results.id,
        name=results.name,
        problem=results.problem,
        status=results.status,
        objective=results.objective,
        planned=results.planned,
        counts=results.counts(),
        best_objective=results.best_objective(),
        created_at=results.created_at,
    )


def study_list(engine: Engine) -> list[StudySummary]:
    """Every study, newest first, each scored by its own objective."""
    names = queries.studies(engine)["name"].tolist()
    return [summarise(load_results(engine, name, lean=True)) for name in names]
