from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from gradsweep import problem_factory
from gradsweep.cli import app
from gradsweep.plan import planned_count
from gradsweep.spec import (
    GridArm,
    SpecError,
    StudySpec,
    load_spec,
    parse_spec,
    renamed,
    spec_json_schema,
    validate_spec,
)
from gradsweep.trainers import ToyRegression
from tests.trainers.nyuv2_dataset import write_dataset

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
DELETE = object()


@problem_factory
def four_task_toy(**params: object) -> ToyRegression:
    """A user's problem by import path (``tests.test_spec:four_task_toy``)."""
    return ToyRegression(tasks=4, sigmas=[1, 2, 3, 4], train_samples=100, test_samples=20)


@problem_factory
def broken_problem(**params: object) -> ToyRegression:
    raise ValueError("no data for these parameters\nsecond line")


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "spec.yaml"
    path.write_text(text)
    return path


def mutate(change: dict[str, object]) -> str:
    """BASE with dotted keys set (or deleted), as YAML."""
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


def test_a_valid_spec_loads_with_defaults(tmp_path: Path) -> None:
    spec = load_spec(write(tmp_path, BASE))
    assert spec.arms.names() == ["static", "grid", "random", "optuna", "gradnorm", "retrain"]
    assert spec.budget.trace_every == 10 and spec.budget.eval_every is None
    assert spec.max_concurrent == 2 and spec.max_failures == 1
    assert spec.resources.cpus_per_trial == 1.0 and spec.resources.gpus_per_trial == 0.0
    assert spec.arms.grid is not None and spec.arms.grid.include_vertices is False
    assert spec.arms.optuna is not None and spec.arms.optuna.sampler == "tpe"
    assert spec.arms.gradnorm is not None and spec.arms.gradnorm.lr == 0.025
    assert spec.objective == "normalized_loss" and spec.task_count() == 3


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"arms.grid.resolutoin": 3}, "arms.grid.resolutoin: unknown key"),
        ({"colour": "red"}, "colour: unknown key"),
        ({"arms.grid.resolution": -2}, "arms.grid.resolution: must be >= 1 (got -2)"),
        ({"arms.grid.resolution": "four"}, "arms.grid.resolution: must be an integer (got 'four')"),
        ({"arms.grid.resolution": 2.5}, "arms.grid.resolution: must be an integer (got 2.5)"),
        ({"arms.grid.include_vertices": "yes"}, "arms.grid.include_vertices: must be true or"),
        ({"arms.grid.resolution": 500}, "arms.grid.resolution: 125748 grid points for 3"),
        ({"arms": {}}, "arms: at least one arm is needed"),
        ({"arms": []}, "arms: must be a mapping"),
        ({"arms.random.n": 0}, "arms.random.n: must be >= 1 (got 0)"),
        ({"arms.optuna.n_trials": 0}, "arms.optuna.n_trials: must be >= 1 (got 0)"),
        ({"arms.optuna.sampler": "bayes"}, "arms.optuna.sampler: must be one of 'tpe', 'cmaes'"),
        ({"arms.gradnorm.alphas": [0.1, -1]}, "arms.gradnorm.alphas[1]: alpha must be >= 0"),
        ({"arms.gradnorm.alphas": []}, "arms.gradnorm.alphas: must not be empty"),
        ({"arms.gradnorm.alphas": [0.12, 0.12]}, "arms.gradnorm.alphas[1]: alpha 0.12 is listed"),
        ({"arms.gradnorm.lr": 0}, "arms.gradnorm.lr: must be > 0 (got 0)"),
        ({"arms.gradnorm.lr": float("nan")}, "arms.gradnorm.lr: must be a finite number"),
        ({"arms.gradnorm.initial_loss": "last"}, "arms.gradnorm.initial_loss: must be one of"),
        ({"arms.retrain.alpha": 0.5}, "arms.retrain.alpha: 0.5 is not one of arms.gradnorm.alphas"),
        ({"arms.gradnorm": DELETE}, "arms.retrain.alpha: needs a gradnorm arm"),
        ({"arms.static.weights": [[1, 1]]}, "arms.static.weights[0]: 2 weights given for 3 tasks"),
        ({"arms.static.weights": [[1, -1, 1]]}, "arms.static.weights[0][1]: must be >= 0 (got -1)"),
        ({"arms.static.weights": [[0, 0, 0]]}, "arms.static.weights[0]: weights must have a pos"),
        ({"arms.static.weights": [[1, 1, 1], [1.0, 1, 1]]}, "arms.static.weights[1]: this weig"),
        ({"arms.static.weights": []}, "arms.static.weights: must not be empty"),
        ({"problem.name": "nope"}, "problem.name: unknown problem 'nope'"),
        ({"problem.name": "no_such_module:make"}, "problem.name: problem 'no_such_module:make'"),
        ({"problem.params.sigmas": [1, 2]}, "problem.params: toy: 2 sigmas given for 3 tasks"),
        ({"problem.params.colour": 1}, "problem.params: problem 'toy': bad parameters"),
        ({"problem.params": [1, 2]}, "problem.params: must be a mapping"),
        ({"problem": DELETE}, "problem: required"),
        ({"budget.steps": 0}, "budget.steps: must be >= 1 (got 0)"),
        ({"budget.eval_every": 0}, "budget.eval_every: must be >= 1 (got 0)"),
        ({"budget.trace_every": -1}, "budget.trace_every: must be >= 1 (got -1)"),
        ({"budget": DELETE}, "budget: required"),
        ({"budget": 5}, "budget: must be a mapping (got 5)"),
        ({"objective": "delta"}, "objective: must be one of 'normalized_loss' or 'delta_m'"),
        (
            {"objective": "delta_m", "arms.static.weights": [[1, 2, 1]]},
            "objective: delta_m is measured against the equal-weight trials",
        ),
        ({"objective": "delta_m", "arms.static": DELETE}, "objective: delta_m is measured"),
        ({"arms.uncertainty": {"lr": 0}}, "arms.uncertainty.lr: must be > 0 (got 0)"),
        ({"arms.dwa": {"temperature": -1}}, "arms.dwa.temperature: must be > 0 (got -1)"),
        ({"arms.dwa": {"tau": 2}}, "arms.dwa.tau: unknown key"),
        ({"arms.rlw": {"distribution": "uniform"}}, "arms.rlw.distribution: must be one of"),
        ({"arms.rlw": {"concentration": 0}}, "arms.rlw.concentration: must be > 0 (got 0)"),
        ({"seeds": [0, 0]}, "seeds[1]: seed 0 is listed twice"),
        ({"seeds": [0, -1]}, "seeds[1]: must be >= 0 (got -1)"),
        ({"seeds": [True]}, "seeds[0]: must be an integer (got True)"),
        ({"seeds": []}, "seeds: must not be empty"),
        ({"study": "no spaces allowed"}, "study: a study name is letters, digits, - _ . only"),
        ({"resources": {"cpus_per_trial": 0}}, "resources.cpus_per_trial: must be > 0 (got 0)"),
        ({"resources": {"gpus_per_trial": -1}}, "resources.gpus_per_trial: must be >= 0 (got -1)"),
        ({"resources": {"pack": 0}}, "resources.pack: must be an integer >= 1 or auto (got 0)"),
        ({"resources": {"pack": "all"}}, "resources.pack: must be an integer >= 1 or auto (got 'a"),
        ({"resources": {"pack": 2.5}}, "resources.pack: must be an integer >= 1 or auto (got 2.5"),
        ({"max_concurrent": 0}, "max_concurrent: must be >= 1 (got 0)"),
        ({"max_failures": -1}, "max_failures: must be >= 0 (got -1)"),
    ],
)
def test_every_mistake_is_one_line_naming_the_field(
    tmp_path: Path, change: dict[str, object], message: str
) -> None:
    with pytest.raises(SpecError) as error:
        load_spec(write(tmp_path, mutate(change)))
    text = str(error.value)
    assert "\n" not in text and text.startswith(f"{tmp_path / 'spec.yaml'}: ")
    assert message in text


