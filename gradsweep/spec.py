"""A study spec (YAML) as pydantic models: the single source of truth for a study.

``load_spec`` reads and validates a file; every mistake becomes one ``SpecError`` line
that names the field, before anything touches the database.
"""

from __future__ import annotations

import functools
import hashlib
import json
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from gradsweep.errors import GradsweepError, ProblemError

SamplerName = Literal["tpe", "cmaes", "qmc", "gp", "random"]
InitialLossName = Literal["first_batch", "theoretical", "first_epoch_mean"]
ARM_ORDER = ("static", "grid", "random", "optuna", "gradnorm", "retrain")


class SpecError(GradsweepError):
    """A study spec that cannot be used; the message names the file and the field."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ProblemSpec(_Model):
    name: str = Field(description="a built-in problem (toy) or package.module:callable")
    params: dict[str, Any] = Field(default_factory=dict, description="the problem's parameters")


class BudgetSpec(_Model):
    steps: int = Field(ge=1, description="training steps per trial")
    eval_every: int | None = Field(
        default=None, ge=1, description="steps between evaluations (default: one epoch)"
    )
    trace_every: int = Field(default=10, ge=1, description="steps between recorded w(t) points")


class StaticArm(_Model):
    weights: list[list[float]] = Field(
        min_length=1, description="explicit static weightings, e.g. [[1, 1, 1]] for equal weights"
    )

    @field_validator("weights")
    @classmethod
    def _valid_weightings(cls, value: list[list[float]]) -> list[list[float]]:
        for weights in value:
            if any(w < 0 for w in weights) or not sum(weights) > 0:
                raise ValueError("weights must be non-negative with a positive sum")
        return value


class GridArm(_Model):
    resolution: int = Field(ge=1, description="R: the simplex grid w_i = T·k_i/R, Σk_i = R")
    include_vertices: bool = Field(
        default=False, description="include the T single-task points (all weight on one task)"
    )


class RandomArm(_Model):
    n: int = Field(ge=1, description="weightings drawn uniformly on the simplex (Dirichlet(1))")
    seed: int = Field(default=0, ge=0, description="seed of the draws")


class OptunaArm(_Model):
    n_trials: int = Field(ge=1, description="Optuna trials (run on the study's first seed)")
    sampler: SamplerName = Field(default="tpe", description="tpe, cmaes, qmc, gp or random")
    seed: int = Field(default=0, ge=0, description="the sampler's seed")


class GradNormArm(_Model):
    alphas: list[float] = Field(min_length=1, description="GradNorm α values (each ≥ 0)")
    lr: float = Field(default=0.025, gt=0, description="learning rate of the weights' Adam")
    initial_loss: InitialLossName = Field(default="first_batch", description="how L_i(0) is set")

    @field_validator("alphas")
    @classmethod
    def _non_negative(cls, value: list[float]) -> list[float]:
        for alpha in value:
            if alpha < 0:
                raise ValueError(f"alpha must be >= 0 (got {alpha})")
        return value


class RetrainArm(_Model):
    alpha: float = Field(
        description="retrain statically at this GradNorm α's time-averaged weights"
    )


class ArmsSpec(_Model):
    static: StaticArm | None = None
    grid: GridArm | None = None
    random: RandomArm | None = None
    optuna: OptunaArm | None = None
    gradnorm: GradNormArm | None = None
    retrain: RetrainArm | None = None

    def names(self) -> list[str]:
        return [name for name in ARM_ORDER if getattr(self, name) is not None]

    @model_validator(mode="after")
    def _consistent(self) -> ArmsSpec:
        if not self.names():
            raise ValueError("at least one arm is needed")
        if self.retrain is not None:
            alphas = self.gradnorm.alphas if self.gradnorm else []
            if self.retrain.alpha not in alphas:
                raise ValueError(
                    f"retrain.alpha {self.retrain.alpha} is not one of gradnorm.alphas {alphas}"
                )
        return self


class ResourcesSpec(_Model):
    cpus_per_trial: float = Field(default=1.0, gt=0, description="CPUs per trial (fractions ok)")
    gpus_per_trial: float = Field(default=0.0, ge=0, description="GPUs per trial (fractions ok)")


class StudySpec(_Model):
    study: str = Field(
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$",
        max_length=200,
        description="the study's name: letters, digits, - _ .",
    )
    problem: ProblemSpec
    objective: Literal["normalized_loss"] = Field(
        default="normalized_loss",
        description="mean over tasks of test L_i / L_i at initialisation (lower is better)",
    )
    budget: BudgetSpec
    seeds: list[int] = Field(default=[0], min_length=1, description="initialisation seeds")
    arms: ArmsSpec
    resources: ResourcesSpec = Field(default_factory=ResourcesSpec)
    max_concurrent: int = Field(default=2, ge=1, description="trials running at once")
    max_failures: int = Field(default=1, ge=0, description="retries of a crashed worker's trial")

    @field_validator("seeds")
    @classmethod
    def _unique_seeds(cls, value: list[int]) -> list[int]:
        if len(set(value)) != len(value) or any(seed < 0 for seed in value):
            raise ValueError("seeds must be unique and >= 0")
        return value

    def canonical_text(self) -> str:
        """The validated spec as canonical JSON: what is stored and hashed."""
        return json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))

    @property
    def spec_hash(self) -> str:
        return hashlib.sha256(self.canonical_text().encode()).hexdigest()


def _location(loc: tuple[int | str, ...]) -> str:
    path = ""
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path or "spec"


def _one_line(source: str, error: ValidationError) -> SpecError:
    first = error.errors()[0]
    where = _location(tuple(p for p in first["loc"] if not str(p).startswith("function-")))
    if first["type"] == "extra_forbidden":
        return SpecError(f"{source}: {where}: unknown key")
    message = first["msg"].removeprefix("Value error, ")
    if first["type"] == "missing":
        return SpecError(f"{source}: {where}: required")
    shown = first.get("input")
    got = f" (got {shown!r})" if not isinstance(shown, dict | list) else ""
    return SpecError(f"{source}: {where}: {message}{got}")


def parse_spec(text: str, source: str = "<spec>") -> StudySpec:
    """Validate YAML (or the stored canonical JSON, which is YAML too)."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise SpecError(f"{source}: invalid YAML{where}") from None
    if not isinstance(data, dict):
        raise SpecError(f"{source}: a spec is a mapping of keys (study, problem, budget, arms…)")
    try:
        spec = StudySpec.model_validate(data)
    except ValidationError as exc:
        raise _one_line(source, exc) from None
    _check_problem(spec, source)
    return spec


