"""Named problems, and the import path for a user's own problem (balancers: catalog.py)."""

from __future__ import annotations

import functools
import importlib
import json
from collections.abc import Callable
from typing import Any

from gradsweep.arms import DEFAULT_VALIDATION_FRACTION
from gradsweep.errors import ProblemError
from gradsweep.trainers.problems.base import MultitaskProblem
from gradsweep.trainers.problems.digits import MultiDigits
from gradsweep.trainers.problems.multimnist import MultiMNIST
from gradsweep.trainers.problems.nyuv2 import NYUv2
from gradsweep.trainers.problems.toy import ToyRegression
from gradsweep.trainers.problems.validation import with_validation

ProblemFactory = Callable[..., MultitaskProblem]

PROBLEMS: dict[str, ProblemFactory] = {
    "toy": ToyRegression,
    "digits": MultiDigits,
    "multimnist": MultiMNIST,
    "nyuv2": NYUv2,
}


def resolve_problem(name: str) -> ProblemFactory:
    """A built-in name, or ``package.module:callable`` returning a MultitaskProblem."""
    if name in PROBLEMS:
        return PROBLEMS[name]
    if ":" not in name:
        raise ProblemError(
            f"unknown problem {name!r}: use one of {', '.join(sorted(PROBLEMS))} "
            "or 'package.module:callable'"
        )
    module_name, _, attribute = name.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ProblemError(f"problem {name!r}: cannot import {module_name!r}: {exc}") from exc
    factory = getattr(module, attribute, None)
    if not callable(factory):
        raise ProblemError(f"problem {name!r}: {module_name} has no callable {attribute!r}")
    return factory


def make_problem(
    name: str,
    params: dict[str, Any] | None = None,
    validation_fraction: float = DEFAULT_VALIDATION_FRACTION,
) -> MultitaskProblem:
    """Build a problem with its validation split (its own, or ``validation_fraction`` of
    its training data held out); bad parameters become a ProblemError naming them."""
    factory = resolve_problem(name)
    try:
        problem = factory(**(params or {}))
    except TypeError as exc:
        raise ProblemError(f"problem {name!r}: bad parameters: {exc}") from exc
    if not isinstance(problem, MultitaskProblem):
        raise ProblemError(f"problem {name!r} did not return a MultitaskProblem")
    return with_validation(problem, validation_fraction)


@functools.lru_cache(maxsize=4)
def built_problem(
    name: str, params_json: str, validation_fraction: float = DEFAULT_VALIDATION_FRACTION
) -> MultitaskProblem:
    """The problem built once per name, parameters and validation fraction in this process:
    the driver's checks share one build, and a reused Ray worker builds each problem's data
    once, not per trial."""
    return make_problem(name, json.loads(params_json), validation_fraction)