def test_unreadable_and_invalid_files(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="missing.yaml: cannot read: No such file"):
        load_spec(tmp_path / "missing.yaml")
    with pytest.raises(SpecError, match="cannot read"):
        load_spec(tmp_path)
    (tmp_path / "binary.yaml").write_bytes(b"\xff\xfe\x00")
    with pytest.raises(SpecError, match="binary.yaml: cannot read"):
        load_spec(tmp_path / "binary.yaml")
    with pytest.raises(SpecError, match=r"invalid YAML at line 3, column 1: .*expected ','"):
        load_spec(write(tmp_path, "study: x\narms: [unclosed\n"))
    with pytest.raises(SpecError, match="a spec is a mapping"):
        load_spec(write(tmp_path, "- just\n- a list\n"))
    with pytest.raises(SpecError, match="spec.yaml: the spec is empty"):
        load_spec(write(tmp_path, "# nothing\n"))


def test_a_key_written_twice_is_an_error_not_the_last_one_wins() -> None:
    twice = BASE + "  grid: {resolution: 2}\n"
    with pytest.raises(SpecError, match=r"^s: arms.grid: listed twice \(lines 8 and 13\)$"):
        parse_spec(twice, source="s")
    with pytest.raises(SpecError, match=r"problem.params.tasks: listed twice"):
        parse_spec(BASE.replace("tasks: 3,", "tasks: 3, tasks: 2,"), source="s")


