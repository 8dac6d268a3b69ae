from __future__ import annotations

import math

import pytest
import torch

from gradsweep.trainers import Budget, GradNorm, train
from gradsweep.trainers.engine import loop as loop_module
from gradsweep.trainers.engine.finite import GPU_CHECK_EVERY, FiniteWatch, check_every
from tests.trainers.user_problem import make_exploding

CPU = torch.device("cpu")


def test_reads_are_free_on_the_cpu_and_batched_on_a_gpu() -> None:
    assert check_every(CPU) == 1
    assert check_every(torch.device("cuda")) == GPU_CHECK_EVERY > 1


def test_a_deferred_watch_keeps_the_first_bad_step_and_its_losses() -> None:
    watch = FiniteWatch(1, ["a", "b"], CPU, every=5)
    for step in range(10):
        bad = float("nan") if step >= 7 else 1.0
        watch.observe(step, torch.tensor([0.5, bad]))
        if step == 4:
            assert watch.due(step + 1) and watch.failures() == []
    assert watch.due(10)
    (failure,) = watch.failures()
    assert (failure.member, failure.step) == (0, 7)
    assert failure.reason == "non-finite loss at step 7: a=0.5, b=nan"
    assert watch.failures() == [], "a failure is reported once"


def test_members_fail_each_at_their_own_first_bad_step() -> None:
    watch = FiniteWatch(3, ["a"], CPU, every=50)
    inf = float("inf")
    for step, row in enumerate([[1.0, 1.0, 1.0], [1.0, inf, 1.0], [inf, inf, 1.0]]):
        watch.observe(step, torch.tensor(row).unsqueeze(1))
    failures = watch.failures()
    assert [(f.member, f.step) for f in failures] == [(1, 1), (0, 2)]
    assert failures[0].reason == "non-finite loss at step 1: a=inf"


@pytest.mark.parametrize("every", [3, 50])
def test_a_deferred_check_fails_the_run_exactly_as_an_immediate_one(
    monkeypatch: pytest.MonkeyPatch, every: int
) -> None:
    """On a GPU the loop reads the watch every k steps: the run trains past its failure,
    but what it reports is the immediate check's, step for step."""
    immediate = train(make_exploding(at=7), GradNorm(0.12), Budget(40, eval_every=5), seed=0)
    monkeypatch.setattr(loop_module, "check_every", lambda _device: every)
    deferred = train(make_exploding(at=7), GradNorm(0.12), Budget(40, eval_every=5), seed=0)
    for result in (immediate, deferred):
        assert result.status == "failed" and result.steps == 7
        assert result.error is not None and result.error.startswith("non-finite loss at step 7")
        assert [r.step for r in result.epochs] == [0, 5]
        assert all(math.isfinite(w) for w in result.weights_final + result.weights_mean)
    assert deferred.error == immediate.error
    assert deferred.trace == immediate.trace
    assert deferred.weights_final == immediate.weights_final
    assert deferred.weights_mean == immediate.weights_mean
    assert deferred.epochs[-1].tasks == immediate.epochs[-1].tasks
