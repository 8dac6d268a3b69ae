"""Every arm of a study as one multi-objective Optuna study, for optuna-dashboard.

The Optuna arm's own study holds only its suggestions, with the raw ``u0 … u{T-1}``. The
export writes every completed trial with per-task values (static, grid, random, Optuna,
retrain and every adaptive configuration) into an Optuna study in the same database:
params ``w0 … w{T-1}`` (a static trial's weights, an adaptive trial's time-averaged
``E_t[w]``), one value per task (lower is better: the Pareto view's values), and user
attributes ``arm``, ``balancer``, ``seed``, ``key``, ``objective`` (test),
``selection_objective`` (validation, what chose) and ``static_optimum`` (whether the trial
is one of the static optimum's, as ``compare`` chooses it). optuna-dashboard's
Pareto-front plot and its tables then work on it. A trial already exported (its key) is
not added again.

The new trials are written in one transaction through Optuna's own storage models
(``_rdb.models``, the schema its ``RDBStorage`` defines and migrates): ``Study.add_trials``
commits each trial on its own (about 80 trials/s on SQLite), which made a 50,000-trial
study's export take ten minutes.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import optuna
import pandas as pd
from optuna.storages._rdb import models
from sqlalchemy import Engine, func, insert, inspect, select

from gradsweep.arms import TrialStatus
from gradsweep.errors import GradsweepError
from gradsweep.results.selection import study_optimum
from gradsweep.results.study import StudyResults, load_results

# user attributes every exported trial carries
ATTRIBUTES = (
    "arm",
    "balancer",
    "seed",
    "key",
    "objective",
    "selection_objective",
    "static_optimum",
)


@dataclass(frozen=True)
class OptunaExport:
    """What an export did: the Optuna study's name, trials added and already there."""

    name: str
    added: int
    present: int


def _weights(row: pd.Series) -> list[float] | None:
    weights = row["static_weights"]
    if not isinstance(weights, list):
        weights = row["weights_mean"]
    return [float(w) for w in weights] if isinstance(weights, list) else None


def exported_trials(results: StudyResults) -> list[optuna.trial.FrozenTrial]:
    """One frozen Optuna trial per completed trial with a value for every task."""
    values = results.task_values
    tasks = len(results.task_names)
    distribution = optuna.distributions.FloatDistribution(0.0, float(tasks))
    choice = None if results.scoring_error else study_optimum(results)
    optimum_keys = set(choice.optimum.keys) if choice is not None else set()
    frozen = []
    for _, row in results.trials.iterrows():
        weights = _weights(row)
        if (
            row["status"] != TrialStatus.COMPLETED
            or row["key"] not in values.index
            or weights is None
        ):
            continue
        objective, chosen_by = row["objective"], row["selection_objective"]
        attributes = {
            "arm": str(row["arm"]),
            "balancer": str(row["balancer"]),
            "seed": int(row["seed"]),
            "key": str(row["key"]),
            "objective": None if pd.isna(objective) else float(objective),
            "selection_objective": None if pd.isna(chosen_by) else float(chosen_by),
            "static_optimum": str(row["key"]) in optimum_keys,
        }
        frozen.append(
            optuna.trial.create_trial(
                params={f"w{i}": min(max(w, 0.0), float(tasks)) for i, w in enumerate(weights)},
                distributions={f"w{i}": distribution for i in range(tasks)},
                values=[float(v) for v in values.loc[row["key"]]],
                user_attrs=attributes,
            )
        )
    return frozen


def _add_trials(
    storage: optuna.storages.RDBStorage, study_id: int, trials: Sequence[optuna.trial.FrozenTrial]
) -> None:
    """Write ``trials`` (complete, validated by ``create_trial``) in one transaction.

    Numbers continue the study's; the study row is locked first, as Optuna locks it to
    number a trial, so a concurrent writer cannot take the same numbers. Rows are inserted
    in bulk (the trials with their ids returned in order, then every child table at once):
    the ORM's unit of work alone took 2 ms a trial.
    """
    studies, table = models.StudyModel.__table__, models.TrialModel.__table__
    with storage.engine.begin() as conn:
        conn.execute(
            select(studies.c.study_id).where(studies.c.study_id == study_id).with_for_update()
        )
        last = conn.execute(
            select(func.max(table.c.number)).where(table.c.study_id == study_id)
        ).scalar()
        first = 0 if last is None else int(last) + 1
        columns = [
            (attribute.key, attribute.columns[0].name)
            for attribute in inspect(models.TrialModel).column_attrs
            if attribute.columns[0].name != "trial_id"
        ]
        rows = [
            _trial_row(study_id, number, frozen, columns)
            for number, frozen in enumerate(trials, start=first)
        ]
        returning = insert(table).returning(table.c.trial_id, sort_by_parameter_order=True)
        ids = conn.execute(returning, rows).scalars().all()
        params, values, attributes = _child_rows(ids, trials)
        for model, children in (
            (models.TrialParamModel, params),
            (models.TrialValueModel, values),
            (models.TrialUserAttributeModel, attributes),
        ):
            if children:
                conn.execute(insert(model.__table__), children)