def test_a_users_problem_is_built_for_its_task_count() -> None:
    user_problem = {"name": "tests.test_spec:four_task_toy"}
    text = mutate({"problem": user_problem, "arms": {"grid": {"resolution": 2}}})
    spec = parse_spec(text)
    assert spec.task_count() == 4 and validate_spec(spec) == 4
    broken = parse_spec(text.replace("four_task_toy", "broken_problem"))
    with pytest.raises(SpecError) as error:
        validate_spec(broken, "b.yaml")
    assert str(error.value) == (
        "b.yaml: problem.params: tests.test_spec:broken_problem failed to build: "
        "ValueError: no data for these parameters"
    )


def test_the_toy_task_count_needs_no_build() -> None:
    spec = parse_spec(mutate({"problem": {"name": "toy"}, "arms": {"grid": {"resolution": 2}}}))
    assert spec.task_count() == 2 == validate_spec(spec)


def test_hash_ignores_layout_and_follows_values() -> None:
    spec = parse_spec(BASE)
    shuffled = yaml.safe_load(BASE)
    shuffled = {key: shuffled[key] for key in reversed(list(shuffled))}
    shuffled["arms"] = {key: shuffled["arms"][key] for key in sorted(shuffled["arms"])}
    relaid = parse_spec(yaml.safe_dump(shuffled, default_flow_style=False, indent=4))
    assert relaid.spec_hash == spec.spec_hash
    defaults_spelt_out = BASE.replace("{resolution: 4}", "{resolution: 4, include_vertices: no}")
    assert parse_spec(defaults_spelt_out + "max_concurrent: 2\n").spec_hash == spec.spec_hash
    assert parse_spec(BASE.replace("resolution: 4", "resolution: 5")).spec_hash != spec.spec_hash
    assert parse_spec(BASE.replace("[0, 1]", "[1, 0]")).spec_hash != spec.spec_hash
    assert parse_spec(spec.canonical_text()) == spec
    # packing is scheduling: the same study whatever the pack size, which is still stored
    packed = parse_spec(BASE + "resources: {pack: 8}\n")
    assert packed.spec_hash == spec.spec_hash and packed.canonical_text() != spec.canonical_text()
    assert parse_spec(packed.canonical_text()).resources.pack == 8 and spec.resources.pack == "auto"
    assert len(spec.spec_hash) == 64 and json.loads(spec.canonical_text())["study"] == "s1"


def test_a_problem_parameter_spelt_out_at_its_default_is_the_same_study() -> None:
    spec = parse_spec(BASE)
    params = yaml.safe_load(BASE)["problem"].get("params", {})
    for default in ({"data_seed": 0}, {"learning_rate": 0.001, "data_seed": 0}):
        spelt = parse_spec(mutate({"problem": {"name": "toy", "params": {**params, **default}}}))
        assert spelt.spec_hash == spec.spec_hash and spelt.problem.params != spec.problem.params
    other = parse_spec(mutate({"problem": {"name": "toy", "params": {**params, "data_seed": 1}}}))
    assert other.spec_hash != spec.spec_hash


