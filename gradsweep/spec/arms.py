"""The spec's arms: the static searches, retrain, and one arm per balancer declaration."""

from __future__ import annotations

import dataclasses
import functools
import math
import re
import typing
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import (
    ConfigDict,
    Field,
    ValidationError,
    create_model,
    field_validator,
    model_validator,
)

from gradsweep.arms import RETRAIN, STATIC_ARMS, grid_size, weights_in_key
from gradsweep.errors import GradsweepError
from gradsweep.spec.base import FieldError, SpecModel, first_repeat, name_problem
from gradsweep.spec.limits import (
    MAX_OPTUNA_TRIALS,
    MAX_PARAM_ITEMS,
    MAX_RESOLUTION,
    MAX_SAMPLER_SEED,
    MAX_TRIALS,
    MAX_WEIGHTINGS,
)
from gradsweep.spec.messages import first_error
from gradsweep.trainers.balancers.catalog import adaptive_declarations, is_import_path, resolve
from gradsweep.trainers.balancers.declaration import BalancerDeclaration, ParamError

NonNegativeFloat = Annotated[float, Field(ge=0)]
SamplerName = Literal["tpe", "cmaes", "qmc", "gp", "random"]
#: retrain is the paper's "GradNorm Static": static training at this balancer's
#: time-averaged weights (its arm has ``alphas``)
RETRAINED = "gradnorm"


class StaticArm(SpecModel):
    """Explicit static weightings, e.g. equal weights as a baseline."""

    weights: list[list[NonNegativeFloat]] = Field(
        min_length=1,
        max_length=MAX_WEIGHTINGS,
        description="weightings, each non-negative with a positive sum and T entries, "
        f"e.g. [[1, 1, 1]] for equal weights (at most {MAX_WEIGHTINGS:,})",
    )

    @field_validator("weights")
    @classmethod
    def _usable(cls, value: list[list[float]]) -> list[list[float]]:
        for i, weights in enumerate(value):
            if not sum(weights) > 0:
                raise FieldError((i,), "weights must have a positive sum")
        repeat = first_repeat([weights_in_key(w) for w in value])
        if repeat is not None:
            raise FieldError((repeat,), "this weighting is listed twice")
        return value