def renamed(spec: StudySpec, name: str) -> StudySpec:
    """The same spec under another study name (``--name``), validated like the file."""
    try:
        return StudySpec.model_validate({**spec.model_dump(), "study": name})
    except ValidationError as exc:
        raise _one_line("--name", exc) from None


def _check_problem(spec: StudySpec, source: str) -> None:
    from gradsweep.trainers.registry import resolve_problem

    try:
        resolve_problem(spec.problem.name)
    except ProblemError as exc:
        raise SpecError(f"{source}: problem.name: {exc}") from None


def load_spec(path: str | Path) -> StudySpec:
    """Read and validate a spec file, including the checks that need the task count."""
    source = str(path)
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise SpecError(f"{source}: cannot read: {exc.strerror or exc}") from None
    spec = parse_spec(text, source)
    validate_spec(spec, source)
    return spec


def task_names(spec: StudySpec, source: str = "<spec>") -> list[str]:
    """The problem's task names, found by building it (which also checks its parameters)."""
    try:
        return list(
            _built_task_names(spec.problem.name, json.dumps(spec.problem.params, sort_keys=True))
        )
    except ProblemError as exc:
        raise SpecError(f"{source}: problem.params: {exc}") from None


def task_count(spec: StudySpec, source: str = "<spec>") -> int:
    return len(task_names(spec, source))


@functools.lru_cache(maxsize=8)
def _built_task_names(name: str, params_json: str) -> tuple[str, ...]:
    from gradsweep.trainers.registry import make_problem

    return tuple(make_problem(name, json.loads(params_json)).task_names)


def validate_spec(spec: StudySpec, source: str = "<spec>") -> int:
    """The checks that need T (weights lengths); returns T."""
    tasks = task_count(spec, source)
    if spec.arms.static is not None:
        for i, weights in enumerate(spec.arms.static.weights):
            if len(weights) != tasks:
                raise SpecError(
                    f"{source}: arms.static.weights[{i}]: {len(weights)} weights given for "
                    f"{tasks} tasks"
                )
    return tasks


def spec_json_schema() -> dict[str, Any]:
    return StudySpec.model_json_schema()
