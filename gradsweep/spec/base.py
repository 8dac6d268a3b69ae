"""What every spec model shares: strict, frozen models, errors that name a field, and the
characters a name may hold."""

from __future__ import annotations

import unicodedata
from typing import Any

from pydantic import BaseModel, ConfigDict

from gradsweep.errors import GradsweepError


class SpecError(GradsweepError):
    """A study spec that cannot be used; the message names the file and the field."""


class FieldError(ValueError):
    """A validator's error about a field below the one being validated (e.g. an index)."""

    def __init__(self, path: tuple[int | str, ...], message: str) -> None:
        super().__init__(message)
        self.path = path


class SpecModel(BaseModel):
    # strict: YAML is typed, so "4" for an integer or true for a seed is a mistake.
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)


def first_repeat(labels: list[str]) -> int | None:
    seen: set[str] = set()
    for i, label in enumerate(labels):
        if label in seen:
            return i
        seen.add(label)
    return None


# A name lands in the results database (trial keys, the ``arm``, ``balancer``, ``task`` and
# ``metric_name`` columns, JSON lists) and in every one-line message and table. Its length
# is free (those columns are TEXT, revision 0012); its characters are not: PostgreSQL
# refuses a NUL in text and JSON alike while SQLite takes it (the same spec would launch on
# one and stop mid-study on the other), and a control character or a line separator breaks
# the one-line output. ``spec check`` refuses both, before anything runs.
# Cc: control characters (NUL among them); Cs: lone surrogates, which no UTF-8 database
# stores; Zl, Zp: the line and paragraph separators, which break a line as \n does.
_UNSTORABLE = frozenset({"Cc", "Cs", "Zl", "Zp"})


def unstorable_character(name: str) -> str | None:
    """The first character of ``name`` that no name may hold, escaped (``\\x00``), or None."""
    for character in name:
        if unicodedata.category(character) in _UNSTORABLE:
            return character.encode("unicode_escape").decode("ascii")
    return None


def name_problem(name: str) -> str | None:
    """Why ``name`` cannot be a name, or None when it can."""
    bad = unstorable_character(name)
    if bad is None:
        return None
    return f"holds a control character ({bad}): names are stored and shown in one line"


def first_nul(data: Any, path: tuple[int | str, ...] = ()) -> tuple[int | str, ...] | None:
    """The field path of the first key or string holding a NUL in a spec's data, or None:
    the spec is stored, and its trials' parameters kept as JSON, which PostgreSQL refuses
    with a NUL anywhere in it."""
    if isinstance(data, str):
        return path if "\x00" in data else None
    if isinstance(data, dict):
        for key, value in data.items():
            if isinstance(key, str) and "\x00" in key:
                return (*path, key)
            found = first_nul(value, (*path, key))
            if found is not None:
                return found
    if isinstance(data, list):
        for i, item in enumerate(data):
            found = first_nul(item, (*path, i))
            if found is not None:
                return found
    return None