class GridArm(SpecModel):
    """Exhaustive search: every point of the simplex lattice at resolution R."""

    resolution: int = Field(
        ge=1,
        le=MAX_RESOLUTION,
        description=f"R: the simplex grid w_i = T·k_i/R, Σk_i = R (at most {MAX_RESOLUTION:,})",
    )
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
            raise FieldError(
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


class RandomArm(SpecModel):
    """Weightings drawn uniformly on the simplex (the paper's Sec. 5.3 protocol)."""

    n: int = Field(
        ge=1,
        le=MAX_TRIALS,
        description="weightings drawn uniformly on the simplex (Dirichlet(1)); at most "
        f"{MAX_TRIALS:,}",
    )
    seed: int = Field(default=0, ge=0, le=MAX_SAMPLER_SEED, description="seed of the draws")


class OptunaArm(SpecModel):
    """An Optuna sampler over static weightings, steered by the validation objective: each
    suggestion is one run on the first seed; then its ``confirm`` best suggestions (by
    validation) run on every other seed, so Optuna can supply the static optimum on the
    same seeds as every other weighting."""

    n_trials: int = Field(
        ge=1,
        le=MAX_OPTUNA_TRIALS,
        description="Optuna trials (each runs on the study's first seed; at most "
        f"{MAX_OPTUNA_TRIALS:,})",
    )
    sampler: SamplerName = Field(default="tpe", description="tpe, cmaes, qmc, gp or random")
    seed: int = Field(
        default=0,
        ge=0,
        le=MAX_SAMPLER_SEED,
        description="the sampler's seed (at most 2**32 - 1, numpy's range)",
    )
    confirm: int = Field(
        default=3,
        ge=0,
        le=MAX_OPTUNA_TRIALS,
        description="the best suggestions by validation objective trained on every other "
        "seed afterwards (0: none; the static optimum only takes weightings run on every seed)",
    )


class RetrainArm(SpecModel):
    """Static training at a finished GradNorm configuration's time-averaged weights."""

    alpha: float = Field(
        description="retrain statically at this GradNorm α's time-averaged weights "
        f"(one of arms.{RETRAINED}.alphas)"
    )


class _Arms(SpecModel):
    """The search methods of the study; at least one. Besides the static searches and
    retrain, one optional field per built-in balancer (``arms.<name>``), and any number of
    ``package.module:Class`` keys: a user's balancers, imported to be checked."""

    # a user's balancer arm is a key of its own (validated in _user_balancers)
    model_config = ConfigDict(extra="allow")

    static: StaticArm | None = None
    grid: GridArm | None = None
    random: RandomArm | None = None
    optuna: OptunaArm | None = None
    retrain: RetrainArm | None = None

    def names(self) -> list[str]:
        """The arms given, in plan order (a user's balancer under its declared name)."""
        given = [name for name in arm_order() if getattr(self, name, None) is not None]
        users = [resolve(key).declaration.name for key in self.user_balancers()]
        return [*given[:-1], *users, given[-1]] if self.retrain else [*given, *users]

    def user_balancers(self) -> dict[str, dict[str, Any]]:
        """``package.module:Class`` → its validated parameters, in spec order."""
        return dict(self.__pydantic_extra__ or {})

    def balancer_arms(self) -> list[BalancerArm]:
        """Every balancer arm given: the built-ins in order, then a user's in spec order."""
        arms = []
        for declaration in adaptive_declarations():
            given = getattr(self, declaration.name, None)
            if given is not None:
                arms.append(BalancerArm(declaration.name, declaration, _params(declaration, given)))
        for key, values in self.user_balancers().items():
            declaration = resolve(key).declaration
            arms.append(BalancerArm(key, declaration, declaration.params(**values)))
        return arms

    @model_validator(mode="before")
    @classmethod
    def _user_balancers(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        names: dict[str, str] = {}
        checked = {}
        for key, value in data.items():
            if key in cls.model_fields:
                checked[key] = value
                continue
            if not is_import_path(str(key)):
                raise FieldError((key,), "unknown key")
            said = name_problem(str(key))
            if said is not None:
                raise FieldError((key,), said)
            try:
                declaration = resolve(key).declaration
            except GradsweepError as exc:
                raise FieldError((key,), str(exc)) from None
            said = name_problem(declaration.name)
            if said is not None:
                raise FieldError((key,), f"its declared name {declaration.name!r} {said}")
            if declaration.name in names:
                raise FieldError(
                    (key,), f"declares the name {declaration.name!r}, as {names[declaration.name]}"
                )
            names[declaration.name] = key
            checked[key] = _validated(declaration, key, value)
        return checked

    @model_validator(mode="after")
    def _consistent(self) -> _Arms:
        if not self.names():
            raise ValueError(f"at least one arm is needed ({', '.join(arm_order())})")
        for arm in self.balancer_arms():
            missing = arm.declaration.missing_requirement()
            if missing is not None:
                raise FieldError((arm.key,), missing)
        if self.retrain is not None:
            source = getattr(self, RETRAINED)
            if source is None:
                raise FieldError(("retrain", "alpha"), f"needs a {RETRAINED} arm with this alpha")
            if self.retrain.alpha not in source.alphas:
                raise FieldError(
                    ("retrain", "alpha"),
                    f"{self.retrain.alpha:g} is not one of arms.{RETRAINED}.alphas "
                    f"[{', '.join(f'{a:g}' for a in source.alphas)}]",
                )
        return self


@dataclass(frozen=True)
class BalancerArm:
    """One balancer arm of a spec: its key there (a built-in name or an import path, also
    the trials' ``balancer``), its declaration, and its parameters (the declared dataclass)."""

    key: str
    declaration: BalancerDeclaration
    params: Any

    @property
    def name(self) -> str:
        """The arm's name in trial keys and the ``arm`` column: the declared name."""
        return self.declaration.name


def arm_order() -> list[str]:
    """Every arm a spec may name, in plan order: the static searches, each built-in
    balancer in its declared order, retrain last."""
    return [*STATIC_ARMS, *(d.name for d in adaptive_declarations()), RETRAIN]


def _params(declaration: BalancerDeclaration, given: SpecModel) -> Any:
    return declaration.params(**{name: getattr(given, name) for name in type(given).model_fields})


def _validated(declaration: BalancerDeclaration, key: str, value: Any) -> dict[str, Any]:
    """A user's balancer arm checked by its declared parameters; the error names the field."""
    try:
        model = arm_model(declaration).model_validate({} if value is None else value)
    except ValidationError as exc:
        loc, message = first_error(exc)
        raise FieldError((key, *loc), message) from None
    return model.model_dump()


@functools.cache
def arm_model(declaration: BalancerDeclaration) -> type[SpecModel]:
    """The pydantic model of a balancer's arm, from its declared parameters: each field's
    type, default, description and bounds, and the dataclass's ``check()``."""
    hints = typing.get_type_hints(declaration.params)
    fields: dict[str, Any] = {}
    for spec_field in declaration.parameter_fields():
        metadata = dict(spec_field.metadata)
        if typing.get_origin(hints[spec_field.name]) is list:  # each item is a configuration
            metadata.setdefault("max_length", MAX_PARAM_ITEMS)
        default = ... if spec_field.default is dataclasses.MISSING else spec_field.default
        fields[spec_field.name] = (hints[spec_field.name], Field(default, **metadata))

    def checked(arm: SpecModel) -> SpecModel:
        check = getattr(_params(declaration, arm), "check", None)
        if check is not None:
            try:
                check()
            except ParamError as exc:
                raise FieldError(exc.path, str(exc)) from None
        return arm

    validators: dict[str, Any] = {"_declared_check": model_validator(mode="after")(checked)}
    return create_model(
        "".join(part.capitalize() for part in re.split(r"[^A-Za-z0-9]", declaration.name)) + "Arm",
        __base__=SpecModel,
        __doc__=declaration.summary,
        __validators__=validators,
        **fields,
    )


def _arms_spec() -> type[_Arms]:
    balancers: dict[str, Any] = {
        d.name: (arm_model(d) | None, Field(default=None, title=d.display, description=d.summary))
        for d in adaptive_declarations()
    }
    return create_model("ArmsSpec", __base__=_Arms, __doc__=_Arms.__doc__, **balancers)


if TYPE_CHECKING:  # the static fields are what typed code reads; balancer arms by name
    ArmsSpec = _Arms
else:
    ArmsSpec = _arms_spec()
