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
import math
import re
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from gradsweep.arms import ARM_ORDER, format_weights, grid_size, is_equal_weighting
from gradsweep.errors import GradsweepError, ProblemError
from gradsweep.yaml_reader import UnreadableYaml, read_file, read_yaml

SamplerName = Literal["tpe", "cmaes", "qmc", "gp", "random"]
InitialLossName = Literal["first_batch", "theoretical", "first_epoch_mean"]
ObjectiveName = Literal["normalized_loss", "delta_m"]
RlwDistribution = Literal["normal", "dirichlet"]
STUDY_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
# A grid beyond this is a typo (T=10 at R=20 is ten million trials), not a study.
MAX_GRID_POINTS = 100_000

NonNegativeFloat = Annotated[float, Field(ge=0)]
Seed = Annotated[int, Field(ge=0)]


class SpecError(GradsweepError):
    """A study spec that cannot be used; the message names the file and the field."""


class _FieldError(ValueError):
    """A validator's error about a field below the one being validated (e.g. an index)."""

    def __init__(self, path: tuple[int | str, ...], message: str) -> None:
        super().__init__(message)
        self.path = path


class _Model(BaseModel):
    # strict: YAML is typed, so "4" for an integer or true for a seed is a mistake.
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)


def _first_repeat(labels: list[str]) -> int | None:
    seen: set[str] = set()
    for i, label in enumerate(labels):
        if label in seen:
            return i
        seen.add(label)
    return None


class ProblemSpec(_Model):
    """The multitask problem every trial trains on."""

    name: str = Field(
        description="a built-in problem (toy, digits, multimnist, nyuv2) or package.module:callable"
    )
    params: dict[str, Any] = Field(
        default_factory=dict, description="keyword arguments of the problem's constructor"
    )

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


class BudgetSpec(_Model):
    """How long each trial trains and how often it reports."""

    steps: int = Field(ge=1, description="training steps per trial")
    eval_every: int | None = Field(
        default=None, ge=1, description="steps between test evaluations (default: one epoch)"
    )
    trace_every: int = Field(default=10, ge=1, description="steps between recorded w(t) points")


class StaticArm(_Model):
    """Explicit static weightings, e.g. equal weights as a baseline."""

    weights: list[list[NonNegativeFloat]] = Field(
        min_length=1,
        description="weightings, each non-negative with a positive sum and T entries, "
        "e.g. [[1, 1, 1]] for equal weights",
    )

    @field_validator("weights")
    @classmethod
    def _usable(cls, value: list[list[float]]) -> list[list[float]]:
        for i, weights in enumerate(value):
            if not sum(weights) > 0:
                raise _FieldError((i,), "weights must have a positive sum")
        repeat = _first_repeat([format_weights(w) for w in value])
        if repeat is not None:
            raise _FieldError((repeat,), "this weighting is listed twice")
        return value


class GridArm(_Model):
    """Exhaustive search: every point of the simplex lattice at resolution R."""

    resolution: int = Field(ge=1, description="R: the simplex grid w_i = T·k_i/R, Σk_i = R")
    include_vertices: bool = Field(
        default=False, description="include the T single-task points (all weight on one task)"
    )
    min_weight: float = Field(
        default=0.0,
        ge=0,
        le=1,
        description="only the points with every w_i >= min_weight (a filter of the same grid)",
    )
    interior: bool = Field(
        default=False, description="only the points with every w_i > 0 (every task on)"
    )

    @model_validator(mode="after")
    def _vertices_or_every_task_on(self) -> GridArm:
        if self.include_vertices and (self.interior or self.min_weight > 0):
            raise _FieldError(
                ("include_vertices",),
                "a vertex switches every task but one off: it cannot go with interior or "
                "min_weight",
            )
        return self

    def min_count(self, tasks: int) -> int:
        """The least ``k_i`` of a point kept: ``w_i = T·k_i/R ≥ min_weight``, and ≥ 1 for
        ``interior``."""
        least = math.ceil(self.min_weight * self.resolution / tasks - 1e-9)
        return max(least, 1) if self.interior else least

    def size(self, tasks: int) -> int:
        return grid_size(tasks, self.resolution, self.include_vertices, self.min_count(tasks))

    def holds(self, weights: list[float], tasks: int) -> bool:
        """Whether this grid has a point equal to ``weights`` to 6 significant digits (as
        trial keys spell weights): such a weighting trains once, for both arms."""
        if len(weights) != tasks:
            return False
        counts = [round(w * self.resolution / tasks) for w in weights]
        if sum(counts) != self.resolution or min(counts) < self.min_count(tasks):
            return False
        if not self.include_vertices and max(counts) == self.resolution:
            return False
        point = [tasks * k / self.resolution for k in counts]
        return format_weights(point) == format_weights(weights)


