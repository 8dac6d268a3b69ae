"""Every component id of the Dash app, in one place."""

from __future__ import annotations

from enum import Enum


class Ids(str, Enum):
    URL = "url"
    LIST_VIEW = "list-view"
    STUDY_VIEW = "study-view"
    MESSAGE = "message"
    REFRESH = "refresh"
    SIGNATURE = "signature"
    STUDY_LIST = "study-list"
    STUDY_TITLE = "study-title"
    STUDY_STATUS = "study-status"
    TABLE = "comparison-table"
    VERDICTS = "verdict-card"
    BUDGET = "verdict-budget"
    PARETO = "pareto"
    SIMPLEX = "simplex"
    WEIGHTS = "weight-curves"
    DISTANCE = "distance"
    BEST_SO_FAR = "best-so-far"
    LOSSES = "loss-curves"
    TRIAL_PICKER = "trial-picker"
    LOSS_KIND = "loss-kind"
    FAILURES = "failed-trials"
    MISSING = "missing-figures"
    LOSS_SECTION = "loss-section"
