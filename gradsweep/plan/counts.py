"""How many trials a study plans and how many are done: the one count that ``spec check``,
launch's live progress and outcome, ``status``, ``query studies`` and the dashboard show.

Planned is counted from the spec by arithmetic (``spec/limits.py``: what ``plan_up_front``
builds, never enumerated, so a count is instant however large the plan; the tests hold the
two equal). Launch stores it on the study, so the readers, which run without the spec's
problem, read the same number. Done, running and
failed are the statuses of the study's stored trials, one trial a key (``count_trials``):
a trial run again (a retrain whose GradNorm weights moved, a dead worker's trial) is
pending or running while it runs again, and done once, never twice.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from gradsweep.arms import ArmKind, TrialStatus
from gradsweep.plan.trials import is_confirm, planned_weightings
from gradsweep.spec import StudySpec
from gradsweep.spec.limits import plan_size


def planned_count(spec: StudySpec, tasks: int, stored: Iterable[str] = ()) -> int:
    """Every trial the study will run at T = ``tasks``: those planned up front, plus the
    Optuna arm's trials with its confirmed suggestions on the other seeds, and retrain's
    one per seed (planned later, from results).

    ``stored``: the keys of the trials the study already holds. A study extended with more
    Optuna trials may confirm a better suggestion than an earlier launch did; the earlier
    confirm runs stay (they ran, and are results) and count as planned too
    (``superseded_confirms``), so the count says what the study holds and never falls
    below what is done."""
    return plan_size(spec, tasks).total + superseded_confirms(spec, stored)


def confirm_count(n_trials: int, confirm: int, spec: StudySpec) -> int:
    """The Optuna arm's confirm trials: its best ``confirm`` suggestions on every other seed."""
    return min(confirm, n_trials) * (len(spec.seeds) - 1)


def superseded_confirms(spec: StudySpec, stored: Iterable[str]) -> int:
    """Confirm runs the study holds beyond the spec's confirm trials: those of suggestions
    an earlier launch confirmed and a later one, having found better ones, did not."""
    arm = spec.arms.optuna
    if arm is None:
        return 0
    held = sum(1 for key in set(stored) if is_confirm(spec, key))
    return max(0, held - confirm_count(arm.n_trials, arm.confirm, spec))


def shared_weightings(spec: StudySpec, tasks: int) -> list[tuple[float, ...]]:
    """The static arm's weightings that the grid also holds: each trains once a seed."""
    return [p.weights for p in planned_weightings(spec, tasks) if ArmKind.GRID in p.also_arms]


@dataclass(frozen=True)
class StudyCounts:
    """A study's planned count and its trials by status (every status, 0 when none).

    ``planned`` is None only for a hand-built study that stored none and whose spec does
    not parse."""

    planned: int | None
    by_status: dict[str, int] = field(default_factory=dict)

    @property
    def completed(self) -> int:
        return self.by_status.get(str(TrialStatus.COMPLETED), 0)

    @property
    def running(self) -> int:
        return self.by_status.get(str(TrialStatus.RUNNING), 0)

    @property
    def failed(self) -> int:
        return self.by_status.get(str(TrialStatus.FAILED), 0)

    @property
    def remaining(self) -> int | None:
        """Planned trials not completed (pending, running, failed or not yet sampled)."""
        return None if self.planned is None else self.planned - self.completed


def count_trials(planned: int | None, statuses: Iterable[str]) -> StudyCounts:
    """The counts of a study whose trials (one status a key) are ``statuses``.

    Planned is never below completed: a study stored by an older gradsweep may hold a
    superseded confirm run its stored count leaves out; it ran, so it was planned."""
    found = {str(status): 0 for status in TrialStatus}
    for status in statuses:
        found[str(status)] = found.get(str(status), 0) + 1
    done = found[str(TrialStatus.COMPLETED)]
    return StudyCounts(None if planned is None else max(int(planned), done), found)
