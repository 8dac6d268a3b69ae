"""The Optuna export's bulk writer stores what Optuna's own ``Study.add_trials`` stores.

Both write the same frozen trials into one real database (SQLite and PostgreSQL); Optuna
then loads both studies and every field a reader sees must agree: numbers, states,
params with their distributions, values (infinite ones too), user attributes and times.
"""

from __future__ import annotations

import datetime

import optuna
import pytest

from gradsweep.results.optuna_export import _add_trials, _exported_keys
from gradsweep.storage.engine import open_engine


def _optuna_url(db_url: str) -> str:
    """The URL the export hands Optuna: the engine's, with its driver (psycopg 3)."""
    return open_engine(db_url).url.render_as_string(hide_password=False)


def _frozen(count: int, offset: int = 0) -> list[optuna.trial.FrozenTrial]:
    distribution = optuna.distributions.FloatDistribution(0.0, 3.0)
    started = datetime.datetime(2026, 3, 1, 12, 0, 0)
    trials = []
    for i in range(offset, offset + count):
        values = [0.5 + i, float("inf") if i % 5 == 4 else 1.0 / (i + 1), -float(i)]
        trials.append(
            optuna.trial.create_trial(
                params={"w0": (i % 7) / 3, "w1": 1.0, "w2": 3.0 - (i % 7) / 3},
                distributions={name: distribution for name in ("w0", "w1", "w2")},
                values=values,
                user_attrs={"key": f"grid/{i}/s0", "seed": i % 3, "objective": None, "ok": True},
            )
        )
        trials[-1].datetime_start = started + datetime.timedelta(seconds=i)
        trials[-1].datetime_complete = started + datetime.timedelta(seconds=i, milliseconds=500)
    return trials


def _seen(study: optuna.Study) -> list[tuple[object, ...]]:
    return [
        (
            t.number,
            t.state,
            t.params,
            t.distributions,
            t.values,
            t.user_attrs,
            t.datetime_start,
            t.datetime_complete,
        )
        for t in study.get_trials(deepcopy=False)
    ]


def test_the_bulk_writer_stores_what_add_trials_stores(db_url: str) -> None:
    db_url = _optuna_url(db_url)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = optuna.storages.RDBStorage(db_url)
    directions = ["minimize"] * 3
    reference = optuna.create_study(study_name="by-optuna", storage=storage, directions=directions)
    optuna.create_study(study_name="by-gradsweep", storage=storage, directions=directions)
    first, second = _frozen(12), _frozen(5, offset=12)

    reference.add_trials(first + second)
    bulk_id = storage.get_study_id_from_name("by-gradsweep")
    _add_trials(storage, bulk_id, first)
    _add_trials(storage, bulk_id, second)  # numbers continue the study's

    loaded = optuna.load_study(study_name="by-gradsweep", storage=db_url)
    expected = _seen(optuna.load_study(study_name="by-optuna", storage=db_url))
    assert _seen(loaded) == expected
    assert [t.number for t in loaded.trials] == list(range(17))
    reference_id = storage.get_study_id_from_name("by-optuna")
    assert _exported_keys(storage, bulk_id) == {f"grid/{i}/s0" for i in range(17)}
    assert _exported_keys(storage, reference_id) == _exported_keys(storage, bulk_id)


def test_a_failing_bulk_write_leaves_the_study_as_it_was(db_url: str) -> None:
    db_url = _optuna_url(db_url)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = optuna.storages.RDBStorage(db_url)
    optuna.create_study(study_name="s", storage=storage, directions=["minimize"] * 3)
    study_id = storage.get_study_id_from_name("s")
    _add_trials(storage, study_id, _frozen(3))
    broken = _frozen(2, offset=3)
    broken[1].distributions["w0"] = "not a distribution"  # type: ignore[index]
    with pytest.raises(AttributeError):
        _add_trials(storage, study_id, broken)
    assert len(optuna.load_study(study_name="s", storage=db_url).trials) == 3
