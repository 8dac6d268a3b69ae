"""Non-finite losses noticed without a host synchronisation every step.

On a GPU, reading a flag back to Python waits for every queued kernel: once a step, that
stalls small models. The watch copies each step's losses into a window on the device (one
copy, no read) and the loop looks at the window only every ``every`` steps and before
each evaluation, in one read. A failing run therefore trains up to ``every − 1`` steps
past its failure, on NaNs that cannot reach anything it reports: the loop cuts the run
back to the failing step (its trace, its final weights), and no evaluation ever includes
those steps. On the CPU there is nothing to wait for, so the watch reads every step
(``every = 1``) and the loop stops before the failing step's update.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

#: Steps between host reads of the watch on a GPU.
GPU_CHECK_EVERY = 50


def check_every(device: torch.device) -> int:
    """1 where a host read is free (CPU), ``GPU_CHECK_EVERY`` where it is a sync."""
    return 1 if device.type == "cpu" else GPU_CHECK_EVERY


@dataclass(frozen=True)
class Failure:
    """Where a run's losses stopped being finite: the step and the reason, in one line."""

    member: int
    step: int
    reason: str


class FiniteWatch:
    """The first non-finite step of each of ``members`` runs (one, or a pack's members).

    ``observe`` every step, in step order; ``failures`` when ``due`` (and before an
    evaluation): it reads the steps observed since the last call.
    """

    def __init__(
        self, members: int, task_names: list[str], device: torch.device, every: int
    ) -> None:
        self.members, self.task_names = members, task_names
        self.every = max(every, 1)
        self.window = torch.zeros(self.every, members, len(task_names), device=device)
        self.read_until = 0  # steps before this one have been read
        self.observed = 0
        self.failed: set[int] = set()
        self._pending = False  # immediate mode: a non-finite loss seen, not yet read

    @property
    def immediate(self) -> bool:
        """Whether every step is read at once (the loop can then skip the failing update)."""
        return self.every == 1

    @property
    def failures_pending(self) -> bool:
        """Immediate mode: whether the last ``observe`` saw a non-finite loss not yet read."""
        return self._pending

    def observe(self, step: int, losses: torch.Tensor) -> None:
        """Keep ``losses`` (``(T,)`` or ``(K, T)``) of ``step``; a host read only on a CPU."""
        rows = losses.detach().reshape(self.members, -1)
        if self.immediate:  # a read is free here: keep nothing while all is well
            if bool(torch.isfinite(rows).all()):
                self.observed = self.read_until = step + 1
                return
            self._pending = True
        self.window[step % self.every].copy_(rows)
        self.observed = step + 1

    def due(self, done: int) -> bool:
        """Whether the loop reads the watch after ``done`` steps."""
        return done % self.every == 0

    def failures(self) -> list[Failure]:
        """Runs whose first non-finite step came since the last call (one host read),
        first step first."""
        first, count = self.read_until, self.observed - self.read_until
        self.read_until, self._pending = self.observed, False
        if count <= 0:
            return []
        slots = [(first + i) % self.every for i in range(count)]
        rows = self.window[slots]  # (steps, K, T), in step order
        bad = ~torch.isfinite(rows).all(dim=2)  # (steps, K)
        if not bool(bad.any()):
            return []
        found = []
        for member in bad.any(dim=0).nonzero().flatten().tolist():
            if member in self.failed:
                continue
            offset = int(bad[:, member].nonzero()[0])
            step = first + offset
            values = self._describe(rows[offset, member].tolist())
            found.append(Failure(member, step, f"non-finite loss at step {step}: {values}"))
            self.failed.add(member)
        return sorted(found, key=lambda failure: (failure.step, failure.member))

    def _describe(self, values: list[float]) -> str:
        return ", ".join(
            f"{name}={value:g}" for name, value in zip(self.task_names, values, strict=True)
        )
