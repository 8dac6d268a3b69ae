"""Pydantic's errors as one line: ``source: field.path: message (got value)``."""

from __future__ import annotations

import re
from typing import Any

from pydantic import ValidationError

from gradsweep.spec.base import FieldError, SpecError

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


IMPORT_PATH = re.compile(r"[A-Za-z_][\w.]*:[A-Za-z_]\w*")


def _key(part: object) -> str:
    """A key as it can be printed: control characters escaped, the length bounded."""
    text = str(part)
    if not text.isprintable():
        text = repr(text)[1:-1]
    limit = 120 if IMPORT_PATH.fullmatch(text) else 40  # a user's balancer, named whole
    return text if len(text) <= limit else text[: limit - 1] + "…"


def location(loc: tuple[int | str, ...]) -> str:
    path = ""
    for part in loc:
        key = _key(part)
        path += f"[{key}]" if isinstance(part, int) else (f".{key}" if path else key)
    return path or "spec"


def error_message(error: Any) -> str:
    kind = error["type"]
    ctx = error.get("ctx", {})
    if kind in _BOUNDS:
        bound = next(iter(ctx.values()))
        return f"must be {_BOUNDS[kind]} {_number(bound)}"
    if kind == "literal_error":
        expected = str(ctx["expected"])
        return f"must be one of {expected}" if " or " in expected else f"must be {expected}"
    if kind == "string_too_long":
        return f"must be at most {ctx['max_length']} characters"
    if kind == "too_long":
        return f"must hold at most {ctx['max_length']:,} items (got {ctx['actual_length']:,})"
    if kind in _MESSAGES:
        return _MESSAGES[kind]
    return str(error["msg"]).removeprefix("Value error, ")


def _number(bound: Any) -> str:
    """A bound as a reader writes it: ``1,000,000,000`` for an integer, ``0.5`` else."""
    return f"{bound:,}" if isinstance(bound, int) and abs(bound) >= 10_000 else f"{bound:g}"


def short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def first_error(error: ValidationError) -> tuple[tuple[int | str, ...], str]:
    """The first error's field path and its ``message (got value)``."""
    first = error.errors(include_url=False)[0]
    loc = tuple(p for p in first["loc"] if not str(p).startswith("function-"))
    cause = first.get("ctx", {}).get("error")
    if isinstance(cause, FieldError):
        loc += cause.path
    message = error_message(first)
    shown = first.get("input")
    got = ""
    if first["type"] not in ("missing", "extra_forbidden", "value_error"):
        got = f" (got {short(shown)})" if not isinstance(shown, dict | list) else ""
    return loc, f"{message}{got}"


def one_line(source: str, error: ValidationError) -> SpecError:
    """The first error as ``source: field.path: message (got value)``."""
    loc, message = first_error(error)
    return SpecError(f"{source}: {location(loc)}: {message}")