def test_bf16_is_another_study_and_fp32_keeps_the_hashes_of_older_studies() -> None:
    spec = parse_spec(BASE)
    assert spec.precision == "fp32"
    assert parse_spec(BASE + "precision: fp32\n").spec_hash == spec.spec_hash
    assert parse_spec(BASE + "precision: bf16\n").spec_hash != spec.spec_hash
    # the hash before the field existed: the canonical JSON without pack and precision
    data = json.loads(spec.canonical_text())
    del data["precision"], data["resources"]["pack"]
    del data["arms"]["grid"]["min_weight"], data["arms"]["grid"]["interior"]
    del data["selection"], data["arms"]["optuna"]["confirm"]
    text = json.dumps(data, sort_keys=True, separators=(",", ":"))
    assert spec.spec_hash == hashlib.sha256(text.encode()).hexdigest()
    with pytest.raises(SpecError, match="precision"):
        parse_spec(BASE + "precision: fp16\n")


@pytest.mark.parametrize(
    ("grid", "points"),
    [
        ({"resolution": 6}, 25),
        ({"resolution": 6, "interior": True}, 10),
        ({"resolution": 6, "min_weight": 0.5}, 10),
        ({"resolution": 6, "min_weight": 0.6}, 1),
        ({"resolution": 12, "min_weight": 0.25}, 55),
        ({"resolution": 3, "min_weight": 1.0}, 1),
    ],
)
def test_grids_that_keep_every_task_on(grid: dict[str, object], points: int) -> None:
    spec = parse_spec(mutate({"arms": {"grid": grid}, "seeds": [0]}))
    assert spec.arms.grid is not None and validate_spec(spec) == 3
    assert spec.arms.grid.size(3) == points == planned_count(spec, 3)


@pytest.mark.parametrize(
    ("grid", "message"),
    [
        (
            {"resolution": 2, "interior": True},
            "arms.grid: no point at resolution 2 has every one of its 3 weights > 0; "
            "the least resolution with one is 3",
        ),
        (
            {"resolution": 4, "min_weight": 1.0},
            "weights >= 1; the least resolution with one is 6",
        ),
    ],
)
def test_a_grid_with_no_point_left_says_which_resolution_has_one(
    grid: dict[str, object], message: str
) -> None:
    with pytest.raises(SpecError, match=re.escape(message)):
        validate_spec(parse_spec(mutate({"arms.grid": grid})))


def test_vertices_cannot_go_with_every_task_on() -> None:
    change = {"arms.grid": {"resolution": 4, "interior": True, "include_vertices": True}}
    with pytest.raises(SpecError, match="arms.grid.include_vertices: a vertex switches"):
        parse_spec(mutate(change))
    with pytest.raises(SpecError, match="arms.grid.min_weight"):
        parse_spec(mutate({"arms.grid": {"resolution": 4, "min_weight": 1.5}}))


def test_grid_filters_change_the_study_and_their_defaults_do_not() -> None:
    spec = parse_spec(BASE)
    spelt = mutate({"arms.grid": {"resolution": 4, "min_weight": 0, "interior": False}})
    assert parse_spec(spelt).spec_hash == spec.spec_hash
    assert parse_spec(mutate({"arms.grid.interior": True})).spec_hash != spec.spec_hash


def test_a_spec_is_frozen() -> None:
    spec = parse_spec(BASE)
    with pytest.raises(ValueError, match="frozen"):
        spec.study = "other"  # type: ignore[misc]


def test_schema_documents_the_fields() -> None:
    schema = spec_json_schema()
    assert set(schema["required"]) >= {"study", "problem", "budget", "arms"}
    assert schema["additionalProperties"] is False
    grid = schema["$defs"]["GridArm"]["properties"]["resolution"]
    assert "simplex grid" in grid["description"] and grid["minimum"] == 1
    sampler = schema["$defs"]["OptunaArm"]["properties"]["sampler"]
    assert sampler["enum"] == ["tpe", "cmaes", "qmc", "gp", "random"]
    assert json.loads(json.dumps(schema)) == schema
    assert StudySpec.model_json_schema()["title"] == "StudySpec"


