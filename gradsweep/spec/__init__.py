"""A study spec (YAML) as pydantic models: the single source of truth for a study.

``load_spec`` reads and validates a file; every mistake becomes one ``SpecError`` line
that names the field, before anything touches the database. Downstream code takes the
typed models, never the raw YAML.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import json
import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, ValidationError, field_validator, model_validator

from gradsweep.arms import DEFAULT_VALIDATION_FRACTION, Checkpoint, is_equal_weighting
from gradsweep.errors import GradsweepError, ProblemError
from gradsweep.spec.arms import (
    RETRAINED,
    ArmsSpec,
    BalancerArm,
    GridArm,
    OptunaArm,
    RandomArm,
    RetrainArm,
    StaticArm,
    arm_model,
    arm_order,
)
from gradsweep.spec.base import (
    FieldError,
    SpecError,
    SpecModel,
    first_nul,
    first_repeat,
    name_problem,
)
from gradsweep.spec.limits import (
    MAX_CONCURRENT,
    MAX_FAILURES,
    MAX_SEED,
    MAX_SEEDS,
    MAX_STEPS,
    LimitsSpec,
    check_plan_size,
    check_trial_size,
    evaluations_problem,
)
from gradsweep.spec.messages import error_message, location, one_line, short
from gradsweep.spec.reading import read_spec_yaml
from gradsweep.trainers.balancers.catalog import declarations
from gradsweep.yaml_reader import UnreadableYaml, read_file

__all__ = [
    "RETRAINED",
    "ArmsSpec",
    "BalancerArm",
    "BudgetSpec",
    "GridArm",
    "LimitsSpec",
    "OptunaArm",
    "PackSize",
    "ProblemSpec",
    "RandomArm",
    "ResourcesSpec",
    "RetrainArm",
    "SelectionSpec",
    "SpecError",
    "StaticArm",
    "StudySpec",
    "arm_model",
    "arm_order",
    "dry_run_problem",
    "has_equal_weights",
    "load_spec",
    "parse_spec",
    "read_pack",
    "renamed",
    "spec_json_schema",
    "task_metrics",
    "task_names",
    "validate_spec",
]

ObjectiveName = Literal["normalized_loss", "delta_m"]
STUDY_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
# A grid beyond this is a typo (T=10 at R=20 is ten million trials), not a study.
MAX_GRID_POINTS = 100_000

Seed = Annotated[int, Field(ge=0, le=MAX_SEED)]
MAX_TRIAL_TIMEOUT = 7 * 24 * 3600  # budget.trial_timeout's bound: a week, in seconds


class ProblemSpec(SpecModel):
    """The multitask problem every trial trains on."""

    name: str = Field(
        description="a built-in problem (toy, digits, multimnist, nyuv2), an installed "
        "gradsweep.problems entry point, or package.module:callable naming a MultitaskProblem "
        "subclass or a factory marked @gradsweep.problem_factory (anything else is refused "
        "before it is called; naming a module imports it)"
    )
    params: dict[str, Any] = Field(
        default_factory=dict, description="keyword arguments of the problem's constructor"
    )

    @field_validator("name")
    @classmethod
    def _storable_name(cls, value: str) -> str:
        problem = name_problem(value)
        if problem is not None:
            raise ValueError(problem)
        return value

    def canonical_params(self) -> dict[str, Any]:
        """The parameters without those spelt out at the problem's own defaults: the same
        problem, whichever way it was written."""
        defaults = _problem_defaults(self.name)
        return {
            key: value
            for key, value in self.params.items()
            if key not in defaults or defaults[key] != value
        }

    def params_json(self) -> str:
        """The parameters as canonical JSON: the key of a built problem's cache."""
        return json.dumps(self.params, sort_keys=True)


