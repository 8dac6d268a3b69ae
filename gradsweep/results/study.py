"""A study's results as every reader needs them: read once, typed, scored.

``StudyResults.trials`` has fixed columns (``TRIAL_COLUMNS``), in which the scores keep
their own names: ``normalized_loss`` (mean over tasks of test L_i / L_i of the untrained
network), ``objective`` (the study's objective on **test**: the normalised loss, or Δm%
against the equal-weight trials, scored here: what every reader reports),
``selection_objective`` (the same on **validation**: what every choice reads; the test
objective for a study stored before validation existed, which ``selection`` then says),
and, for the Optuna sampler only, the worker's ``search_score`` (never stored). Each is
the trial's value at its checkpoint (``selection.checkpoint``: its final evaluation, or
its best on validation, ``checkpoint_step``). ``finals`` holds each trial's per-task
losses and primary metrics at that checkpoint: the Pareto view and Δm% read them.
"""

from __future__ import annotations

import functools
import gc
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime

import numpy as np
import pandas as pd
from sqlalchemy import Engine

from gradsweep.arms import (
    RETRAIN,
    STATIC_ARMS,
    Checkpoint,
    Direction,
    ObjectiveKind,
    Split,
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
    "selection_objective",  # the objective on validation (test for an older study)
    "normalized_loss",
    "checkpoint_step",  # the step of the evaluation the trial's scores are from
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


NO_VALIDATION = "selected on test: this study has no validation split"


@dataclass(frozen=True)
class Selection:
    """How this read chose: on which split, at which checkpoint, and (for a study without
    validation values) the one line every reader shows."""

    split: Split
    checkpoint: Checkpoint
    note: str | None = None

    def to_dict(self) -> dict[str, str | None]:
        return {"split": str(self.split), "checkpoint": str(self.checkpoint), "note": self.note}

    @classmethod
    def on_test(cls) -> Selection:
        """Trials without validation values: chosen on test, said once."""
        return cls(Split.TEST, Checkpoint.FINAL, NO_VALIDATION)


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
    selection: Selection = Selection(Split.TEST, Checkpoint.FINAL, NO_VALIDATION)  # noqa: RUF009
    seeds: tuple[int, ...] = ()  # the study's seeds: the static optimum ran on every one
    selection_baseline: list[float] | None = None  # the Δm% baseline on the selection split

    @property
    def objective_label(self) -> str:
        return self.objective.label

    def scored(self) -> pd.DataFrame:
        """Completed trials with a finite objective on test and on the selection split."""
        trials = self.trials
        done = trials[(trials["status"] == TrialStatus.COMPLETED) & trials["objective"].notna()]
        finite = np.isfinite(done["objective"].astype(float)) & np.isfinite(
            done["selection_objective"].astype(float)
        )
        return done[finite]

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
    the untrained network and at the trial's checkpoint, the primary metric there, and the
    same on validation (NaN for trials stored before validation existed)."""

    initial_test_loss: pd.DataFrame
    test_loss: pd.DataFrame
    metric_value: pd.DataFrame
    initial_val_loss: pd.DataFrame
    val_loss: pd.DataFrame
    val_metric_value: pd.DataFrame

    def normalized(self, split: Split) -> pd.Series:
        """Each trial's normalised loss on ``split`` (mean over tasks of L_i / L_i(0))."""
        if split is Split.TEST:
            return (self.test_loss / self.initial_test_loss).mean(axis=1, skipna=False)
        return (self.val_loss / self.initial_val_loss).mean(axis=1, skipna=False)

    def at_checkpoints(self, values: pd.DataFrame, task_names: list[str]) -> Finals:
        """These values with each trial's evaluation at its checkpoint (``values``:
        ``queries.checkpoint_values``) in place of its last."""
        if values.empty:
            return self
        replaced = {}
        for name in ("test_loss", "metric_value", "val_loss", "val_metric_value"):
            wide = values.pivot_table(index="key", columns="task", values=name, aggfunc="first")
            frame = getattr(self, name).copy()
            wide = wide.reindex(columns=task_names).reindex(frame.index.intersection(wide.index))
            frame.loc[wide.index] = wide.to_numpy(dtype=float)
            replaced[name] = frame
        return replace(self, **replaced)


def at_evaluation(finals: Finals, values: pd.DataFrame, task_names: list[str]) -> Finals:
    """``finals`` with every trial's values from ``values`` (one evaluation step's rows of
    ``queries.evaluation_values``); a trial without an evaluation there has none."""
    empty = {
        name: getattr(finals, name) * np.nan
        for name in ("test_loss", "metric_value", "val_loss", "val_metric_value")
    }
    return replace(finals, **empty).at_checkpoints(values, task_names)


def final_values(
    engine: Engine, study_id: int, trials: pd.DataFrame, task_names: list[str]
) -> Finals:
    """From the trials' rows where they hold them, else (trials from before revision 0006)
    from their evaluations."""
    stored = queries.trial_finals(engine, study_id, len(task_names))
    names = (*queries.FINAL_COLUMNS, *queries.VAL_FINAL_COLUMNS)
    parts = [frame.set_axis(task_names, axis=1) for frame in (stored[name] for name in names)]
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
        for i in range(3, 6):  # no validation values before revision 0006 either
            parts[i] = parts[i].reindex(parts[1].index)
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


def load_results(
    engine: Engine, study: str | int, lean: bool = False, checkpoint: Checkpoint | None = None
) -> StudyResults:
    """Read and score one study. ``lean`` leaves out the trial columns the comparison and
    the figures do not need (params, error, node, device, attempts, pack, started_at);
    ``checkpoint`` overrides the spec's ``selection.checkpoint``."""
    info = queries.find_study(engine, study)
    trials = queries.trials(engine, study=info.id, lean=lean)
    task_names = list(info.task_names)
    finals = final_values(engine, info.id, trials, task_names)
    spec_seeds, spec_checkpoint = _spec_selection(info)
    selection = choose_selection(finals, checkpoint or spec_checkpoint)
    trials, finals = at_checkpoint(engine, info.id, trials, finals, selection, task_names)
    scored = score_study(info, trials, finals, selection)
    directions = (
        [Direction(str(t["direction"])) for t in info.task_metrics] if info.task_metrics else None
    )
    seeds = spec_seeds or tuple(sorted({int(s) for s in trials["seed"]}))
    return StudyResults(
        id=info.id,
        name=info.name,
        status=StudyStatus(info.status),
        problem=info.problem,
        objective=ObjectiveKind(info.objective_name),
        task_names=task_names,
        directions=directions,
        planned=_planned(info),
        created_at=info.created_at,
        trials=scored.trials,
        finals=finals,
        baseline=scored.baseline,
        scoring_error=scored.error,
        info=info,
        selection=selection,
        seeds=seeds,
        selection_baseline=scored.selection_baseline,
    )


@dataclass(frozen=True)
class StudyScores:
    """Trials scored on test and on the selection split, and the Δm% baselines."""

    trials: pd.DataFrame
    baseline: list[float] | None
    selection_baseline: list[float] | None
    error: str | None


def score_study(
    info: StudyInfo, trials: pd.DataFrame, finals: Finals, selection: Selection
) -> StudyScores:
    """``objective`` on test and ``selection_objective`` on the selection split (the test
    objective again for a study without validation), in ``TRIAL_COLUMNS``."""
    scored = score(info, trials, finals.metric_value)
    if selection.split is Split.VALIDATION:
        chosen = score(
            info,
            scored.trials,
            finals.val_metric_value,
            "val_normalized_loss",
            "selection_objective",
        )
        scored_trials, selection_baseline = chosen.trials, chosen.baseline
        error = scored.error or chosen.error
    else:
        scored_trials = scored.trials.assign(selection_objective=scored.trials["objective"])
        selection_baseline, error = scored.baseline, scored.error
    columns = [c for c in TRIAL_COLUMNS if c in scored_trials.columns]
    return StudyScores(scored_trials[columns], scored.baseline, selection_baseline, error)


def rescored(
    results: StudyResults,
    trials: pd.DataFrame | None = None,
    finals: Finals | None = None,
    seeds: tuple[int, ...] | None = None,
) -> StudyResults:
    """The study scored again on some of its trials (``trials``, e.g. one seed left out:
    the Δm% baseline moves with them) or on other per-task values (``finals``, e.g. every
    trial at one evaluation step): what the verdicts' robustness recomputes."""
    finals = results.finals if finals is None else finals
    trials = (results.trials if trials is None else trials).copy()
    completed = (trials["status"] == TrialStatus.COMPLETED).to_numpy()
    for column, split in (
        ("normalized_loss", Split.TEST),
        ("val_normalized_loss", Split.VALIDATION),
    ):
        values = finals.normalized(split).reindex(trials["key"]).to_numpy(dtype=float)
        trials[column] = np.where(completed, values, np.nan)
    scored = score_study(results.info, trials, finals, results.selection)
    return replace(
        results,
        trials=scored.trials,
        finals=finals,
        baseline=scored.baseline,
        scoring_error=scored.error,
        seeds=results.seeds if seeds is None else seeds,
        selection_baseline=scored.selection_baseline,
    )


def _spec_selection(info: StudyInfo) -> tuple[tuple[int, ...], Checkpoint]:
    """The study's seeds and checkpoint rule, read from its stored canonical JSON (not
    ``parse_spec``, which builds the problem's import path and so imports torch: every
    read command loads a study, and they start without torch)."""
    try:
        data = json.loads(info.spec_text)
        seeds = tuple(int(seed) for seed in data.get("seeds", ()))
        checkpoint = Checkpoint((data.get("selection") or {}).get("checkpoint", "final"))
    except (ValueError, TypeError, AttributeError):  # not a stored spec (hand-built)
        return (), Checkpoint.FINAL
    return seeds, checkpoint


def choose_selection(finals: Finals, checkpoint: Checkpoint) -> Selection:
    """Validation when every completed trial has validation values; otherwise test, said
    once (a study stored before validation existed, or extended across that change)."""
    has = finals.val_loss.notna().all(axis=1)
    if len(has) and bool(has.all()):
        return Selection(Split.VALIDATION, checkpoint)
    if len(has) and bool(has.any()):
        note = (
            f"selected on test: {int((~has).sum())} of {len(has)} completed trials have no "
            "validation values"
        )
        return Selection(Split.TEST, Checkpoint.FINAL, note)
    return Selection(Split.TEST, Checkpoint.FINAL, NO_VALIDATION if len(has) else None)


def at_checkpoint(
    engine: Engine,
    study_id: int,
    trials: pd.DataFrame,
    finals: Finals,
    selection: Selection,
    task_names: list[str],
) -> tuple[pd.DataFrame, Finals]:
    """The trials' scores and per-task values at their checkpoints: the last evaluation,
    or the best on validation (its step in ``checkpoint_step``)."""
    trials = trials.copy()
    if selection.checkpoint is Checkpoint.FINAL:
        trials["checkpoint_step"] = None
        return trials, finals
    finals = finals.at_checkpoints(queries.checkpoint_values(engine, study_id), task_names)
    keys = trials["key"]
    completed = (trials["status"] == TrialStatus.COMPLETED) & trials["normalized_loss"].notna()
    for column, split in (
        ("normalized_loss", Split.TEST),
        ("val_normalized_loss", Split.VALIDATION),
    ):
        values = finals.normalized(split).reindex(keys).to_numpy(dtype=float)
        trials[column] = np.where(completed, values, np.nan)
    trials["checkpoint_step"] = trials["best_val_step"].where(completed, None)
    return trials, finals


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
