"""Generated and mutated spec documents: `spec check` answers 0 or one line and exit 2."""

from __future__ import annotations

import copy
import tempfile
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.fuzz_helpers import assert_kept_its_promise, run_cli

BASE: dict[str, Any] = {
    "study": "fuzz",
    "problem": {
        "name": "toy",
        "params": {"tasks": 2, "train_samples": 100, "test_samples": 20, "batch_size": 20},
    },
    "objective": "normalized_loss",
    "budget": {"steps": 4, "eval_every": 2, "trace_every": 1},
    "seeds": [0, 1],
    "arms": {
        "static": {"weights": [[1, 1]]},
        "grid": {"resolution": 3, "include_vertices": False},
        "random": {"n": 2, "seed": 0},
        "optuna": {"n_trials": 2, "sampler": "tpe", "seed": 0},
        "gradnorm": {"alphas": [0.12], "lr": 0.025, "initial_loss": "first_batch"},
        "dwa": {"temperature": 2.0},
        "retrain": {"alpha": 0.12},
    },
    "resources": {"cpus_per_trial": 1, "gpus_per_trial": 0, "pack": "auto"},
    "max_concurrent": 2,
    "max_failures": 1,
}

scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(10**6), 10**6)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=12)
    | st.sampled_from(["toy", "digits", "nyuv2", "auto", "delta_m", "tpe", "x:y", "os:system"])
)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)


def paths(node: Any, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found = [prefix] if prefix else []
    if isinstance(node, dict):
        for key, child in node.items():
            found.extend(paths(child, (*prefix, key)))
    return found


PATHS = paths(BASE)


@st.composite
def mutated_specs(draw: st.DrawFn) -> str:
    spec = copy.deepcopy(BASE)
    for _ in range(draw(st.integers(1, 4))):
        path = draw(st.sampled_from(PATHS))
        parent = spec
        for key in path[:-1]:
            parent = parent.get(key) if isinstance(parent, dict) else None
        if not isinstance(parent, dict):
            continue
        action = draw(st.sampled_from(["set", "delete", "add"]))
        if action == "delete":
            parent.pop(path[-1], None)
        elif action == "set":
            parent[path[-1]] = draw(values)
        else:
            parent[draw(st.text(min_size=1, max_size=8))] = draw(values)
    return yaml.safe_dump(spec, allow_unicode=True)


documents = st.one_of(
    mutated_specs(),
    values.map(lambda v: yaml.safe_dump(v, allow_unicode=True)),
    st.text(max_size=400),
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=documents)
def test_no_spec_document_produces_a_traceback(text: str) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "spec.yaml"
        path.write_text(text, encoding="utf-8", errors="surrogatepass")
        argv = ["spec", "check", str(path)]
        assert_kept_its_promise(run_cli(argv), [*argv, text[:200]])
