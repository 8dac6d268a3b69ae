"""The weight trace: the points, the time average and a failure's roll-back of every step,
in memory that grows with ``steps / trace_every`` and never with the budget."""

from __future__ import annotations

import pytest
import torch

from gradsweep.trainers.engine.trace import BLOCK, FIRST_POINTS, GrowingRows, WeightTrace

CPU = torch.device("cpu")


def run(weights: torch.Tensor, trace_every: int, lag: int, done: int | None = None) -> WeightTrace:
    """Record ``weights`` step by step, the watch confirming every ``lag`` steps (the last
    read stops at ``done``, a failing step, when given)."""
    trace = WeightTrace(tuple(weights.shape[1:]), trace_every, lag, CPU)
    for step, row in enumerate(weights):
        trace.record(step, row)
        read = step + 1
        if read % lag == 0 and (done is None or read <= done):
            trace.confirm(read)
    return trace


@pytest.mark.parametrize("steps", [1, 7, BLOCK, 2 * BLOCK + 5, 5 * BLOCK + 3])
@pytest.mark.parametrize("trace_every", [1, 3, 10, 10**9])
@pytest.mark.parametrize("lag", [1, 50])
def test_points_and_mean_are_every_steps(steps: int, trace_every: int, lag: int) -> None:
    weights = torch.rand(steps, 3, generator=torch.Generator().manual_seed(steps))
    trace = run(weights, trace_every, lag)
    trace.confirm(steps)  # the last evaluation reads every step
    assert torch.equal(trace.points_before(steps), weights[::trace_every])
    assert list(trace.point_steps(steps)) == list(range(0, steps, trace_every))
    expected = weights.double().mean(0).float()
    assert torch.allclose(trace.mean(steps), expected, rtol=1e-6, atol=0)


def test_the_average_does_not_depend_on_when_the_watch_reads() -> None:
    """A CPU reads every step, a GPU every 50: the same blocks are summed, bit for bit."""
    weights = torch.rand(3 * BLOCK + 11, 2, 3, generator=torch.Generator().manual_seed(1))
    cpu, gpu = run(weights, 10, 1), run(weights, 10, 50)
    steps = len(weights)
    cpu.confirm(steps), gpu.confirm(steps)
    assert torch.equal(cpu.mean(steps), gpu.mean(steps))


@pytest.mark.parametrize("failing", [0, 1, BLOCK - 1, BLOCK, 2 * BLOCK + 17])
def test_a_failure_found_late_rolls_back_to_its_step(failing: int) -> None:
    """The watch reads a step up to 50 later: the trace still has the failing step's
    weights, and its mean stops before it."""
    weights = torch.rand(failing + 50, 4, generator=torch.Generator().manual_seed(failing))
    trace = run(weights, 7, 50, done=failing)  # nothing at or after ``failing`` confirmed
    assert torch.equal(trace.at(failing), weights[failing])
    if failing:
        expected = weights[:failing].double().mean(0).float()
        assert torch.allclose(trace.mean(failing), expected, rtol=1e-6, atol=0)
    assert torch.equal(trace.points_before(failing), weights[:failing:7])


def test_a_loop_that_never_confirms_is_stopped_not_wrong() -> None:
    trace = WeightTrace((2,), 10, 1, CPU)
    with pytest.raises(RuntimeError, match="not confirmed"):
        for step in range(3 * BLOCK):
            trace.record(step, torch.ones(2))


def test_memory_follows_the_points_not_the_budget() -> None:
    """Nothing is sized by a step count: a trace for any budget starts at the window and
    grows by the points it records, doubling."""
    trace = WeightTrace((3,), 1000, 50, CPU)
    assert trace.window.shape == (2 * BLOCK, 3) and len(trace.points.rows) == 0
    for step in range(100_000):
        trace.record(step, torch.ones(3))
        trace.confirm(step + 1)
    assert trace.points.length == 100 and len(trace.points.rows) <= 2 * max(100, FIRST_POINTS)
    rows = GrowingRows((2,), CPU)
    rows.put(0, torch.ones(2))
    assert rows.rows.shape == (FIRST_POINTS, 2)
