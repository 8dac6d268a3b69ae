from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from gradsweep.cli import app
from gradsweep.spec import SpecError, load_spec, parse_spec, spec_json_schema

CONFIGS = sorted(Path(__file__).parents[1].joinpath("configs").glob("*.yaml"))

BASE = """\
study: s1
problem: {name: toy, params: {tasks: 3, sigmas: [1, 10, 100], train_samples: 200,
          test_samples: 50, batch_size: 50}}
budget: {steps: 10}
seeds: [0, 1]
arms:
  static: {weights: [[1, 1, 1]]}
  grid: {resolution: 4}
  random: {n: 3}
  optuna: {n_trials: 2}
  gradnorm: {alphas: [0.12, 1.5]}
  retrain: {alpha: 0.12}
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "spec.yaml"
    path.write_text(text)
    return path


def mutate(change: dict[str, object]) -> str:
    data = yaml.safe_load(BASE)
    for dotted, value in change.items():
        *parents, last = dotted.split(".")
        node = data
        for part in parents:
            node = node[part]
        if value is DELETE:
            del node[last]
        else:
            node[last] = value
    return yaml.safe_dump(data)


DELETE = object()


def test_a_valid_spec_loads(tmp_path: Path) -> None:
    spec = load_spec(write(tmp_path, BASE))
    assert spec.arms.names() == ["static", "grid", "random", "optuna", "gradnorm", "retrain"]
    assert spec.budget.trace_every == 10 and spec.max_concurrent == 2
    assert spec.resources.cpus_per_trial == 1.0


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"arms.grid.resolutoin": 3}, "arms.grid.resolutoin: unknown key"),
        ({"colour": "red"}, "colour: unknown key"),
        ({"arms.grid.resolution": -2}, "arms.grid.resolution: Input should be greater than or"),
        ({"arms.grid.resolution": "four"}, "arms.grid.resolution: Input should be a valid integer"),
        ({"arms": {}}, "arms: at least one arm is needed"),
        ({"arms.gradnorm.alphas": [0.1, -1]}, "arms.gradnorm.alphas: alpha must be >= 0"),
        ({"arms.retrain.alpha": 0.5}, "retrain.alpha 0.5 is not one of gradnorm.alphas"),
        ({"arms.static.weights": [[1, 1]]}, "arms.static.weights[0]: 2 weights given for 3 tasks"),
        ({"arms.static.weights": [[1, -1, 1]]}, "weights must be non-negative"),
        ({"arms.optuna.sampler": "bayes"}, "arms.optuna.sampler: Input should be"),
        ({"problem.name": "nope"}, "problem.name: unknown problem 'nope'"),
        ({"problem.params.sigmas": [1, 2]}, "problem.params: toy: 2 sigmas given for 3 tasks"),
        ({"budget.steps": 0}, "budget.steps: Input should be greater than or equal to 1"),
        ({"seeds": [0, 0]}, "seeds: seeds must be unique"),
        ({"study": "no spaces allowed"}, "study: String should match pattern"),
        ({"budget": DELETE}, "budget: required"),
        ({"resources": {"gpus_per_trial": -1}}, "resources.gpus_per_trial: Input should be"),
    ],
)
def test_every_mistake_is_one_line_naming_the_field(
    tmp_path: Path, change: dict[str, object], message: str
) -> None:
    with pytest.raises(SpecError) as error:
        load_spec(write(tmp_path, mutate(change)))
    text = str(error.value)
    assert "\n" not in text and message in text and text.startswith(str(tmp_path))


def test_unreadable_and_invalid_files(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="cannot read"):
        load_spec(tmp_path / "missing.yaml")
    with pytest.raises(SpecError, match=r"invalid YAML at line \d"):
        load_spec(write(tmp_path, "study: x\narms: [unclosed\n"))
    with pytest.raises(SpecError, match="a spec is a mapping"):
        load_spec(write(tmp_path, "- just\n- a list\n"))


def test_hash_ignores_layout_and_follows_values() -> None:
    reordered = "\n".join(reversed(BASE.replace("\n  ", "\n    ").splitlines()))
    same = parse_spec(yaml.safe_dump(yaml.safe_load(BASE), sort_keys=True))
    assert parse_spec(BASE).spec_hash == same.spec_hash
    changed = parse_spec(BASE.replace("resolution: 4", "resolution: 5"))
    assert changed.spec_hash != same.spec_hash
    assert parse_spec(same.canonical_text()).spec_hash == same.spec_hash
    assert reordered  # layout variants above


def test_schema_documents_the_fields() -> None:
    schema = spec_json_schema()
    assert set(schema["required"]) >= {"study", "problem", "budget", "arms"}
    grid = schema["$defs"]["GridArm"]["properties"]["resolution"]
    assert "simplex grid" in grid["description"]


@pytest.mark.parametrize("path", CONFIGS, ids=[p.name for p in CONFIGS])
def test_shipped_configs_load(path: Path) -> None:
    assert load_spec(path).arms.names()


def test_spec_commands(tmp_path: Path) -> None:
    runner = CliRunner()
    ok = runner.invoke(app, ["spec", "check", str(write(tmp_path, BASE))])
    # per seed: static 1 + grid 15-3 + random 3 + gradnorm 2 + retrain 1 = 19; × 2 + optuna 2
    assert ok.exit_code == 0 and "3 tasks" in ok.stdout and "40 trials" in ok.stdout
    bad = runner.invoke(app, ["spec", "check", str(write(tmp_path, mutate({"seeds": []})))])
    assert bad.exit_code == 2 and len(bad.stderr.strip().splitlines()) == 1
    schema = subprocess.run(
        [sys.executable, "-m", "gradsweep.cli", "spec", "schema"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert schema.returncode == 0 and json.loads(schema.stdout)["title"] == "StudySpec"


def test_a_new_name_is_validated_like_the_file() -> None:
    from gradsweep.spec import renamed

    spec = parse_spec(BASE)
    assert renamed(spec, "other-name").study == "other-name"
    assert renamed(spec, "other-name").spec_hash != spec.spec_hash
    with pytest.raises(SpecError, match="--name: study: String should match pattern"):
        renamed(spec, "has spaces")
