"""How large a spec may be: every count bounded in the models, the plan capped by
``limits.max_trials``, and docs/spec.md's table and lines the code's own."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from gradsweep.spec import (
    SpecError,
    StudySpec,
    load_spec,
    parse_spec,
    renamed,
    spec_json_schema,
    validate_spec,
)
from gradsweep.spec import limits as bounds
from gradsweep.spec.arms import GridArm
from gradsweep.spec.limits import on_grid

ROOT = Path(__file__).resolve().parents[2]
SECTION = (ROOT / "docs" / "spec.md").read_text().split("## How large a study may be", 1)[1]
SECTION = SECTION.split("\n## ", 1)[0]


def spec_text(**fields: object) -> str:
    data: dict[str, object] = {
        "study": "limits",
        "problem": "toy",
        "budget": {"steps": 10},
        "arms": {"static": {"weights": [[1, 1]]}},
        **fields,
    }
    return json.dumps(data, separators=(",", ":"))


def documented_bound(what: str) -> int:
    """The first number of the docs table's row whose first cell starts with ``what``."""
    for line in SECTION.splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if len(cells) == 2 and cells[0].startswith(what):
            return int(re.match(r"[\d,]+", cells[1]).group().replace(",", ""))  # type: ignore[union-attr]
    raise AssertionError(f"no row for {what}")


def test_the_documented_bounds_are_the_codes() -> None:
    assert documented_bound("`budget.steps`") == bounds.MAX_STEPS
    assert documented_bound("a trial's `w(t)` points") == bounds.MAX_TRACE_POINTS
    assert documented_bound("a trial's evaluations") == bounds.MAX_EVALUATIONS
    assert documented_bound("`seeds`") == bounds.MAX_SEEDS
    assert f"{bounds.MAX_SEED:,}" in SECTION
    assert documented_bound("`arms.static.weights`") == bounds.MAX_WEIGHTINGS
    assert documented_bound("`arms.grid.resolution`") == bounds.MAX_RESOLUTION
    assert documented_bound("`arms.random.n`") == bounds.MAX_TRIALS
    assert documented_bound("`arms.optuna.n_trials`") == bounds.MAX_OPTUNA_TRIALS
    assert documented_bound("`arms.random.seed`") == bounds.MAX_SAMPLER_SEED
    assert documented_bound("a balancer's list parameter") == bounds.MAX_PARAM_ITEMS
    assert documented_bound("`max_concurrent`") == bounds.MAX_CONCURRENT
    assert documented_bound("`max_failures`") == bounds.MAX_FAILURES
    assert documented_bound("`limits.max_trials`") == bounds.MAX_TRIALS
    assert f"{bounds.DEFAULT_MAX_TRIALS:,} unless the spec" in SECTION


def test_the_documented_lines_are_what_the_code_says(tmp_path: Path) -> None:
    block = SECTION.split("<!-- docs: text -->\n```\n", 1)[1].split("```", 1)[0]
    lines = block.strip().splitlines()
    path = tmp_path / "spec.yaml"
    path.write_text(spec_text(arms={"random": {"n": 1_000_000}}, seeds=list(range(2_000))))
    said = []
    with pytest.raises(SpecError) as error:
        load_spec(path)
    said.append(str(error.value).replace(str(path), "spec.yaml"))
    for fields in (
        {"seeds": list(range(20_000))},
        {"budget": {"steps": 10**9}},
        {"arms": {"random": {"n": 10**9}}},
    ):
        with pytest.raises(SpecError) as error:
            parse_spec(spec_text(**fields), "spec.yaml")
        said.append(str(error.value))
    assert said == lines


def test_limits_change_no_trial_and_travel_with_the_spec() -> None:
    default = parse_spec(spec_text())
    raised = parse_spec(spec_text(limits={"max_trials": 500_000}))
    assert raised.spec_hash == default.spec_hash
    assert "limits" not in raised.model_dump()  # what a relaunch compares
    assert parse_spec(raised.canonical_text()).limits.max_trials == 500_000  # resume reads it
    assert default.canonical_text() == parse_spec(default.canonical_text()).canonical_text()
    assert "limits" not in json.loads(default.canonical_text())
    assert renamed(raised, "other").limits.max_trials == 500_000
    assert "limits" in spec_json_schema()["properties"]
    with pytest.raises(SpecError, match=r"limits.max_trials: must be >= 1 \(got 0\)"):
        parse_spec(spec_text(limits={"max_trials": 0}))
    with pytest.raises(SpecError, match="limits.max_tirals: unknown key"):
        parse_spec(spec_text(limits={"max_tirals": 5}))


