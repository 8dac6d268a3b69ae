"""Named problems, and a user's own by import path or entry point (balancers: catalog.py).

Naming a problem by import path imports its module and, once the name passes the checks of
``plugins.py`` (a MultitaskProblem subclass, a ``@problem_factory``, an entry point), calls
it with the spec's parameters."""

from __future__ import annotations

import functools
import inspect
import json
from collections.abc import Callable
from typing import Any, cast

from gradsweep.arms import DEFAULT_VALIDATION_FRACTION
from gradsweep.errors import ProblemError
from gradsweep.trainers.plugins import (
    PROBLEM_GROUP,
    ImportPathError,
    describe,
    import_attribute,
    is_marked_factory,
    registered_problems,
)
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
    """A built-in name, an installed package's ``gradsweep.problems`` entry point (its name
    or its ``module:callable``), or ``package.module:callable`` naming a MultitaskProblem
    subclass or a function marked ``@problem_factory``.

    The module is imported to read the mark; nothing it holds is called here, and anything
    unmarked is refused in one line: a spec that names code runs it (plugins.py)."""
    if name in PROBLEMS:
        return PROBLEMS[name]
    if ":" in name:
        return _checked(name, name)
    registered = registered_problems()
    if name not in registered:
        known = [*sorted(PROBLEMS), *sorted(registered)]
        raise ProblemError(
            f"unknown problem {name!r}: use one of {', '.join(known)} or 'package.module:callable'"
        )
    return _checked(name, registered[name], registered=True)


def _checked(name: str, path: str, registered: bool = False) -> ProblemFactory:
    """The factory ``path`` names, once it shows it was written to be named: a
    MultitaskProblem subclass (not abstract), a marked function, or an entry point."""
    try:
        found = import_attribute(path)
    except ImportPathError as exc:
        raise ProblemError(f"problem {name!r}: {exc}") from None
    dotted = path.replace(":", ".")
    if not callable(found):
        raise ProblemError(f"problem {name!r}: {dotted} is {describe(found)}, not callable")
    if inspect.isclass(found) and issubclass(found, MultitaskProblem):
        if inspect.isabstract(found):
            raise ProblemError(
                f"problem {name!r}: {dotted} is abstract: name a subclass that implements it"
            )
        return cast(ProblemFactory, found)
    if registered or is_marked_factory(found) or path in registered_problems().values():
        return cast(ProblemFactory, found)
    what = "a MultitaskProblem subclass" if inspect.isclass(found) else "a problem factory"
    raise ProblemError(
        f"problem {name!r}: {dotted} is {describe(found)}, not {what}, so it was not "
        "called: name a MultitaskProblem subclass, a function marked "
        f"@gradsweep.problem_factory, or one registered in the {PROBLEM_GROUP!r} entry points"
    )


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
