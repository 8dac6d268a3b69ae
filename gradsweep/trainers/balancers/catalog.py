"""The balancers: every built-in one found in this folder, and a user's own by import path.

A built-in balancer is a module here whose ``Balancer`` subclass carries a
``declaration``; nothing else lists them. A user's balancer is ``package.module:Class``
(a subclass of ``Balancer`` with its own declaration), imported when a spec or
``gradsweep train`` names it: naming code runs that code, so the class is checked to be a
``Balancer`` subclass before anything of it is called (``trainers/plugins.py``).
Importing a balancer module imports neither torch nor pydantic (trainers/lazy.py), so the
spec and the read commands use this catalogue freely.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import pkgutil
from collections.abc import Mapping
from typing import Any

from gradsweep.errors import BalancerError
from gradsweep.trainers.balancers.base import Balancer
from gradsweep.trainers.balancers.declaration import BalancerDeclaration
from gradsweep.trainers.engine.failures import error_line
from gradsweep.trainers.plugins import ImportPathError, describe, import_attribute

_PACKAGE = "gradsweep.trainers.balancers"
_NOT_BALANCERS = frozenset({"base", "catalog", "declaration"})


def _declared_in(module: Any) -> list[type[Balancer]]:
    return [
        cls
        for _, cls in inspect.getmembers(module, inspect.isclass)
        if issubclass(cls, Balancer)
        and cls.__module__ == module.__name__
        and "declaration" in vars(cls)
    ]


@functools.cache
def built_in() -> dict[str, type[Balancer]]:
    """Name → class of every built-in balancer, in ``declaration.order`` (then by name)."""
    package = importlib.import_module(_PACKAGE)
    found: list[type[Balancer]] = []
    for info in pkgutil.iter_modules(package.__path__):
        if info.name not in _NOT_BALANCERS:
            found.extend(_declared_in(importlib.import_module(f"{_PACKAGE}.{info.name}")))
    found.sort(key=lambda cls: (cls.declaration.order, cls.declaration.name))
    return {cls.declaration.name: cls for cls in found}


def declarations() -> list[BalancerDeclaration]:
    """Every built-in declaration, in order."""
    return [cls.declaration for cls in built_in().values()]


def adaptive_declarations() -> list[BalancerDeclaration]:
    """The built-in balancers that are arms of their own (all but static), in order."""
    return [d for d in declarations() if d.adaptive]


def is_import_path(name: str) -> bool:
    """``package.module:Class``: a user's balancer, not a built-in name."""
    return ":" in name


@functools.cache
def resolve(name: str) -> type[Balancer]:
    """A built-in name, or ``package.module:Class`` (imported, then checked)."""
    classes = built_in()
    if name in classes:
        return classes[name]
    if not is_import_path(name):
        raise BalancerError(
            f"unknown balancer {name!r}: use one of {', '.join(classes)} or 'package.module:Class'"
        )
    try:
        cls = import_attribute(name)
    except ImportPathError as exc:
        raise BalancerError(f"balancer {name!r}: {exc}") from None
    if not (inspect.isclass(cls) and issubclass(cls, Balancer)):  # refused before any call
        raise BalancerError(
            f"balancer {name!r}: {name.replace(':', '.')} is {describe(cls)}, not a subclass "
            "of gradsweep.trainers.Balancer, so it was not called"
        )
    attribute = name.partition(":")[2]
    declaration = vars(cls).get("declaration")
    if not isinstance(declaration, BalancerDeclaration):
        raise BalancerError(
            f"balancer {name!r}: {attribute} has no declaration (a BalancerDeclaration "
            "class attribute; see docs/balancers.md)"
        )
    if declaration.name in classes or is_import_path(declaration.name):
        raise BalancerError(
            f"balancer {name!r}: its declared name {declaration.name!r} is a built-in "
            "balancer's or has a ':'; choose another"
        )
    return cls


def declaration_of(name: str) -> BalancerDeclaration:
    return resolve(name).declaration


def make_balancer(name: str, arguments: Mapping[str, Any] | None = None) -> Balancer:
    """Build a balancer from its constructor arguments; a bad argument is a BalancerError,
    and a user's balancer that raises is one line naming its file and line."""
    cls = resolve(name)
    missing = cls.declaration.missing_requirement()
    if missing is not None:
        raise BalancerError(missing)
    try:
        return cls(**(arguments or {}))
    except BalancerError:
        raise
    except TypeError as exc:
        raise BalancerError(f"balancer {name!r}: bad parameters: {exc}") from None
    except Exception as exc:
        raise BalancerError(f"balancer {name!r}: raised {error_line(exc)}") from None
