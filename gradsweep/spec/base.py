"""What every spec model shares: strict, frozen models and errors that name a field."""

from __future__ import annotations

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
