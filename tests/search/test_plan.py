from __future__ import annotations

import pytest

from gradsweep.search.plan import optuna_trial, plan_up_front, planned_count, retrain_trials
from gradsweep.spec import parse_spec
from tests.test_spec import BASE


def test_up_front_plan_keys_are_unique_and_stable() -> None:
    spec = parse_spec(BASE)
    plan = plan_up_front(spec, 3)
    keys = [t.key for t in plan]
    assert len(keys) == len(set(keys)) == 2 * (1 + 12 + 3 + 2)
    assert keys == [t.key for t in plan_up_front(parse_spec(BASE), 3)]
    assert "static/w=1,1,1/s0" in keys and "gradnorm/a=1.5/s1" in keys
    assert "grid/w=0.75,0.75,1.5/s1" in keys and "random/i002/s0" in keys
    gradnorm = next(t for t in plan if t.key == "gradnorm/a=0.12/s0")
    assert gradnorm.balancer_params == {"alpha": 0.12, "lr": 0.025, "initial_loss": "first_batch"}
    grid = next(t for t in plan if t.arm == "grid")
    assert grid.balancer == "static" and grid.balancer_params["weights"] == list(grid.weights)


def test_optuna_and_retrain_trials() -> None:
    spec = parse_spec(BASE)
    trial = optuna_trial(spec, 7, (1.0, 0.5, 1.5))
    assert trial.key == "optuna/t0007/s0" and trial.seed == 0 and trial.weights == (1.0, 0.5, 1.5)
    retrain = retrain_trials(spec, {0: [2.0, 0.5, 0.5], 1: [1.0, 1.0, 1.0]})
    assert [t.key for t in retrain] == ["retrain/a=0.12/s0", "retrain/a=0.12/s1"]
    assert retrain[0].weights == pytest.approx((1.5, 0.75, 0.75))
    assert retrain_trials(spec, {}) == []


def test_planned_count_covers_every_arm() -> None:
    spec = parse_spec(BASE)
    assert planned_count(spec, 3) == len(plan_up_front(spec, 3)) + 2 * 1 + 2
