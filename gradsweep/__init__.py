"""gradsweep: GradNorm's adaptive task weights against an exhaustive static-weight search.

From Python: ``gradsweep.open(DB_URL)`` (docs/python.md) gives the results the command
line shows, under the same names. Importing the package imports nothing heavy.

``gradsweep.problem_factory`` marks a function a spec may name as its problem
(docs/problems.md): naming code by import path runs it, so an unmarked one is refused."""

from __future__ import annotations

from typing import TYPE_CHECKING

from gradsweep.trainers.plugins import problem_factory as problem_factory

if TYPE_CHECKING:
    from gradsweep.notebook import Results

__version__ = "0.1.0"


def open(url: str) -> Results:  # noqa: A001  (reads as `gradsweep.open(url)`)
    """A results database opened read-only: ``.studies()``, ``.study(name)``."""
    from gradsweep.notebook import open_results

    return open_results(url)
