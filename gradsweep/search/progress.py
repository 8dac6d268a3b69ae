"""The live display of a running study: its counts (as ``status`` counts them: planned,
done, running, failed), the trials finished per arm, elapsed, ETA and the static optimum.

The static optimum is the one ``status``, ``compare`` and the dashboard show: read back
through the results layer (``optimum``, at most every ``OPTIMUM_SECONDS`` while trials
finish, and once at the end), never scored a second way here.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from types import TracebackType

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from gradsweep.arms import TrialStatus
from gradsweep.plan.counts import StudyCounts, count_trials
from gradsweep.plan.trials import TrialSpec

OPTIMUM_SECONDS = 5.0


def format_seconds(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


class LiveProgress:
    """Implements the recorder's ProgressSink; renders with rich unless quiet.

    It counts as ``status`` does (``plan.count_trials``): ``statuses`` holds every trial
    the study has (key → status, read from the database as the launch starts), each start
    and end updates its trial's status, and done is the number completed. A trial that runs
    again (a retrain trial whose GradNorm weights moved with the new seeds, a dead worker's
    trial) is running while it runs, then done once: never counted twice."""

    def __init__(
        self,
        study: str,
        planned: int,
        statuses: Mapping[str, str],
        quiet: bool = False,
        note: str | None = None,
        optimum: Callable[[], str | None] | None = None,
    ) -> None:
        self.study = study
        self.note = note
        self.optimum = optimum
        self.optimum_line: str | None = None
        self.optimum_read = -OPTIMUM_SECONDS
        self.planned = planned
        self.statuses = dict(statuses)
        self.quiet = quiet
        self.started = time.monotonic()
        self.ended: dict[str, tuple[str, str]] = {}  # key → (arm, status), in this launch
        self._live: Live | None = None

    def __enter__(self) -> LiveProgress:
        if not self.quiet:
            console = Console(stderr=True)
            self._live = Live(self.render(), console=console, refresh_per_second=2)
            self._live.__enter__()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.read_optimum(force=True)
        if self._live is not None:
            self._live.update(self.render())
            self._live.__exit__(kind, value, tb)
            self._live.console.print()
            self._live = None

    def trial_started(self, trial: TrialSpec) -> None:
        self.statuses[trial.key] = str(TrialStatus.RUNNING)
        self._refresh()

    def trial_finished(self, trial: TrialSpec, status: TrialStatus) -> None:
        self.statuses[trial.key] = str(status)
        self.ended[trial.key] = (trial.arm, status)
        if status == TrialStatus.COMPLETED:
            self.read_optimum()
        self._refresh()

    def trials_pending(self, keys: Iterable[str], again: bool = False) -> None:
        """Trials registered (new keys are pending, known ones keep their status) or, with
        ``again``, set to run again (pending whatever they were), as the database has them."""
        for key in keys:
            if again or key not in self.statuses:
                self.statuses[key] = str(TrialStatus.PENDING)
        self._refresh()

    def replanned(self, planned: int) -> None:
        """The planned count once a later phase knows more (the Optuna arm's confirm picks)."""
        self.planned = planned
        self._refresh()

    def read_optimum(self, force: bool = False) -> None:
        """The static optimum as the results layer chooses it, read again when due."""
        now = time.monotonic()
        if self.optimum is None or (not force and now - self.optimum_read < OPTIMUM_SECONDS):
            return
        self.optimum_read = now
        self.optimum_line = self.optimum()

    @property
    def counts(self) -> StudyCounts:
        """Planned, done, running and failed, as ``status`` counts the database."""
        return count_trials(self.planned, self.statuses.values())

    @property
    def finished_by_arm(self) -> Counter[str]:
        return Counter(arm for arm, _ in self.ended.values())

    def eta_seconds(self) -> float | None:
        finished = len(self.ended)
        remaining = self.counts.remaining
        if finished == 0 or remaining is None:
            return None
        return max(remaining, 0) * (time.monotonic() - self.started) / finished

    def render(self) -> Group:
        counts = self.counts
        elapsed = time.monotonic() - self.started
        header = Text(
            f"{self.study}: {counts.completed}/{counts.planned} done, {counts.running} running, "
            f"{counts.failed} failed  ·  elapsed {format_seconds(elapsed)}  ·  "
            f"ETA {format_seconds(self.eta_seconds())}"
        )
        table = Table(box=None, show_header=True)
        table.add_column("arm")
        table.add_column("finished", justify="right")
        for arm in sorted(self.finished_by_arm):
            table.add_row(arm, str(self.finished_by_arm[arm]))
        lines = [header] if self.note is None else [header, Text(self.note, style="dim")]
        if self.optimum_line is not None:
            lines.append(Text(self.optimum_line))
        return Group(*lines, table)

    def _refresh(self) -> None:
        if self._live is not None:
            self._live.update(self.render())
