"""The closed sets every layer shares: arm kinds, statuses, directions, objectives.

Torch-free and database-free, at the bottom of the package: the spec, the plan, storage,
the results layer and the dashboards all name arms and statuses through this module, so a
word means one thing everywhere. The enums are ``str`` enums: a member equals its stored
text (``TrialStatus.COMPLETED == "completed"``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from enum import Enum


class _Name(str, Enum):
    """A closed set of names: each member is its stored text, and prints as it."""

    def __str__(self) -> str:
        return str(self.value)


class ArmKind(_Name):
    """The arms that are not a balancer's own, in plan order: the static searches and
    retrain. Each balancer's arm is named by its declaration (trainers/balancers/)."""

    STATIC = "static"
    GRID = "grid"
    RANDOM = "random"
    OPTUNA = "optuna"
    RETRAIN = "retrain"


# the arms that search static weightings: the side the static optimum comes from
STATIC_ARMS: tuple[str, ...] = ("static", "grid", "random", "optuna")
RETRAIN = ArmKind.RETRAIN.value
#: the balancer every static arm (and retrain) trains with; a trial of any other balancer
#: is adaptive, one of the configurations compared against the static optimum
STATIC_BALANCER = "static"


def is_adaptive(balancer: str) -> bool:
    """Whether a trial of this balancer is an adaptive configuration (not a static arm's)."""
    return balancer != STATIC_BALANCER


class TrialStatus(_Name):
    PENDING = "pending"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    INTERRUPTED = "interrupted"


class StudyStatus(_Name):
    CREATED = "created"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"  # ended with failed trials
    INTERRUPTED = "interrupted"  # Ctrl-C or a crash: resume runs the rest
    INCOMPLETE = "incomplete"  # ended without every planned trial (nothing failed)


class Direction(_Name):
    """Which way a metric is better."""

    MIN = "min"
    MAX = "max"


class ObjectiveKind(_Name):
    """What a study ranks trials by (lower is better for both)."""

    NORMALIZED_LOSS = "normalized_loss"
    DELTA_M = "delta_m"

    @property
    def label(self) -> str:
        return (
            "normalised loss" if self is ObjectiveKind.NORMALIZED_LOSS else "Δm% vs equal weights"
        )


def is_equal_weighting(weights: object) -> bool:
    """Every weight the same: equal weights (the Δm% baseline, when in the static arm)."""
    if not isinstance(weights, list | tuple) or not weights:
        return False
    return max(weights) - min(weights) < 1e-9


def weights_in_key(weights: Sequence[float]) -> str:
    """Six significant digits, comma-separated: the weights part of a trial key."""
    return ",".join(f"{w:.6g}" for w in weights)


def config_of(key: str) -> str:
    """A trial key without its seed: the configuration it is one run of
    (``gradnorm/a=0.12/s0`` → ``gradnorm/a=0.12``)."""
    return key.rsplit("/", 1)[0]


def grid_size(
    tasks: int, resolution: int, include_vertices: bool = False, min_count: int = 0
) -> int:
    """How many points a simplex grid has: C(R+T−1, T−1), minus the T vertices; with every
    ``k_i ≥ m`` (m ≥ 1), C(R − T·m + T − 1, T − 1), which has no vertex (T > 1)."""
    if tasks == 1:  # the one point is the vertex
        return int(include_vertices and resolution >= min_count)
    if min_count >= 1:
        rest = resolution - tasks * min_count
        return math.comb(rest + tasks - 1, tasks - 1) if rest >= 0 else 0
    total = math.comb(resolution + tasks - 1, tasks - 1)
    return total if include_vertices else total - tasks


class Checkpoint(_Name):
    """Which evaluation of a trial is its result (``selection.checkpoint``)."""

    FINAL = "final"
    BEST_VALIDATION = "best_validation"  # the evaluation with the best validation score


class Split(_Name):
    """The data a score is measured on: selection reads validation, reports read test.
    A study stored before validation existed is selected on test (and says so)."""

    VALIDATION = "validation"
    TEST = "test"


#: the share of a problem's training examples held out for validation when the problem
#: brings none of its own (``selection.validation_fraction``)
DEFAULT_VALIDATION_FRACTION = 0.1


class Outcome(_Name):
    """A verdict on one of GradNorm's claims, from the study's data and its uncertainty."""

    CONFIRMED = "confirmed"
    REFUTED = "refuted"
    INCONCLUSIVE = "inconclusive"


class Claim(_Name):
    """The paper's claims a study tests, for GradNorm and for every other adaptive method."""

    BEATS_EQUAL = "C1"
    MATCHES_OPTIMUM = "C2"
    BEATS_STATIC = "C3"
    NEARER_IS_BETTER = "C4"
    STATIC_AT_ITS_WEIGHTS = "C5"
    CHEAPER = "C6"

    @property
    def statement(self) -> str:
        return _CLAIM_STATEMENTS[self]


_CLAIM_STATEMENTS = {
    Claim.BEATS_EQUAL: "beats equal weights",
    Claim.MATCHES_OPTIMUM: "matches the static optimum",
    Claim.BEATS_STATIC: "beats the static weightings",
    Claim.NEARER_IS_BETTER: "weightings nearer its weights score better (Fig. 4)",
    Claim.STATIC_AT_ITS_WEIGHTS: "static training at its weights matches it (GradNorm Static)",
    Claim.CHEAPER: "costs less compute than the static search",
}
