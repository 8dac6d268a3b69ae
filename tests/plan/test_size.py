"""The plan's size by arithmetic (spec/limits.py) is the plan's own length, and a plan over
``limits.max_trials`` is refused before one trial is built."""

from __future__ import annotations

import json
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gradsweep.plan import plan_up_front, planned_count
from gradsweep.plan.simplex import grid_points
from gradsweep.spec import SpecError, StudySpec, parse_spec
from gradsweep.spec.limits import DEFAULT_MAX_TRIALS, check_plan_size, plan_size

PLUG_IN = "examples.inverse_norm_balancer:InverseGradientNorm"


def spec_of(tasks: int, seeds: list[int], arms: dict[str, object], **extra: object) -> StudySpec:
    data = {
        "study": "size",
        "problem": {"name": "toy", "params": {"tasks": tasks}},
        "budget": {"steps": 10},
        "seeds": seeds,
        "arms": arms,
        **extra,
    }
    return parse_spec(json.dumps(data))


def enumerated(spec: StudySpec, tasks: int) -> int:
    """The count the plan gives by building it (what ``planned_count`` was)."""
    optuna = spec.arms.optuna
    later = len(spec.seeds) if spec.arms.retrain is not None else 0
    if optuna is not None:
        later += optuna.n_trials + min(optuna.confirm, optuna.n_trials) * (len(spec.seeds) - 1)
    return len(plan_up_front(spec, tasks)) + later


@st.composite
def grid_and_static(draw: st.DrawFn) -> tuple[int, dict[str, object]]:
    """A grid (any filter) with static weightings: some on it (as the grid spells them, or
    nudged below the 6 significant digits keys keep), some beside it."""
    tasks = draw(st.integers(2, 4))
    resolution = draw(st.integers(1, 14))
    grid: dict[str, object] = {"resolution": resolution}
    kind = draw(st.sampled_from(["plain", "vertices", "interior", "min_weight"]))
    if kind == "vertices":
        grid["include_vertices"] = True
    elif kind == "interior":
        grid["interior"] = True
    elif kind == "min_weight":
        grid["min_weight"] = draw(st.sampled_from([0.1, 0.25, 0.5]))
    lattice = grid_points(tasks, resolution, include_vertices=True)
    weights: list[list[float]] = []
    for point in draw(st.lists(st.sampled_from(lattice), max_size=6, unique=True)):
        nudge = draw(st.sampled_from([0.0, 1e-9, 2e-4]))  # 2e-4 changes the key: beside it
        weights.append([w + nudge for w in point])
    weights.extend(
        draw(
            st.lists(
                st.lists(st.floats(0.05, 3.0), min_size=tasks, max_size=tasks),
                max_size=3,
            )
        )
    )
    keys = {",".join(f"{w:.6g}" for w in ws) for ws in weights}
    arms: dict[str, object] = {"grid": grid}
    if weights and len(keys) == len(weights):
        arms["static"] = {"weights": weights}
    return tasks, arms


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(grid_and_static(), st.lists(st.integers(0, 5), min_size=1, max_size=3, unique=True))
def test_the_counted_size_is_the_planned_one(
    case: tuple[int, dict[str, object]], seeds: list[int]
) -> None:
    tasks, arms = case
    try:
        spec = spec_of(tasks, seeds, arms)
    except SpecError:  # a filter that leaves nothing, vertices with min_weight…
        return
    assert plan_size(spec, tasks).up_front == len(plan_up_front(spec, tasks))


@pytest.mark.parametrize(
    "arms",
    [
        {"random": {"n": 7}, "gradnorm": {"alphas": [0.1, 0.5, 1.5]}, "retrain": {"alpha": 0.5}},
        {"optuna": {"n_trials": 5, "confirm": 2}, "static": {"weights": [[1, 1, 1]]}},
        {"optuna": {"n_trials": 2, "confirm": 9}, "uncertainty": {}, "dwa": {}, "rlw": {}},
        {PLUG_IN: {}, "grid": {"resolution": 6, "interior": True}},
        {"static": {"weights": [[1, 1, 1], [0.5, 0.5, 2]]}, "grid": {"resolution": 6}},
    ],
)
def test_every_arm_and_phase_is_counted(arms: dict[str, object]) -> None:
    spec = spec_of(3, [4, 0, 2], arms)
    assert planned_count(spec, 3) == enumerated(spec, 3) == plan_size(spec, 3).total


def test_a_plan_over_the_limit_is_refused_before_it_is_built() -> None:
    """A stored study resumed reaches plan_up_front without validate_spec: the count
    refuses it there, at once, whatever its size."""
    spec = spec_of(2, list(range(10_000)), {"random": {"n": 1_000_000}})
    started = time.perf_counter()
    with pytest.raises(SpecError) as error:
        plan_up_front(spec, 2)
    assert time.perf_counter() - started < 0.5
    assert str(error.value) == (
        "study size: 10,000,000,000 trials planned (10,000 seed(s) × 1,000,000 trials each), "
        f"more than limits.max_trials ({DEFAULT_MAX_TRIALS:,}): shrink the spec, or set "
        "limits: {max_trials: N} (at most 1,000,000) to run it deliberately"
    )
    assert planned_count(spec, 2) == 10_000_000_000  # counting alone still answers


def test_the_limit_is_the_specs_own() -> None:
    """Lowered or raised, the limit is what the spec says (raising it is deliberate)."""
    arms = {"random": {"n": 6}}
    with pytest.raises(SpecError, match=r"12 trials planned .*limits.max_trials \(10\)"):
        plan_up_front(spec_of(2, [0, 1], arms, limits={"max_trials": 10}), 2)
    assert len(plan_up_front(spec_of(2, [0, 1], arms, limits={"max_trials": 12}), 2)) == 12
    big = {"random": {"n": 60_000}}
    with pytest.raises(SpecError, match="120,000 trials planned"):
        check_plan_size(spec_of(2, [0, 1], big), 2, "s.yaml")
    check_plan_size(spec_of(2, [0, 1], big, limits={"max_trials": 120_000}), 2, "s.yaml")