class BudgetSpec(SpecModel):
    """How long each trial trains and how often it reports."""

    steps: int = Field(
        ge=1, le=MAX_STEPS, description=f"training steps per trial (at most {MAX_STEPS:,})"
    )
    eval_every: int | None = Field(
        default=None,
        ge=1,
        le=MAX_STEPS,
        description="steps between test evaluations (default: one epoch; at most "
        "100,000 evaluations a trial)",
    )
    trace_every: int = Field(
        default=10,
        ge=1,
        le=MAX_STEPS,
        description="steps between recorded w(t) points (at most 1,000,000 points a trial)",
    )
    trial_timeout: float | None = Field(
        default=None,
        ge=1,
        le=MAX_TRIAL_TIMEOUT,
        description="seconds a trial may run (1 to 604800, a week); one that runs longer "
        "is recorded as failed and the study goes on (default: no limit). Scheduling, not "
        "training: left out of the spec's hash",
    )

    @model_validator(mode="after")
    def _bounded_trial(self) -> BudgetSpec:
        """A trial's recorded points and evaluations grow with its steps: bounded here,
        so a trial's memory and rows are too (spec/limits.py)."""
        said = check_trial_size(self.steps, self.eval_every, self.trace_every)
        if said is not None:
            field, _, message = said.partition(": ")
            raise FieldError((field,), message)
        return self


class SelectionSpec(SpecModel):
    """How a study chooses (the static optimum, the best α, a trial's checkpoint): on
    validation data, never on the test data it reports."""

    validation_fraction: float = Field(
        default=DEFAULT_VALIDATION_FRACTION,
        gt=0,
        lt=1,
        description="the share of a problem's training examples held out for validation "
        "(fixed examples, the same for every trial) when the problem brings no validation "
        "data of its own (the toy, digits and MultiMNIST do)",
    )
    checkpoint: Literal["final", "best_validation"] = Field(
        default=Checkpoint.FINAL.value,
        description="a trial's result: its final evaluation, or the evaluation with its best "
        "validation normalised loss (its step is stored and shown)",
    )


class ResourcesSpec(SpecModel):
    """What Ray reserves for each trial."""

    cpus_per_trial: float = Field(default=1.0, gt=0, description="CPUs per trial (fractions ok)")
    gpus_per_trial: float = Field(
        default=0.0, ge=0, description="GPUs per trial (fractions ok: 0.25 puts four on a card)"
    )
    pack: Annotated[int, Field(ge=1)] | Literal["auto"] = Field(
        default="auto",
        description="at most this many static (or GradNorm) trials of one seed trained "
        "together in one Ray trial, each still its own trial; auto: chosen from the device "
        "and the model's size; 1: every trial alone",
    )

    @field_validator("pack", mode="before")
    @classmethod
    def _pack_size(cls, value: Any) -> Any:
        if value == "auto" or (type(value) is int and value >= 1):
            return value
        raise ValueError(f"must be an integer >= 1 or auto (got {short(value)})")


PackSize = int | Literal["auto"]
"""``resources.pack``: at most this many trials a pack, or ``auto``."""
DIGITS = re.compile(r"[+-]?\d{1,18}")  # an integer as a command line writes it


def read_pack(text: str, where: str) -> PackSize:
    """``resources.pack`` given as text (``--pack 4``, ``--pack auto``), checked by that
    field's own validation: the option takes exactly what the spec takes."""
    value: Any = int(text) if DIGITS.fullmatch(text.strip()) else text
    try:
        return ResourcesSpec(pack=value).pack
    except ValidationError as exc:
        raise SpecError(f"{where}: {error_message(exc.errors()[0])}") from None


#: Fields added after studies were first stored, with their defaults: left out of the
#: hash at those values (paths into the spec's JSON).
LATER_DEFAULTS: tuple[tuple[tuple[str, ...], object], ...] = (
    (("precision",), "fp32"),
    (("arms", "grid", "min_weight"), 0.0),
    (("arms", "grid", "interior"), False),
    (("selection", "validation_fraction"), DEFAULT_VALIDATION_FRACTION),
    (("selection", "checkpoint"), Checkpoint.FINAL.value),
    (("arms", "optuna", "confirm"), 3),
)
#: sections added after the first release: left out of the hash when nothing in them is
#: set apart from its default
LATER_SECTIONS = ("selection",)


