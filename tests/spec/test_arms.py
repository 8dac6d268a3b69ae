"""Balancer arms from their declarations: a user's by import path, hashes kept, one-line errors."""

from __future__ import annotations

import pytest

from gradsweep.plan import plan_up_front, planned_count
from gradsweep.spec import SpecError, dry_run_problem, parse_spec, spec_json_schema

PLUG_IN = "examples.inverse_norm_balancer:InverseGradientNorm"
BROKEN = "tests.trainers.broken_balancers"
TOY = "{name: toy, params: {tasks: 2, train_samples: 40, test_samples: 20, batch_size: 20}}"
EVERY_ARM = """study: every
problem: {name: toy, params: {tasks: 3}}
budget: {steps: 40}
seeds: [0, 1]
arms:
  static: {weights: [[1, 1, 1]]}
  grid: {resolution: 3}
  random: {n: 2}
  optuna: {n_trials: 2}
  gradnorm: {alphas: [0.12, 1.5], lr: 0.01}
  uncertainty: {}
  dwa: {temperature: 3}
  rlw: {distribution: dirichlet}
  retrain: {alpha: 1.5}
"""


def with_arms(arms: str) -> str:
    return f"study: s\nproblem: {TOY}\nbudget: {{steps: 10}}\narms:\n{arms}"


def test_hashes_and_stored_text_are_those_of_before_the_declarations() -> None:
    """Computed by the last release before balancers were declared: stored studies resume."""
    spec = parse_spec(EVERY_ARM)
    assert spec.spec_hash == "f95f3908a7025cc86e2ecf80edac335b83144997b4e8c9f5a9d48edce5f640c1"
    plain = parse_spec("study: plain\nproblem: toy\nbudget: {steps: 10}\n"
                       "arms: {static: {weights: [[1, 1]]}}\n")  # fmt: skip
    assert plain.spec_hash == "3a641199bdc1de2b0fb0f29fa28930e7e9468985cf0038b5ca1a39ebc8325bdb"
    assert '"dwa":null,"gradnorm":null' in plain.canonical_text()
    assert planned_count(spec, 3) == 34  # with the Optuna arm's confirm phase


def test_a_users_balancer_is_an_arm_like_a_built_in() -> None:
    spec = parse_spec(with_arms(f"  static: {{weights: [[1, 1]]}}\n  {PLUG_IN}: {{power: 0.5}}\n"))
    assert spec.arms.names() == ["static", "inverse_norm"]
    (arm,) = spec.arms.balancer_arms()
    assert (arm.key, arm.name, arm.params.power, arm.params.eps) == (
        PLUG_IN, "inverse_norm", 0.5, 1e-8,
    )  # fmt: skip
    trials = plan_up_front(spec, 2)
    assert [t.key for t in trials] == ["static/w=1,1/s0", "inverse_norm/power=0.5,eps=1e-08/s0"]
    assert (trials[1].arm, trials[1].balancer) == ("inverse_norm", PLUG_IN)
    assert planned_count(spec, 2) == 2
    again = parse_spec(spec.canonical_text())  # as stored, and read back
    assert again == spec and again.spec_hash == spec.spec_hash
    dry_run_problem(spec)


@pytest.mark.parametrize(
    ("arm", "message"),
    [
        ("nopkg.nomodule:X", "arms.nopkg.nomodule:X: balancer 'nopkg.nomodule:X': cannot import "
                             "'nopkg.nomodule'"),
        (f"{BROKEN}:NotABalancer", "is a class, not a subclass of gradsweep.trainers.Balancer"),
        (f"{BROKEN}:NoDeclaration", "NoDeclaration has no declaration"),
        (f"{BROKEN}:Builtin", "its declared name 'gradnorm' is a built-in balancer's"),
        ("tests.trainers.broken_balancer_module:X",
         "importing tests.trainers.broken_balancer_module raised RuntimeError: broken on import "
         "(tests/trainers/broken_balancer_module.py:3 in <module>)"),
        (f"{PLUG_IN}: {{power: -1}}", f"arms.{PLUG_IN}.power: must be >= 0 (got -1)"),
        (f"{PLUG_IN}: {{beta: 1}}", f"arms.{PLUG_IN}.beta: unknown key"),
        ("gradnorm: {alphas: [0.1, 0.1]}", "arms.gradnorm.alphas[1]: alpha 0.1 is listed twice"),
        ("inverse_norm: {}", "arms.inverse_norm: unknown key"),
        (f"{BROKEN}:NeedsAMissingExtra",
         f"arms.{BROKEN}:NeedsAMissingExtra: needs_extra needs gradsweep_no_such_solver, not "
         "installed here: pip install 'gradsweep[canon]'"),
    ],
)  # fmt: skip
def test_a_bad_balancer_arm_is_one_line_naming_it(arm: str, message: str) -> None:
    entry = arm if ": {" in arm else f"{arm}: {{}}"
    with pytest.raises(SpecError) as error:
        parse_spec(with_arms(f"  static: {{weights: [[1, 1]]}}\n  {entry}\n"), "s.yaml")
    text = str(error.value)
    assert "\n" not in text and message in text, text


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("RaisesInStep", "step raised ZeroDivisionError: division by zero "
                         "(tests/trainers/broken_balancers.py:32 in step)"),
        ("WrongShape", "after start, weights is (3,), not a (2,) tensor"),
        ("NoBackward", "step gave the network no gradient"),
        ("UndeclaredNeed", "this step was built without task_gradients"),
    ],
)  # fmt: skip
def test_a_balancer_that_breaks_its_contract_fails_before_any_trial(
    name: str, message: str
) -> None:
    key = f"{BROKEN}:{name}"
    spec = parse_spec(with_arms(f"  {key}: {{}}\n"))
    with pytest.raises(SpecError) as error:
        dry_run_problem(spec)
    text = str(error.value)
    assert text.startswith(f"arms.{key}: ") and message in text, text


def test_the_schema_documents_each_balancers_parameters() -> None:
    arms = spec_json_schema()["$defs"]["ArmsSpec"]["properties"]
    assert {"static", "grid", "random", "optuna", "retrain", "gradnorm", "uncertainty", "dwa",
            "rlw"} <= set(arms)  # fmt: skip
    assert arms["dwa"]["title"] == "DWA"  # the declaration's display label
    definitions = spec_json_schema()["$defs"]
    gradnorm = definitions["GradnormArm"]["properties"]
    assert gradnorm["lr"]["exclusiveMinimum"] == 0
    assert "learning rate" in gradnorm["lr"]["description"]
    assert definitions["GradnormArm"]["required"] == ["alphas"]