@pytest.mark.parametrize("path", CONFIGS, ids=[p.name for p in CONFIGS])
def test_shipped_configs_load(path: Path, tmp_path: Path) -> None:
    raw = yaml.safe_load(path.read_text())
    params = raw["problem"].get("params", {}) if isinstance(raw["problem"], dict) else {}
    if "root" in params:  # the dataset lives outside the repo: load against a generated stand-in
        side = 2 ** params.get("levels", 5)
        batch = max(params.get("batch_size", 8), params.get("eval_batch_size", 8))
        # enough training samples for a batch after the validation hold-out
        root = write_dataset(tmp_path / "data", train=2 * batch, val=2, height=side, width=side)
        params["root"] = str(root)
        path = tmp_path / path.name
        path.write_text(yaml.safe_dump(raw))
    spec = load_spec(path)
    assert spec.study == path.stem and spec.arms.names()


def test_spec_commands(tmp_path: Path) -> None:
    runner = CliRunner()
    ok = runner.invoke(app, ["spec", "check", str(write(tmp_path, BASE))])
    # per seed: static 1 + grid 15-3 + random 3 + gradnorm 2 + retrain 1 = 19; × 2 + optuna 2
    # + its 2 best confirmed on the second seed
    assert ok.exit_code == 0 and "3 tasks" in ok.stdout and "42 trials" in ok.stdout
    assert "dry run: one training step and one test batch on the CPU, ok" in ok.stdout
    bad = runner.invoke(app, ["spec", "check", str(write(tmp_path, mutate({"seeds": []})))])
    assert bad.exit_code == 2 and len(bad.stderr.strip().splitlines()) == 1
    schema = subprocess.run(
        [sys.executable, "-m", "gradsweep.cli", "spec", "schema"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert schema.returncode == 0 and json.loads(schema.stdout)["title"] == "StudySpec"


def test_pack_takes_what_resources_pack_takes(tmp_path: Path) -> None:
    """`--pack` is read by the field's own validation: `auto` or an integer >= 1, and
    anything else refused in the words the spec's field uses, before anything runs."""
    path = write(tmp_path, BASE)
    runner = CliRunner()
    auto = runner.invoke(app, ["spec", "check", str(path), "--pack", "auto"])
    assert auto.exit_code == 0, auto.stderr
    assert auto.stdout.splitlines()[-1].startswith("packing")
    one = runner.invoke(app, ["spec", "check", str(path), "--pack", "1"])
    assert one.stdout.splitlines()[-1] == "packing off (pack: 1)"
    words = "must be an integer >= 1 or auto (got 0)"
    with pytest.raises(SpecError, match=re.escape(f"resources.pack: {words}")):
        parse_spec(mutate({"resources": {"pack": 0}}))
    database = tmp_path / "results.db"
    for bad, got in (
        ("0", "0"),
        ("-2", "-2"),
        ("two", "'two'"),
        ("1.5", "'1.5'"),
        ("AUTO", "'AUTO'"),
    ):
        for argv in (
            ["spec", "check", str(path)],
            ["launch", str(path), "--db", str(database)],
            ["resume", "s", "--db", str(database)],
        ):
            run = runner.invoke(app, [*argv, "--pack", bad])
            assert run.exit_code == 2 and run.stdout == "", (argv, bad)
            assert run.stderr == f"error: --pack: must be an integer >= 1 or auto (got {got})\n"
    assert not database.exists()


def test_a_new_name_is_validated_like_the_file() -> None:
    spec = parse_spec(BASE)
    assert renamed(spec, "other-name").study == "other-name"
    assert renamed(spec, "other-name").spec_hash != spec.spec_hash
    with pytest.raises(SpecError, match="--name: study: a study name is letters"):
        renamed(spec, "has spaces")


def test_the_documented_grid_point_counts() -> None:
    """docs/spec.md's table of point counts is the code's."""
    text = (Path(__file__).parents[1] / "docs" / "spec.md").read_text()
    section = text.split("### Grids that keep every task on", 1)[1].split("###", 1)[0]
    rows = [line for line in section.splitlines() if re.match(r"\| \d", line)]
    assert len(rows) == 5
    for row in rows:
        tasks, resolution, plain, interior, quarter, half = (int(c) for c in row.split("|")[1:-1])
        grids = [
            GridArm(resolution=resolution),
            GridArm(resolution=resolution, interior=True),
            GridArm(resolution=resolution, min_weight=0.25),
            GridArm(resolution=resolution, min_weight=0.5),
        ]
        assert [g.size(tasks) for g in grids] == [plain, interior, quarter, half], row


BROKEN_SPEC = """\
study: broken
problem: tests.trainers.broken_problems:make_ignores_shared_features
objective: OBJECTIVE
budget: {steps: 5}
arms:
  static: {weights: [[1, 1, 1]]}
"""
NO_GRADIENT = (
    "error: problem ignores-shared: build_model/task_losses: task task1: no gradient at the "
    "shared layer trunk.6.weight"
)


def test_spec_check_dry_runs_the_problem(tmp_path: Path) -> None:
    path = write(tmp_path, BROKEN_SPEC.replace("OBJECTIVE", "normalized_loss"))
    result = CliRunner().invoke(app, ["spec", "check", str(path)])
    assert result.exit_code == 2 and result.stdout == "" and "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(NO_GRADIENT)


@pytest.mark.parametrize(
    ("problem", "objective", "message"),
    [
        ("make_ignores_shared_features", "normalized_loss", NO_GRADIENT),
        (
            "make_unlabelled_test",
            "normalized_loss",
            "error: problem unlabelled-test: task_losses: task task2: the initial test loss is 0",
        ),
        ("make_two_losses", "delta_m", "error: problem two-losses: task_losses returned 2 losses"),
    ],
)
def test_launch_of_a_broken_problem_writes_nothing(
    tmp_path: Path, problem: str, objective: str, message: str
) -> None:
    text = BROKEN_SPEC.replace("OBJECTIVE", objective)
    path = write(tmp_path, text.replace("make_ignores_shared_features", problem))
    database = tmp_path / "results.db"
    result = CliRunner().invoke(app, ["launch", str(path), "--db", f"sqlite:///{database}"])
    assert result.exit_code == 2 and "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(message)
    assert not database.exists()


def test_a_zero_initial_test_loss_fails_spec_check_under_delta_m_too(tmp_path: Path) -> None:
    """Every trial records its normalised loss, whatever the study's objective."""
    text = BROKEN_SPEC.replace("OBJECTIVE", "delta_m")
    path = write(tmp_path, text.replace("make_ignores_shared_features", "make_unlabelled_test"))
    result = CliRunner().invoke(app, ["spec", "check", str(path)])
    assert result.exit_code == 2 and "the initial test loss is 0" in result.stderr


@pytest.mark.parametrize(
    ("problem", "refused"),
    [("{name: toy, params: {tasks: 2, train_samples: 40, test_samples: 20, batch_size: 20}}", True),
     ("{name: digits}", False)],
)  # fmt: skip
def test_theoretical_initial_losses_are_checked_before_any_trial(
    tmp_path: Path, problem: str, refused: bool
) -> None:
    """The toy (a regression) has no closed-form initial loss; digits' classifiers do."""
    path = write(
        tmp_path,
        f"study: theory\nproblem: {problem}\nbudget: {{steps: 10}}\n"
        "arms: {gradnorm: {alphas: [1.0], initial_loss: theoretical}}\n",
    )
    result = CliRunner().invoke(app, ["spec", "check", str(path)])
    if refused:
        assert result.exit_code == 2, result.stdout
        assert result.stderr.strip() == (
            "error: arms.gradnorm: initial_loss=theoretical, but this problem has no "
            "theoretical initial losses: use first_batch or first_epoch_mean"
        )
    else:
        assert result.exit_code == 0, result.stderr


def test_every_shipped_spec_is_valid_against_the_published_schema() -> None:
    """`spec schema` is what editors validate with: the configs and examples pass it,
    the `problem: NAME` short form included."""
    import glob

    import jsonschema
    import yaml

    from gradsweep.spec import spec_json_schema

    validator = jsonschema.Draft202012Validator(spec_json_schema())
    paths = sorted(glob.glob("configs/*.yaml") + glob.glob("examples/*.yaml"))
    assert any("wine" in p for p in paths) and len(paths) >= 8
    for path in paths:
        errors = [e.message for e in validator.iter_errors(yaml.safe_load(Path(path).read_text()))]
        assert errors == [], (path, errors)