def _drop_absent_later_arms(data: dict[str, Any]) -> None:
    """A balancer added after the first release is left out when absent, so adding one
    changes neither the stored text nor the hash of a spec that does not use it."""
    for declaration in declarations():
        if not declaration.first_release and data["arms"].get(declaration.name, 0) is None:
            del data["arms"][declaration.name]


def _drop_later_defaults(data: dict[str, Any]) -> None:
    for path, default in LATER_DEFAULTS:
        parent: Any = data
        for key in path[:-1]:
            parent = parent.get(key) if isinstance(parent, dict) else None
        if isinstance(parent, dict) and path[-1] in parent and parent[path[-1]] == default:
            del parent[path[-1]]
    for section in LATER_SECTIONS:
        if data.get(section) == {}:
            del data[section]


class StudySpec(SpecModel):
    """One study: a problem, its arms, a budget and the seeds every arm runs over."""

    study: str = Field(
        max_length=200, description="the study's name: letters, digits, - _ . (no spaces)"
    )
    problem: ProblemSpec
    objective: ObjectiveName = Field(
        default="normalized_loss",
        description="normalized_loss: mean over tasks of test L_i / L_i at initialisation; "
        "delta_m: Δm%, the mean relative change of each task's metric against the study's "
        "equal-weight trials, sign by direction (needs arms.static with equal weights); "
        "lower is better for both",
    )
    budget: BudgetSpec
    precision: Literal["fp32", "bf16"] = Field(
        default="fp32",
        description="fp32, or bf16: the forward pass and losses under bfloat16 autocast "
        "(parameters, gradients, optimizers and GradNorm's norms and weights stay fp32)",
    )
    seeds: list[Seed] = Field(
        default=[0],
        min_length=1,
        max_length=MAX_SEEDS,
        description=f"initialisation and batch-order seeds, unique (at most {MAX_SEEDS:,}, "
        f"each at most {MAX_SEED:,})",
    )
    arms: ArmsSpec
    selection: SelectionSpec = Field(default_factory=SelectionSpec)
    resources: ResourcesSpec = Field(default_factory=ResourcesSpec)
    max_concurrent: int = Field(
        default=2, ge=1, le=MAX_CONCURRENT, description="trials running at once"
    )
    max_failures: int = Field(
        default=1, ge=0, le=MAX_FAILURES, description="retries of a crashed worker's trial"
    )
    # a guard on the spec's size, not part of the study: out of the hash and of a
    # relaunch's comparison (model_dump leaves it out), stored when set (canonical_text)
    limits: LimitsSpec = Field(
        default_factory=LimitsSpec,
        exclude=True,
        description="guards on the study's size (limits.max_trials), raised deliberately; "
        "they change no trial",
    )

    @model_validator(mode="after")
    def _delta_m_has_a_baseline(self) -> StudySpec:
        if self.objective == "delta_m" and not has_equal_weights(self):
            raise FieldError(
                ("objective",),
                "delta_m is measured against the equal-weight trials: add "
                "arms.static.weights [[1, 1, …]]",
            )
        return self

    @field_validator("problem", mode="before")
    @classmethod
    def _problem_shorthand(cls, value: Any) -> Any:
        # `problem: mypkg.module:make_problem` (or `problem: toy`) means no parameters
        return {"name": value} if isinstance(value, str) else value

    @field_validator("study")
    @classmethod
    def _name(cls, value: str) -> str:
        if not STUDY_NAME.fullmatch(value):
            raise ValueError("a study name is letters, digits, - _ . only")
        return value

    @field_validator("seeds")
    @classmethod
    def _unique_seeds(cls, value: list[int]) -> list[int]:
        repeat = first_repeat([str(seed) for seed in value])
        if repeat is not None:
            raise FieldError((repeat,), f"seed {value[repeat]} is listed twice")
        return value

    def canonical_text(self) -> str:
        """The validated spec as canonical JSON: what is stored and hashed."""
        data = self.model_dump(mode="json")
        _drop_absent_later_arms(data)
        if data["budget"]["trial_timeout"] is None:  # unset: the text stored before it existed
            del data["budget"]["trial_timeout"]
        if self.limits != LimitsSpec():  # raised: stored, so that resume honours it
            data["limits"] = self.limits.model_dump(mode="json")
        return json.dumps(data, sort_keys=True, separators=(",", ":"))

    @property
    def spec_hash(self) -> str:
        """Same for specs that differ only in layout, key order, spelt-out defaults (a
        problem's parameters included), the pack size or budget.trial_timeout (scheduling:
        a completed trial's result depends on neither). Fields added after the first
        release are left out at their defaults, so the hashes of studies stored before they
        existed stay the same."""
        data = self.model_dump(mode="json")
        del data["resources"]["pack"], data["budget"]["trial_timeout"]
        _drop_absent_later_arms(data)
        _drop_later_defaults(data)
        data["problem"]["params"] = self.problem.canonical_params()
        text = json.dumps(data, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()

    def task_count(self) -> int:
        """T: the toy's ``tasks`` parameter (2 by default), else the built problem's tasks."""
        tasks = self.problem.params.get("tasks", 2)
        if self.problem.name == "toy" and type(tasks) is int:
            return tasks
        return len(task_names(self))


def has_equal_weights(spec: StudySpec) -> bool:
    """Whether the static arm lists an equal weighting (the Δm% baseline)."""
    static = spec.arms.static
    return static is not None and any(is_equal_weighting(w) for w in static.weights)


# -- public entry points -----------------------------------------------------------------


def parse_spec(text: str, source: str = "<string>") -> StudySpec:
    """Validate YAML (or the stored canonical JSON, which is YAML too).

    Checks everything that does not need the task count; ``validate_spec`` does the rest.
    """
    data = read_spec_yaml(text, source)
    if data is None:
        raise SpecError(f"{source}: the spec is empty")
    if not isinstance(data, dict):
        raise SpecError(f"{source}: a spec is a mapping of keys (study, problem, budget, arms…)")
    nul = first_nul(data)
    if nul is not None:
        raise SpecError(
            f"{source}: {location(nul)}: holds a NUL character (\\x00), which the results "
            "database cannot store (PostgreSQL refuses it)"
        )
    try:
        spec = StudySpec.model_validate(data)
    except ValidationError as exc:
        raise one_line(source, exc) from None
    _check_problem_name(spec, source)
    return spec


def load_spec(path: str | Path) -> StudySpec:
    """Read and validate a spec file, including the checks that build the problem."""
    source = str(path)
    try:
        text = read_file(Path(path))
    except UnreadableYaml as exc:
        raise SpecError(f"{source}: {exc}") from None
    spec = parse_spec(text, source)
    validate_spec(spec, source)
    return spec


def renamed(spec: StudySpec, name: str) -> StudySpec:
    """The same spec under another study name (``--name``), validated like the file."""
    try:
        data = {**spec.model_dump(), "limits": spec.limits.model_dump(), "study": name}
        return StudySpec.model_validate(data)
    except ValidationError as exc:
        raise one_line("--name", exc) from None


def validate_spec(spec: StudySpec, source: str = "<string>") -> int:
    """The checks that need T (problem parameters, weights lengths, grid size, the plan's
    size, the evaluations a trial makes); returns T.

    The plan's size is counted twice, by arithmetic: before the problem is built (all but
    the grid, whose size needs T), then whole once T is known."""
    check_plan_size(spec, None, source)
    tasks = len(task_names(spec, source))
    if spec.arms.static is not None:
        for i, weights in enumerate(spec.arms.static.weights):
            if len(weights) != tasks:
                raise SpecError(
                    f"{source}: arms.static.weights[{i}]: {len(weights)} weights given for "
                    f"{tasks} tasks"
                )
    grid = spec.arms.grid
    if grid is not None:
        points = grid.size(tasks)
        if points == 0 and grid.min_count(tasks) >= 1:  # a plain grid may be empty (R = 1)
            rule = "> 0" if grid.interior and grid.min_weight == 0 else f">= {grid.min_weight:g}"
            raise SpecError(
                f"{source}: arms.grid: no point at resolution {grid.resolution} has every one "
                f"of its {tasks} weights {rule}; the least resolution with one is "
                f"{_least_resolution(grid, tasks)}"
            )
        limit = max(MAX_GRID_POINTS, spec.limits.max_trials)
        if points > limit:
            raise SpecError(
                f"{source}: arms.grid.resolution: {points} grid points for {tasks} tasks at "
                f"resolution {grid.resolution} (at most {limit}; try random or optuna)"
            )
    check_plan_size(spec, tasks, source)
    _check_evaluations(spec, source)
    return tasks


def _check_evaluations(spec: StudySpec, source: str) -> None:
    """The evaluations a trial makes, when ``eval_every`` is one epoch of the problem's
    training split (known once it is built): bounded like the rest of a trial."""
    if spec.budget.eval_every is not None:
        return  # checked with the budget
    every = _steps_per_epoch(
        spec.problem.name, spec.problem.params_json(), spec.selection.validation_fraction
    )
    said = evaluations_problem(spec.budget.steps, every, "budget.eval_every")
    if said is not None:
        raise SpecError(f"{source}: {said} (it is one epoch, {every:,} steps, when not set)")


def _least_resolution(grid: GridArm, tasks: int) -> int:
    """The least resolution above ``grid``'s whose grid keeps a point (min_weight 1 keeps
    only equal weights, at multiples of T)."""
    resolution = grid.resolution
    while grid.model_copy(update={"resolution": resolution}).size(tasks) == 0:
        resolution += 1
    return resolution


def task_names(spec: StudySpec, source: str = "<string>") -> list[str]:
    """The problem's task names, found by building it (which also checks its parameters)."""
    return [task["name"] for task in task_metrics(spec, source)]


def task_metrics(spec: StudySpec, source: str = "<string>") -> list[dict[str, str]]:
    """Per task: its name, primary metric and better direction, from the built problem."""
    try:
        built = _built_tasks(
            spec.problem.name, spec.problem.params_json(), spec.selection.validation_fraction
        )
        tasks = [dict(task) for task in built]
    except GradsweepError as exc:
        raise SpecError(f"{source}: problem.params: {exc}") from None
    except Exception as exc:  # a user's problem may raise anything on bad parameters
        first = str(exc).splitlines()[0] if str(exc) else ""
        raise SpecError(
            f"{source}: problem.params: {spec.problem.name} failed to build: "
            f"{type(exc).__name__}: {first}"
        ) from None
    _check_task_names(tasks, spec.problem.name, source)
    return tasks


def _check_task_names(tasks: list[dict[str, str]], problem: str, source: str) -> None:
    """The problem's task and metric names, as the results database keys them: storable,
    printable, and each task named once (``(trial, evaluation, task)`` is a row's key)."""
    seen: set[str] = set()
    for i, task in enumerate(tasks):
        for what in ("name", "metric"):
            said = name_problem(task[what])
            if said is not None:
                raise SpecError(
                    f"{source}: problem: {problem} names task {i}'s {what} "
                    f"{short(task[what])}, which {said}"
                )
        if task["name"] in seen:
            raise SpecError(
                f"{source}: problem: {problem} names two tasks {short(task['name'])}: "
                "each task needs a name of its own"
            )
        seen.add(task["name"])


def dry_run_problem(spec: StudySpec) -> None:
    """One training step and one test batch of the spec's problem on the CPU (see
    ``trainers/engine/dry_run.py``), then one step of each balancer arm's first
    configuration (``balancer_check.py``): a problem or a balancer that breaks its contract
    fails here, in one line, instead of in every trial. Once per problem and balancer in a
    process; call it after ``validate_spec``, which builds the problem."""
    fraction = spec.selection.validation_fraction
    _dry_run(spec.problem.name, spec.problem.params_json(), fraction)
    for arm in spec.arms.balancer_arms():
        first = arm.declaration.configurations_of(arm.params)[0]
        try:
            _check_balancer(
                spec.problem.name,
                spec.problem.params_json(),
                fraction,
                arm.key,
                json.dumps(first.arguments, sort_keys=True),
            )
        except GradsweepError as exc:
            said = str(exc)
            for named in (f"{arm.name}: ", f"balancer {arm.key}: "):  # the field names it
                said = said.removeprefix(named)
            raise SpecError(f"arms.{arm.key}: {said}") from None


def spec_json_schema() -> dict[str, Any]:
    """The JSON schema of a spec; the fields' descriptions come from the models."""
    schema = StudySpec.model_json_schema()
    problem = schema["properties"]["problem"]
    schema["properties"]["problem"] = {  # `problem: NAME` is short for `{name: NAME}`
        "anyOf": [{"type": "string", "description": "a problem name, no parameters"}, problem]
    }
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", **schema}


def _check_problem_name(spec: StudySpec, source: str) -> None:
    from gradsweep.trainers.registry import resolve_problem  # imports torch: only when asked

    try:
        resolve_problem(spec.problem.name)
    except ProblemError as exc:
        raise SpecError(f"{source}: problem.name: {exc}") from None


@functools.lru_cache(maxsize=8)
def _built_tasks(
    name: str, params_json: str, validation_fraction: float
) -> tuple[tuple[tuple[str, str], ...], ...]:
    from gradsweep.trainers.registry import built_problem  # imports torch: only when asked

    problem = built_problem(name, params_json, validation_fraction)
    return tuple(
        (("name", t.name), ("metric", t.metric), ("direction", t.direction)) for t in problem.tasks
    )


@functools.lru_cache(maxsize=8)
def _steps_per_epoch(name: str, params_json: str, validation_fraction: float) -> int:
    """A trial's steps per epoch, as the training loop counts them."""
    from gradsweep.trainers.registry import built_problem  # imports torch: only when asked

    problem = built_problem(name, params_json, validation_fraction)
    return max(len(problem.train_data) // problem.batch_size, 1)


@functools.lru_cache(maxsize=32)
def _problem_defaults(name: str) -> dict[str, Any]:
    """A problem factory's keyword defaults, as JSON values (none for an unknown name or
    a factory that takes ``**params``)."""
    from gradsweep.trainers.registry import resolve_problem  # imports torch: only when asked

    try:
        signature = inspect.signature(resolve_problem(name))
    except (ProblemError, TypeError, ValueError):
        return {}
    defaults = {}
    for parameter in signature.parameters.values():
        if parameter.default is inspect.Parameter.empty:
            continue
        try:
            defaults[parameter.name] = json.loads(json.dumps(parameter.default))
        except (TypeError, ValueError):  # a default JSON cannot hold: never spelt out equal
            continue
    return defaults


@functools.lru_cache(maxsize=16)
def _check_balancer(
    name: str, params_json: str, validation_fraction: float, balancer: str, arguments_json: str
) -> None:
    from gradsweep.trainers.balancers.catalog import make_balancer  # torch: only when asked
    from gradsweep.trainers.engine.balancer_check import check_balancer
    from gradsweep.trainers.registry import built_problem

    built = make_balancer(balancer, json.loads(arguments_json))
    check_balancer(built_problem(name, params_json, validation_fraction), built, balancer)


@functools.lru_cache(maxsize=8)
def _dry_run(name: str, params_json: str, validation_fraction: float) -> None:
    from gradsweep.trainers.engine.dry_run import dry_run  # imports torch: only when asked
    from gradsweep.trainers.registry import built_problem

    dry_run(built_problem(name, params_json, validation_fraction))