class RandomArm(_Model):
    """Weightings drawn uniformly on the simplex (the paper's Sec. 5.3 protocol)."""

    n: int = Field(ge=1, description="weightings drawn uniformly on the simplex (Dirichlet(1))")
    seed: int = Field(default=0, ge=0, description="seed of the draws")


class OptunaArm(_Model):
    """An Optuna sampler over static weightings; each suggestion is one run on the first seed."""

    n_trials: int = Field(ge=1, description="Optuna trials (each runs on the study's first seed)")
    sampler: SamplerName = Field(default="tpe", description="tpe, cmaes, qmc, gp or random")
    seed: int = Field(default=0, ge=0, description="the sampler's seed")


class GradNormArm(_Model):
    """GradNorm runs (Chen et al., ICML 2018): each α × every seed."""

    alphas: list[float] = Field(min_length=1, description="GradNorm α values (each ≥ 0)")
    lr: float = Field(default=0.025, gt=0, description="learning rate of the weights' Adam")
    initial_loss: InitialLossName = Field(
        default="first_batch",
        description="how L_i(0) is set: first_batch, theoretical or first_epoch_mean",
    )

    @field_validator("alphas")
    @classmethod
    def _distinct_non_negative(cls, value: list[float]) -> list[float]:
        for i, alpha in enumerate(value):
            if alpha < 0:
                raise _FieldError((i,), f"alpha must be >= 0 (got {alpha})")
        repeat = _first_repeat([format_weights((alpha,)) for alpha in value])
        if repeat is not None:
            raise _FieldError((repeat,), f"alpha {value[repeat]:g} is listed twice")
        return value


class UncertaintyArm(_Model):
    """Uncertainty weighting (Kendall et al. 2018): learned log-variances, run on every seed."""

    lr: float = Field(default=0.025, gt=0, description="learning rate of the log-variances' Adam")


class DwaArm(_Model):
    """Dynamic Weight Average (Liu et al. 2019): weights from the last two epochs' loss ratios."""

    temperature: float = Field(default=2.0, gt=0, description="softmax temperature τ")


class RlwArm(_Model):
    """Random loss weighting (Lin et al. 2022): fresh random weights at every step."""

    distribution: RlwDistribution = Field(
        default="normal", description="normal: softmax of N(0, I); dirichlet: Dirichlet(c·1)"
    )
    concentration: float = Field(
        default=1.0, gt=0, description="the Dirichlet concentration c (dirichlet only)"
    )


class RetrainArm(_Model):
    """Static training at a finished GradNorm configuration's time-averaged weights."""

    alpha: float = Field(
        description="retrain statically at this GradNorm α's time-averaged weights "
        "(one of arms.gradnorm.alphas)"
    )


class ArmsSpec(_Model):
    """The search methods of the study; at least one."""

    static: StaticArm | None = None
    grid: GridArm | None = None
    random: RandomArm | None = None
    optuna: OptunaArm | None = None
    gradnorm: GradNormArm | None = None
    uncertainty: UncertaintyArm | None = None
    dwa: DwaArm | None = None
    rlw: RlwArm | None = None
    retrain: RetrainArm | None = None

    def names(self) -> list[str]:
        return [name for name in ARM_ORDER if getattr(self, name) is not None]

    @model_validator(mode="after")
    def _consistent(self) -> ArmsSpec:
        if not self.names():
            raise ValueError(f"at least one arm is needed ({', '.join(ARM_ORDER)})")
        if self.retrain is not None:
            if self.gradnorm is None:
                raise _FieldError(("retrain", "alpha"), "needs a gradnorm arm with this alpha")
            if self.retrain.alpha not in self.gradnorm.alphas:
                raise _FieldError(
                    ("retrain", "alpha"),
                    f"{self.retrain.alpha:g} is not one of arms.gradnorm.alphas "
                    f"[{', '.join(f'{a:g}' for a in self.gradnorm.alphas)}]",
                )
        return self


class ResourcesSpec(_Model):
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
        raise ValueError(f"must be an integer >= 1 or auto (got {_short(value)})")


#: Fields added after studies were first stored, with their defaults: left out of the
#: hash at those values (paths into the spec's JSON).
LATER_DEFAULTS: tuple[tuple[tuple[str, ...], object], ...] = (
    (("precision",), "fp32"),
    (("arms", "grid", "min_weight"), 0.0),
    (("arms", "grid", "interior"), False),
)


def _drop_later_defaults(data: dict[str, Any]) -> None:
    for path, default in LATER_DEFAULTS:
        parent: Any = data
        for key in path[:-1]:
            parent = parent.get(key) if isinstance(parent, dict) else None
        if isinstance(parent, dict) and path[-1] in parent and parent[path[-1]] == default:
            del parent[path[-1]]