def _exported_keys(storage: optuna.storages.RDBStorage, study_id: int) -> set[str]:
    """The gradsweep keys already in the Optuna study (its trials' ``key`` attribute).

    Read straight from the attribute table: loading every frozen trial to read one
    attribute took longer than the export itself.
    """
    trials, attributes = models.TrialModel.__table__, models.TrialUserAttributeModel.__table__
    query = (
        select(attributes.c.value_json)
        .join(trials, trials.c.trial_id == attributes.c.trial_id)
        .where(trials.c.study_id == study_id, attributes.c.key == "key")
    )
    with storage.engine.connect() as conn:
        return {json.loads(value) for value in conn.execute(query).scalars()}


def _trial_row(
    study_id: int,
    number: int,
    frozen: optuna.trial.FrozenTrial,
    columns: Sequence[tuple[str, str]],
) -> dict[str, Any]:
    """The ``trials`` row of ``frozen`` as Optuna's own model stores it.

    A transient model converts the datetimes (naive local time before Optuna 5, naive UTC
    since); its ``columns`` (attribute, column name) then read back what would be written.
    """
    trial = models.TrialModel(study_id=study_id, number=number, state=frozen.state)
    trial.datetime_start = frozen.datetime_start
    trial.datetime_complete = frozen.datetime_complete
    return {column: getattr(trial, attribute) for attribute, column in columns}


def _child_rows(
    ids: Sequence[int], trials: Sequence[optuna.trial.FrozenTrial]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    """Each trial's params, values and user attributes as rows of Optuna's tables."""
    params, values, attributes = [], [], []
    for trial_id, frozen in zip(ids, trials, strict=True):
        for name, value in frozen.params.items():
            distribution = frozen.distributions[name]
            params.append(
                {
                    "trial_id": trial_id,
                    "param_name": name,
                    "param_value": distribution.to_internal_repr(value),
                    "distribution_json": optuna.distributions.distribution_to_json(distribution),
                }
            )
        for objective, value in enumerate(frozen.values or ()):
            stored, kind = models.TrialValueModel.value_to_stored_repr(value)
            values.append(
                {"trial_id": trial_id, "objective": objective, "value": stored, "value_type": kind}
            )
        for key, value in frozen.user_attrs.items():
            attributes.append({"trial_id": trial_id, "key": key, "value_json": json.dumps(value)})
    return params, values, attributes


def _study(name: str, storage: optuna.storages.RDBStorage, tasks: int) -> optuna.Study:
    directions = [optuna.study.StudyDirection.MINIMIZE] * tasks
    try:
        study = optuna.create_study(
            study_name=name, storage=storage, directions=directions, load_if_exists=True
        )
    except ValueError as exc:
        raise GradsweepError(f"--optuna {name}: {exc}") from None
    if len(study.directions) != tasks:
        raise GradsweepError(
            f"--optuna {name}: an Optuna study of that name exists with "
            f"{len(study.directions)} objective(s), not one per task ({tasks}); "
            "choose another name"
        )
    return study


def export_optuna(engine: Engine, study: str, name: str) -> OptunaExport:
    """Write (or complete) the Optuna study ``name`` from gradsweep study ``study``."""
    results = load_results(engine, study)
    if results.scoring_error is not None:
        raise GradsweepError(results.scoring_error)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    url = engine.url.render_as_string(hide_password=False)
    storage = optuna.storages.RDBStorage(url)
    target = _study(name, storage, len(results.task_names))
    study_id = storage.get_study_id_from_name(name)
    present = _exported_keys(storage, study_id)
    new = [t for t in exported_trials(results) if t.user_attrs["key"] not in present]
    if new:
        _add_trials(storage, study_id, new)
    with warnings.catch_warnings():  # experimental in Optuna 3 and 4
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        target.set_metric_names(list(results.task_names))
    return OptunaExport(name, len(new), len(present))
