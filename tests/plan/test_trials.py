from __future__ import annotations

import json
from dataclasses import asdict

import pytest

from gradsweep.plan import planned_count
from gradsweep.plan.trials import (
    TrialSpec,
    optuna_trial,
    plan_up_front,
    retrain_trials,
)
from gradsweep.spec import parse_spec
from tests.test_spec import BASE


def test_up_front_plan_keys_are_unique_and_stable() -> None:
    spec = parse_spec(BASE)
    plan = plan_up_front(spec, 3)
    keys = [t.key for t in plan]
    assert len(keys) == len(set(keys)) == 2 * (1 + 12 + 3 + 2)
    assert keys == [t.key for t in plan_up_front(parse_spec(BASE), 3)]
    assert keys[:3] == ["static/w=1,1,1/s0", "grid/w=2.25,0.75,0/s0", "grid/w=2.25,0,0.75/s0"]
    assert "static/w=1,1,1/s0" in keys and "gradnorm/a=1.5/s1" in keys
    assert "grid/w=0.75,0.75,1.5/s1" in keys and "random/i002/s0" in keys
    assert "grid/w=3,0,0/s0" not in keys  # no vertices unless asked


def test_plan_order_is_arm_by_arm_within_each_seed() -> None:
    plan = plan_up_front(parse_spec(BASE), 3)
    arms = ["static", "grid", "random", "gradnorm"]
    order = [(t.seed, arms.index(t.arm)) for t in plan]
    assert order == sorted(order)
    assert [t.seed for t in plan] == [0] * 18 + [1] * 18


def test_trials_carry_their_balancer_parameters() -> None:
    plan = plan_up_front(parse_spec(BASE), 3)
    gradnorm = next(t for t in plan if t.key == "gradnorm/a=0.12/s0")
    assert gradnorm.balancer == "gradnorm" and gradnorm.alpha == 0.12 and gradnorm.weights is None
    assert gradnorm.balancer_params == {"alpha": 0.12, "lr": 0.025, "initial_loss": "first_batch"}
    grid = next(t for t in plan if t.arm == "grid")
    assert grid.balancer == "static" and grid.balancer_params["weights"] == list(grid.weights or ())
    assert grid.params() == {"balancer": "static", "weights": [2.25, 0.75, 0.0], "seed": 0}
    for trial in plan:
        assert json.loads(json.dumps(trial.params())) == trial.params()
        assert trial.params()["seed"] == trial.seed


def test_random_points_are_the_same_for_every_seed() -> None:
    plan = plan_up_front(parse_spec(BASE), 3)
    by_key = {t.key: t for t in plan}
    for i in range(3):
        assert by_key[f"random/i{i:03d}/s0"].weights == by_key[f"random/i{i:03d}/s1"].weights


def test_a_trial_survives_its_config_round_trip() -> None:
    trial = plan_up_front(parse_spec(BASE), 3)[5]
    data = json.loads(json.dumps(asdict(trial)))
    data["weights"] = tuple(data["weights"])
    data["also_arms"] = tuple(data["also_arms"])
    assert TrialSpec(**data) == trial


def test_optuna_runs_on_the_first_seed() -> None:
    spec = parse_spec(BASE.replace("seeds: [0, 1]", "seeds: [4, 1]"))
    trial = optuna_trial(spec, 7, (1.0, 0.5, 1.5))
    assert trial.key == "optuna/t0007/s4" and trial.seed == 4 and trial.weights == (1.0, 0.5, 1.5)
    assert trial.arm == "optuna" and trial.balancer_params == {"weights": [1.0, 0.5, 1.5]}


def test_retrain_uses_the_mean_over_seeds_renormalised() -> None:
    spec = parse_spec(BASE)
    retrain = retrain_trials(spec, {0: [2.0, 0.5, 0.5], 1: [1.0, 1.0, 1.0]})
    assert [t.key for t in retrain] == ["retrain/a=0.12/s0", "retrain/a=0.12/s1"]
    assert retrain[0].weights == pytest.approx((1.5, 0.75, 0.75))
    assert retrain[0].weights == retrain[1].weights and retrain[0].alpha == 0.12
    assert retrain[0].balancer == "static" and retrain[0].arm == "retrain"
    unnormalised = retrain_trials(spec, {0: [4.0, 1.0, 1.0]})
    assert unnormalised[0].weights == pytest.approx((2.0, 0.5, 0.5))
    assert retrain_trials(spec, {}) == []
    no_retrain = parse_spec(BASE.replace("  retrain: {alpha: 0.12}\n", ""))
    assert retrain_trials(no_retrain, {0: [1.0, 1.0, 1.0]}) == []


def test_planned_count_covers_every_arm() -> None:
    spec = parse_spec(BASE)
    # optuna 2 on the first seed and its 2 best confirmed on the second; retrain 1 a seed
    assert planned_count(spec, 3) == len(plan_up_front(spec, 3)) + 2 + 2 + 2 == 42
    with_vertices = parse_spec(BASE.replace("4}", "4, include_vertices: true}"))
    assert planned_count(with_vertices, 3) == 48 == len(plan_up_front(with_vertices, 3)) + 6
    only_optuna = parse_spec(BASE.split("arms:")[0] + "arms:\n  optuna: {n_trials: 9}\n")
    assert planned_count(only_optuna, 3) == 9 + 3 and plan_up_front(only_optuna, 3) == []


ADAPTIVE = (
    BASE.split("arms:")[0]
    + """arms:
  static: {weights: [[1, 1, 1]]}
  uncertainty: {}
  dwa: {temperature: 2}
  rlw: {distribution: dirichlet, concentration: 0.5}
"""
)


def test_other_adaptive_arms_run_on_every_seed_with_their_parameters() -> None:
    spec = parse_spec(ADAPTIVE)
    plan = {t.key: t for t in plan_up_front(spec, 3)}
    assert list(plan) == [
        "static/w=1,1,1/s0",
        "uncertainty/lr=0.025/s0",
        "dwa/t=2/s0",
        "rlw/dirichlet=0.5/s0",
        "static/w=1,1,1/s1",
        "uncertainty/lr=0.025/s1",
        "dwa/t=2/s1",
        "rlw/dirichlet=0.5/s1",
    ]
    assert planned_count(spec, 3) == 8
    dwa = plan["dwa/t=2/s1"]
    assert (dwa.arm, dwa.balancer, dwa.balancer_params) == ("dwa", "dwa", {"temperature": 2.0})
    assert plan["uncertainty/lr=0.025/s0"].balancer_params == {"lr": 0.025}
    rlw = plan["rlw/dirichlet=0.5/s0"]
    assert rlw.balancer_params == {"distribution": "dirichlet", "concentration": 0.5}
    assert rlw.alpha is None and rlw.weights is None
    normal = parse_spec(ADAPTIVE.replace("{distribution: dirichlet, concentration: 0.5}", "{}"))
    assert "rlw/normal/s0" in {t.key for t in plan_up_front(normal, 3)}