class StudySpec(_Model):
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
        default=[0], min_length=1, description="initialisation and batch-order seeds, unique"
    )
    arms: ArmsSpec
    resources: ResourcesSpec = Field(default_factory=ResourcesSpec)
    max_concurrent: int = Field(default=2, ge=1, description="trials running at once")
    max_failures: int = Field(default=1, ge=0, description="retries of a crashed worker's trial")

    @model_validator(mode="after")
    def _delta_m_has_a_baseline(self) -> StudySpec:
        if self.objective == "delta_m" and not has_equal_weights(self):
            raise _FieldError(
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
        repeat = _first_repeat([str(seed) for seed in value])
        if repeat is not None:
            raise _FieldError((repeat,), f"seed {value[repeat]} is listed twice")
        return value

    def canonical_text(self) -> str:
        """The validated spec as canonical JSON: what is stored and hashed."""
        return json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))

    @property
    def spec_hash(self) -> str:
        """Same for specs that differ only in layout, key order, spelt-out defaults (a
        problem's parameters included) or the pack size (packing is scheduling: a trial's
        result does not depend on it). Fields added after the first release are left out
        at their defaults, so the hashes of studies stored before they existed stay the
        same."""
        data = self.model_dump(mode="json")
        del data["resources"]["pack"]
        _drop_later_defaults(data)
        data["problem"]["params"] = self.problem.canonical_params()
        text = json.dumps(data, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()

    def planned_count(self, tasks: int) -> int:
        """Every trial the study will run at T = ``tasks``, Optuna's and retrain's too."""
        arms = self.arms
        per_seed = sum(1 for arm in (arms.uncertainty, arms.dwa, arms.rlw, arms.retrain) if arm)
        if arms.static is not None:
            per_seed += len(arms.static.weights)
        if arms.grid is not None:
            per_seed += arms.grid.size(tasks) - len(self.shared_weightings(tasks))
        if arms.random is not None:
            per_seed += arms.random.n
        if arms.gradnorm is not None:
            per_seed += len(arms.gradnorm.alphas)
        optuna = arms.optuna.n_trials if arms.optuna is not None else 0
        return per_seed * len(self.seeds) + optuna

    def shared_weightings(self, tasks: int) -> list[list[float]]:
        """The static arm's weightings that the grid also holds: each trains once a seed."""
        static, grid = self.arms.static, self.arms.grid
        if static is None or grid is None:
            return []
        return [w for w in static.weights if grid.holds(w, tasks)]

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


# -- turning pydantic's errors into one line -------------------------------------------

_MESSAGES = {
    "missing": "required",
    "extra_forbidden": "unknown key",
    "int_type": "must be an integer",
    "float_type": "must be a number",
    "finite_number": "must be a finite number",
    "bool_type": "must be true or false",
    "string_type": "must be a string",
    "list_type": "must be a list",
    "dict_type": "must be a mapping",
    "model_type": "must be a mapping",
    "too_short": "must not be empty",
}
_BOUNDS = {
    "greater_than_equal": ">=",
    "greater_than": ">",
    "less_than_equal": "<=",
    "less_than": "<",
}


def _key(part: object) -> str:
    """A key as it can be printed: control characters escaped, the length bounded."""
    text = str(part)
    if not text.isprintable():
        text = repr(text)[1:-1]
    return text if len(text) <= 40 else text[:39] + "…"


def _location(loc: tuple[int | str, ...]) -> str:
    path = ""
    for part in loc:
        key = _key(part)
        path += f"[{key}]" if isinstance(part, int) else (f".{key}" if path else key)
    return path or "spec"


def _message(error: Any) -> str:
    kind = error["type"]
    ctx = error.get("ctx", {})
    if kind in _BOUNDS:
        bound = next(iter(ctx.values()))
        return f"must be {_BOUNDS[kind]} {bound:g}"
    if kind == "literal_error":
        expected = str(ctx["expected"])
        return f"must be one of {expected}" if " or " in expected else f"must be {expected}"
    if kind == "string_too_long":
        return f"must be at most {ctx['max_length']} characters"
    if kind in _MESSAGES:
        return _MESSAGES[kind]
    return str(error["msg"]).removeprefix("Value error, ")


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _one_line(source: str, error: ValidationError) -> SpecError:
    """The first error as ``source: field.path: message (got value)``."""
    first = error.errors(include_url=False)[0]
    loc = tuple(p for p in first["loc"] if not str(p).startswith("function-"))
    cause = first.get("ctx", {}).get("error")
    if isinstance(cause, _FieldError):
        loc += cause.path
    message = _message(first)
    shown = first.get("input")
    got = ""
    if first["type"] not in ("missing", "extra_forbidden", "value_error"):
        got = f" (got {_short(shown)})" if not isinstance(shown, dict | list) else ""
    return SpecError(f"{source}: {_location(loc)}: {message}{got}")


# -- reading YAML ----------------------------------------------------------------------


def _check_duplicate_keys(node: yaml.Node, path: tuple[int | str, ...], source: str) -> None:
    """PyYAML keeps the last of two equal keys silently; a spec names each key once."""
    if isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _check_duplicate_keys(item, (*path, i), source)
    elif isinstance(node, yaml.MappingNode):
        lines: dict[str, int] = {}
        for key, value in node.value:
            name = str(key.value)
            if name in lines:
                raise SpecError(
                    f"{source}: {_location((*path, name))}: listed twice "
                    f"(lines {lines[name]} and {key.start_mark.line + 1})"
                )
            lines[name] = key.start_mark.line + 1
            _check_duplicate_keys(value, (*path, name), source)


def _read_yaml(text: str, source: str) -> Any:
    """The document's data; size, depth, aliases and duplicate keys checked first."""
    try:
        data, root = read_yaml(text)
    except UnreadableYaml as exc:
        raise SpecError(f"{source}: {exc}") from None
    if root is not None:
        _check_duplicate_keys(root, (), source)
    return data


# -- public entry points -----------------------------------------------------------------


def parse_spec(text: str, source: str = "<string>") -> StudySpec:
    """Validate YAML (or the stored canonical JSON, which is YAML too).

    Checks everything that does not need the task count; ``validate_spec`` does the rest.
    """
    data = _read_yaml(text, source)
    if data is None:
        raise SpecError(f"{source}: the spec is empty")
    if not isinstance(data, dict):
        raise SpecError(f"{source}: a spec is a mapping of keys (study, problem, budget, arms…)")
    try:
        spec = StudySpec.model_validate(data)
    except ValidationError as exc:
        raise _one_line(source, exc) from None
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
        return StudySpec.model_validate({**spec.model_dump(), "study": name})
    except ValidationError as exc:
        raise _one_line("--name", exc) from None


def validate_spec(spec: StudySpec, source: str = "<string>") -> int:
    """The checks that need T (problem parameters, weights lengths, grid size); returns T."""
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
        if points > MAX_GRID_POINTS:
            raise SpecError(
                f"{source}: arms.grid.resolution: {points} grid points for {tasks} tasks at "
                f"resolution {grid.resolution} (at most {MAX_GRID_POINTS}; try random or optuna)"
            )
    return tasks


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
        return [dict(task) for task in _built_tasks(spec.problem.name, spec.problem.params_json())]
    except GradsweepError as exc:
        raise SpecError(f"{source}: problem.params: {exc}") from None
    except Exception as exc:  # a user's problem may raise anything on bad parameters
        first = str(exc).splitlines()[0] if str(exc) else ""
        raise SpecError(
            f"{source}: problem.params: {spec.problem.name} failed to build: "
            f"{type(exc).__name__}: {first}"
        ) from None


def dry_run_problem(spec: StudySpec) -> None:
    """One training step and one test batch of the spec's problem on the CPU (see
    ``trainers/engine/dry_run.py``): a problem that breaks its contract fails here, in one line,
    instead of in every trial. Once per problem in a process; call it after
    ``validate_spec``, which builds the problem."""
    _dry_run(spec.problem.name, spec.problem.params_json())
    gradnorm = spec.arms.gradnorm
    if gradnorm is not None and gradnorm.initial_loss == "theoretical":
        known = _theoretical_losses(spec.problem.name, spec.problem.params_json())
        if known is None:
            raise SpecError(
                f"arms.gradnorm.initial_loss: theoretical, but problem {spec.problem.name} "
                "has no theoretical initial losses: use first_batch or first_epoch_mean"
            )


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
def _built_tasks(name: str, params_json: str) -> tuple[tuple[tuple[str, str], ...], ...]:
    from gradsweep.trainers.registry import built_problem  # imports torch: only when asked

    problem = built_problem(name, params_json)
    return tuple(
        (("name", t.name), ("metric", t.metric), ("direction", t.direction)) for t in problem.tasks
    )


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


@functools.lru_cache(maxsize=8)
def _theoretical_losses(name: str, params_json: str) -> tuple[float | None, ...] | None:
    from gradsweep.trainers.registry import built_problem  # imports torch: only when asked

    values = built_problem(name, params_json).theoretical_initial_losses()
    return None if values is None else tuple(values)


@functools.lru_cache(maxsize=8)
def _dry_run(name: str, params_json: str) -> None:
    from gradsweep.trainers.engine.dry_run import dry_run  # imports torch: only when asked
    from gradsweep.trainers.registry import built_problem

    dry_run(built_problem(name, params_json))
