"""A study's other readings, beside ``StudyResults``: the study table, curves, weight
traces and a change signature. The commands' tables and the dashboard read them here, so
the read side has one door (results/) onto the storage's queries."""

from __future__ import annotations

from sqlalchemy import Engine

from gradsweep.storage.queries import curves, find_study, studies, study_signature, weight_traces

__all__ = ["curves", "studies", "study_name", "study_signature", "weight_traces"]


def study_name(engine: Engine, study: str | int) -> str:
    """The stored name of a study given by name or id (a StorageError when none)."""
    return find_study(engine, study).name
