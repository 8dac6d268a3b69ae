"""A trial's weights over time, kept in memory that grows with ``steps / trace_every``.

A trial reports three things about its weights ``w(t)``: the points every ``trace_every``
steps, their time average over every step (retrain trains at GradNorm's), and, when its
loss turns non-finite, the weights of the failing step. Keeping every step's weights for
that (``steps × T`` floats allocated up front) made a trial's memory grow with its budget:
``--steps 500000000`` took 4.4 GB before the first step.

``WeightTrace`` keeps instead: the points (grown as they come, doubling), a window of the
last steps' weights, and the sum of every step's weights before the window, in float64.
The finite watch (finite.py) reads a step's losses up to ``every`` steps after it, so the
loop tells the trace which steps are ``confirm``ed finite; only those leave the window,
whole blocks of ``BLOCK`` steps at a time, and a failure found later rolls back to its
step exactly. The sum's blocks do not depend on when the watch reads, so a run's average
is the same on a CPU (read every step) and on a GPU (read every few steps).

The leading shape is a run's ``(T,)`` or a pack's ``(K, T)``: one class for both loops.
"""

from __future__ import annotations

import torch

#: steps summed together as they leave the window (the window holds two blocks)
BLOCK = 1024
#: the first capacity of the points' buffer, in points (it doubles as it fills)
FIRST_POINTS = 64


class GrowingRows:
    """Rows of one shape written by index, in a buffer that doubles as they come: memory
    for the rows written, not for every row a budget could write."""

    def __init__(self, shape: tuple[int, ...], device: torch.device) -> None:
        self.rows = torch.zeros(0, *shape, device=device)
        self.length = 0

    def put(self, index: int, value: torch.Tensor) -> None:
        if index >= len(self.rows):
            grown = torch.zeros(
                max(FIRST_POINTS, 2 * len(self.rows), index + 1),
                *self.rows.shape[1:],
                device=self.rows.device,
            )
            grown[: len(self.rows)] = self.rows
            self.rows = grown
        self.rows[index] = value
        self.length = max(self.length, index + 1)

    def first(self, count: int) -> torch.Tensor:
        """The first ``count`` rows (fewer if fewer were written)."""
        return self.rows[: min(count, self.length)]


class WeightTrace:
    """Every step's weights, summarised: points every ``trace_every`` steps, the running
    sum, and a window of recent steps for a failure's roll-back.

    ``record(step, weights)`` once or twice a step, in step order (the second time, the
    weights the step chose within itself); ``confirm(done)`` once the watch has read
    every step before ``done`` as finite. ``lag``: the most steps the watch reads late."""

    def __init__(
        self, shape: tuple[int, ...], trace_every: int, lag: int, device: torch.device
    ) -> None:
        self.trace_every = max(trace_every, 1)
        self.block = max(BLOCK, lag + 1)
        self.window = torch.zeros(2 * self.block, *shape, device=device)
        dtype = torch.float32 if device.type == "mps" else torch.float64  # no float64 there
        self.total = torch.zeros(shape, dtype=dtype, device=device)
        self.summed = 0  # steps before this one are in ``total``
        self.confirmed = 0  # steps before this one are finite
        self.last = -1  # the last step recorded
        self.points = GrowingRows(shape, device)

    def record(self, step: int, weights: torch.Tensor) -> None:
        """Step ``step``'s weights (``step`` again: the ones it applied, which replace them)."""
        if step - self.summed >= len(self.window):
            raise RuntimeError(
                f"weight trace: step {step} recorded with steps from {self.summed} not "
                "confirmed: the loop must confirm steps as the finite watch reads them"
            )
        self.window[step % len(self.window)] = weights
        if step % self.trace_every == 0:
            self.points.put(step // self.trace_every, weights)
        self.last = max(self.last, step)

    def confirm(self, done: int) -> None:
        """Every step before ``done`` is finite: whole blocks of them join the sum."""
        self.confirmed = max(self.confirmed, done)
        while self.summed + self.block <= self.confirmed:
            start = self.summed % len(self.window)
            self.total += self.window[start : start + self.block].sum(0, dtype=self.total.dtype)
            self.summed += self.block

    def _recent(self, done: int) -> torch.Tensor:
        """The window's steps from the sum's end up to ``done`` (a multiple of the block
        starts the window, so at most two slices)."""
        if done < self.summed:
            raise ValueError(f"weight trace: step {done} is already in the sum")
        steps = torch.arange(self.summed, done, device=self.window.device)
        return self.window[steps % len(self.window)]

    def mean(self, done: int) -> torch.Tensor:
        """The mean of the weights of steps ``0 … done − 1`` (``done`` ≥ 1)."""
        total = self.total + self._recent(done).sum(0, dtype=self.total.dtype)
        return (total / done).to(self.window.dtype)

    def at(self, step: int) -> torch.Tensor:
        """Step ``step``'s weights, while it is in the window (a failing step is)."""
        if not (self.summed <= step <= self.last and self.last - step < len(self.window)):
            raise ValueError(f"weight trace: step {step} is no longer kept")
        return self.window[step % len(self.window)]

    def point_steps(self, done: int) -> range:
        """The steps of the points recorded before ``done``."""
        return range(0, done, self.trace_every)

    def points_before(self, done: int) -> torch.Tensor:
        """The points of the steps before ``done``: ``(points, *shape)``."""
        return self.points.first(len(self.point_steps(done)))


class RawPoints:
    """The applied weights at the trace's steps, for a balancer whose ``raw_weights``
    differ from its recorded ones (MGDA's): kept at trace points only, grown as they come."""

    def __init__(self, shape: tuple[int, ...], trace_every: int, device: torch.device) -> None:
        self.trace_every = max(trace_every, 1)
        self.rows = GrowingRows(shape, device)

    def due(self, step: int) -> bool:
        return step % self.trace_every == 0

    def record(self, step: int, weights: torch.Tensor) -> None:
        self.rows.put(step // self.trace_every, weights)

    def before(self, done: int) -> torch.Tensor:
        return self.rows.first(len(range(0, done, self.trace_every)))
