"""What a spec may name by import path, and how a name is looked up before anything runs.

A spec (or ``gradsweep train``) that names ``package.module:callable`` imports that module
and, once its checks pass, calls the callable with the spec's parameters: naming code runs
it. So a name is honoured only when it points at code written to be run this way:

- a problem: a ``MultitaskProblem`` subclass, a function marked ``@problem_factory``, or
  a target of the ``gradsweep.problems`` entry-point group (an installed package's
  declaration: ``[project.entry-points."gradsweep.problems"] wine = "mypkg.wine:make"``,
  whose name, ``wine``, a spec may use too);
- a balancer: a ``Balancer`` subclass (``trainers/balancers/catalog.py``).

Anything else (``shutil:rmtree``, ``os:system``, any unmarked function) is refused in one
line before it is called. The module is still imported to read the mark: importing runs
the module's top level, which is why the docs say that naming a module imports it.

Torch-free, so that ``from gradsweep import problem_factory`` costs nothing.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import inspect
import re
from collections.abc import Callable
from typing import Any, TypeVar

from gradsweep.trainers.engine.failures import error_line

#: the entry-point group an installed package registers its problem factories in
PROBLEM_GROUP = "gradsweep.problems"
#: ``package.module:attribute``: dotted identifiers, one colon, one identifier after it
IMPORT_PATH = re.compile(r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*:[A-Za-z_]\w*")

_MARK = "__gradsweep_problem_factory__"
F = TypeVar("F", bound=Callable[..., Any])


class _Marked:
    """The one value the mark holds: an attribute spelt the same by anything else (a mock
    answering every name, a module's ``__getattr__``) is not this object."""

    def __repr__(self) -> str:
        return "<gradsweep problem factory>"


_PROBLEM_FACTORY = _Marked()


class ImportPathError(ValueError):
    """A name that cannot be imported, or whose import raised: one line."""


def problem_factory(factory: F) -> F:
    """Mark ``factory`` as a problem factory a spec may name by import path: it is called
    with the spec's ``problem.params`` and must return a ``MultitaskProblem``.

    Without the mark, ``problem: mypkg.tasks:make_problem`` is refused before anything is
    called: a spec check must not run whatever function a spec happens to name."""
    if not callable(factory):
        raise TypeError(f"problem_factory marks a callable, got {type(factory).__name__}")
    setattr(factory, _MARK, _PROBLEM_FACTORY)
    return factory


def is_marked_factory(found: object) -> bool:
    """Whether ``found`` carries ``@problem_factory``'s mark, read without running any of
    its code (no ``__getattr__``, no descriptor)."""
    try:
        return inspect.getattr_static(found, _MARK, None) is _PROBLEM_FACTORY
    except Exception:  # an object whose type breaks static lookup carries no mark
        return False


def registered_problems() -> dict[str, str]:
    """The ``gradsweep.problems`` entry points of the installed packages: name →
    ``module:attribute`` (read from their metadata, nothing imported)."""
    found: dict[str, str] = {}
    for point in importlib.metadata.entry_points(group=PROBLEM_GROUP):
        if point.attr:
            found.setdefault(point.name, f"{point.module}:{point.attr}")
    return found


def import_attribute(path: str) -> Any:
    """The attribute ``path`` (``package.module:attribute``) names, its module imported;
    ``ImportPathError`` for a malformed path, a module that is missing or raises while it
    is imported, or a missing attribute. Nothing found is called here."""
    if not IMPORT_PATH.fullmatch(path):
        raise ImportPathError(
            "not an import path: expected package.module:name (identifiers, one colon)"
        )
    module_name, _, attribute = path.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        raise ImportPathError(f"cannot import {module_name!r}: {exc}") from None
    except Exception as exc:  # the module raised while importing
        raise ImportPathError(f"importing {module_name} raised {error_line(exc)}") from None
    missing = object()
    try:
        found = getattr(module, attribute, missing)
    except Exception as exc:  # a module's own __getattr__ raised
        raise ImportPathError(f"{path} raised {error_line(exc)}") from None
    if found is missing:
        raise ImportPathError(f"{module_name} has no attribute {attribute!r}")
    return found


def describe(found: object) -> str:
    """What ``found`` is, in a few words, for a refusal that names it: ``a built-in
    function``, ``a class``, ``an int``."""
    if inspect.isclass(found):
        return "a class"
    if inspect.isbuiltin(found):
        return "a built-in function"
    if inspect.isfunction(found) or inspect.ismethod(found):
        return "a function"
    if inspect.ismodule(found):
        return "a module"
    kind = type(found).__name__
    return f"an {kind}" if kind[:1].lower() in "aeiou" else f"a {kind}"