@pytest.mark.parametrize(
    ("fields", "said"),
    [
        ({"budget": {"steps": 10**9 + 1}}, "budget.steps: must be <= 1,000,000,000"),
        ({"budget": {"steps": 5, "trace_every": 10**10}}, "budget.trace_every: must be <="),
        ({"budget": {"steps": 2 * 10**6, "trace_every": 1}}, "set trace_every to at least 2"),
        ({"budget": {"steps": 10**6, "eval_every": 1}}, "set budget.eval_every to at least 10"),
        ({"seeds": [-1]}, "seeds[0]: must be >= 0"),
        ({"seeds": [0, 2**31]}, "seeds[1]: must be <= 2,147,483,647"),
        ({"arms": {"static": {"weights": [[1, i] for i in range(1, 10_002)]}}}, "at most 10,000"),
        ({"arms": {"random": {"n": 5, "seed": 2**32}}}, "arms.random.seed: must be <="),
        ({"arms": {"optuna": {"n_trials": 5, "confirm": 10**6}}}, "arms.optuna.confirm: must"),
        ({"max_concurrent": 10**5}, "max_concurrent: must be <= 10,000"),
        ({"arms": {"dwa": {"temperature": 0.5}, "gradnorm": {"alphas": [0.1] * 1_001}}}, "1,000"),
    ],
)
def test_every_count_is_bounded_in_one_line(fields: dict[str, object], said: str) -> None:
    with pytest.raises(SpecError) as error:
        parse_spec(spec_text(**fields), "s.yaml")
    assert said in str(error.value) and "\n" not in str(error.value)


def test_exact_bounds_pass() -> None:
    spec = parse_spec(
        spec_text(
            budget={"steps": 10**6, "trace_every": 1, "eval_every": 10},
            seeds=[0, bounds.MAX_SEED],
            arms={"random": {"n": 5, "seed": bounds.MAX_SAMPLER_SEED}},
        )
    )
    assert spec.budget.steps == 10**6


def test_evaluations_of_one_epoch_are_counted_once_the_problem_is_built() -> None:
    """``eval_every`` unset is one epoch: the toy at 1,000 samples of 100 is 10 steps."""
    text = spec_text(
        problem={"name": "toy", "params": {"train_samples": 1000, "batch_size": 100}},
        budget={"steps": 10**7, "trace_every": 100},
    )
    spec = parse_spec(text, "s.yaml")  # nothing about epochs is known yet
    with pytest.raises(SpecError) as error:
        validate_spec(spec, "s.yaml")
    assert str(error.value) == (
        "s.yaml: budget.eval_every: 10,000,000 steps make 1,000,000 evaluations a trial (at "
        "most 100,000): set budget.eval_every to at least 100 (it is one epoch, 10 steps, "
        "when not set)"
    )


def test_a_grid_of_any_size_is_a_limit_of_its_own_once_raised() -> None:
    grid = {"grid": {"resolution": 500}}  # 125,748 points for 3 tasks
    toy = {"name": "toy", "params": {"tasks": 3, "sigmas": [1, 2, 3]}}
    with pytest.raises(SpecError, match="125748 grid points for 3 tasks"):
        validate_spec(parse_spec(spec_text(problem=toy, arms=grid)), "s.yaml")
    raised = parse_spec(spec_text(problem=toy, arms=grid, limits={"max_trials": 200_000}))
    assert validate_spec(raised, "s.yaml") == 3


@pytest.mark.parametrize(
    ("weights", "tasks", "grid", "kept"),
    [
        ([1.0, 1.0, 1.0], 3, GridArm(resolution=6), True),
        ([0.5, 0.5, 2.0], 3, GridArm(resolution=6), True),
        ([0.5000001, 0.5, 2.0], 3, GridArm(resolution=6), True),  # the same key
        ([0.5001, 0.5, 2.0], 3, GridArm(resolution=6), False),
        ([3.0, 0.0, 0.0], 3, GridArm(resolution=6), False),  # a vertex, left out
        ([3.0, 0.0, 0.0], 3, GridArm(resolution=6, include_vertices=True), True),
        ([0.5, 0.5, 2.0], 3, GridArm(resolution=6, min_weight=0.6), False),
        ([1.0, 1.0], 3, GridArm(resolution=6), False),  # T entries only
        ([1.5, 0.5], 2, GridArm(resolution=4), True),
        ([1.3, 0.7], 2, GridArm(resolution=4), False),  # sums to T, off the lattice
        ([1.0, 1.0], 2, GridArm(resolution=10_000), True),
        ([1.0001, 0.9999], 2, GridArm(resolution=10_000), False),  # 5 001/4 999 of 10,000
        ([1.0002, 0.9998], 2, GridArm(resolution=10_000), True),
    ],
)
def test_a_static_weighting_on_the_grid_is_found_by_rounding(
    weights: list[float], tasks: int, grid: GridArm, kept: bool
) -> None:
    assert on_grid(weights, tasks, grid) is kept


def test_the_models_hold_the_bounds() -> None:
    schema = StudySpec.model_json_schema()
    assert schema["properties"]["seeds"]["maxItems"] == bounds.MAX_SEEDS
