"""The balancer contract, checked on every built-in balancer and the example plug-in: a
new balancer passes these without a line of test code naming it."""

from __future__ import annotations

import math
from typing import Any

import pytest
import torch

from gradsweep.trainers import Budget, ToyRegression, train
from gradsweep.trainers.balancers.base import Balancer
from gradsweep.trainers.balancers.catalog import built_in, make_balancer, resolve
from gradsweep.trainers.engine import loop as loop_module
from gradsweep.trainers.engine.balancer_check import check_balancer
from gradsweep.trainers.engine.step import TrainingStep
from gradsweep.trainers.packed import loop as packed_module
from gradsweep.trainers.packed.loop import train_packed
from tests.trainers.conftest import small_toy_params
from tests.trainers.host_reads import HostReads

PLUG_IN = "examples.inverse_norm_balancer:InverseGradientNorm"
BALANCERS = [*built_in(), PLUG_IN]
PACKING = [name for name, cls in built_in().items() if cls.declaration.packed is not None]
#: those whose weight rule reads values on the host (a CPU solver): declared, so exempt
SYNC_FREE = [name for name in BALANCERS if not resolve(name).declaration.reads_host]


def fresh(name: str) -> Balancer:
    """The balancer as ``gradsweep train`` builds it when told nothing else."""
    return make_balancer(name, dict(resolve(name).declaration.train_defaults))


def toy() -> ToyRegression:
    return ToyRegression(**small_toy_params(3, [1.0, 10.0, 100.0]))


def test_every_built_in_balancer_is_found_with_its_declaration() -> None:
    assert {"static", "gradnorm", "uncertainty", "dwa", "rlw"} <= set(built_in())
    assert resolve(PLUG_IN).declaration.name == "inverse_norm"


@pytest.mark.parametrize("name", BALANCERS)
def test_weights_are_finite_and_sum_to_the_task_count(name: str) -> None:
    """The documented normalisation: every recorded ``w(t)`` is finite with Σ = T."""
    result = train(toy(), fresh(name), Budget(40, trace_every=1), seed=0)
    assert result.status == "completed", result.error
    for _, weights in result.trace:
        assert all(math.isfinite(w) and w >= 0 for w in weights), weights
        assert sum(weights) == pytest.approx(3.0, rel=1e-5)


@pytest.mark.parametrize("name", BALANCERS)
def test_the_applied_weights_rescale_to_the_recorded_ones(name: str) -> None:
    """Where a balancer applies other weights than it records (MGDA's sum to 1), they are
    kept at every trace point and rescale to the recorded ``w(t)``; else none are kept."""
    result = train(toy(), fresh(name), Budget(30, trace_every=4), seed=0)
    distinct = type(fresh(name)).raw_weights is not Balancer.raw_weights
    assert [s for s, _ in result.raw_trace] == ([s for s, _ in result.trace] if distinct else [])
    for (_, weights), (_, raw) in zip(result.trace, result.raw_trace, strict=False):
        assert [w * sum(raw) / 3.0 for w in weights] == pytest.approx(raw, rel=1e-5, abs=1e-7)


@pytest.mark.parametrize("name", BALANCERS)
def test_the_recorded_weights_are_those_each_step_applied(
    monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    """``w(t)`` in the trace is what step t applied (rescaled to Σ = T), whether the
    balancer sets it before the step or chooses it within (MGDA, FAMO). Weights applied to
    other rows than the step's task gradients (a running average of them) are not loss
    weights of this step, and are not compared."""
    applied: list[list[float] | None] = []
    plain, aggregated = TrainingStep.backward, TrainingStep.backward_aggregated
    gradients_of, served = TrainingStep.task_gradients, []

    def keep(weights: torch.Tensor) -> None:
        applied.append((weights * (3.0 / weights.sum())).tolist())

    def task_gradients(self: TrainingStep, *args: Any) -> torch.Tensor:
        served.append(gradients_of(self, *args))
        return served[-1]

    def backward(self: TrainingStep, weights: torch.Tensor) -> None:
        keep(weights)
        plain(self, weights)

    def backward_aggregated(
        self: TrainingStep, weights: torch.Tensor, rows: torch.Tensor, *args: Any, **kw: Any
    ) -> None:
        keep(weights) if served and rows is served[-1] else applied.append(None)
        aggregated(self, weights, rows, *args, **kw)

    monkeypatch.setattr(TrainingStep, "task_gradients", task_gradients)
    monkeypatch.setattr(TrainingStep, "backward", backward)
    monkeypatch.setattr(TrainingStep, "backward_aggregated", backward_aggregated)
    result = train(toy(), fresh(name), Budget(12, trace_every=1), seed=0)
    recorded = [weights for _, weights in result.trace]
    assert len(applied) == len(recorded) == 12
    for step, (want, got) in enumerate(zip(applied, recorded, strict=True)):
        if want is not None:
            assert got == pytest.approx(want, rel=1e-5, abs=1e-7), step


@pytest.mark.parametrize("name", BALANCERS)
def test_start_resets_every_state_and_a_seed_decides_the_run(name: str) -> None:
    """One instance trained twice gives what two fresh ones give, on the same seed."""
    problem, budget = toy(), Budget(30, trace_every=1)
    reused = fresh(name)
    first = train(problem, reused, budget, seed=3)
    again = train(problem, reused, budget, seed=3)
    other = train(problem, fresh(name), budget, seed=3)
    assert first.trace == again.trace == other.trace
    assert first.test_losses == again.test_losses == other.test_losses


@pytest.mark.parametrize("name", BALANCERS)
def test_the_dry_run_passes(name: str) -> None:
    check_balancer(toy(), fresh(name), name)


@pytest.mark.parametrize("name", PACKING)
def test_packed_members_train_as_they_would_alone(name: str) -> None:
    problem, budget = toy(), Budget(30, trace_every=1)
    members = [fresh(name), fresh(name)]
    packed = train_packed(problem, members, budget, seed=1)
    alone = train(problem, fresh(name), budget, seed=1)
    for member in packed:
        assert member.weights_final == pytest.approx(alone.weights_final, rel=1e-4, abs=1e-6)
        assert member.test_losses == pytest.approx(alone.test_losses, rel=1e-3)


@pytest.mark.parametrize("name", SYNC_FREE)
def test_steps_between_evaluations_read_nothing_back(
    monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    """As on a GPU (the watch read every 50 steps): 150 more steps between the same two
    evaluations add only the watch's 3 reads, never one a step."""
    monkeypatch.setattr(loop_module, "check_every", lambda _device: 50)
    problem = ToyRegression(**small_toy_params(2, [1.0, 100.0]))
    counts = []
    for steps in (50, 200):
        reads = HostReads()
        with reads:
            train(problem, fresh(name), Budget(steps, eval_every=steps), seed=0)
        counts.append(reads.count)
    assert counts[1] - counts[0] <= 3 * 2, counts


@pytest.mark.parametrize("name", [name for name in PACKING if name in SYNC_FREE])
def test_packed_steps_between_evaluations_read_nothing_back_either(
    monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    monkeypatch.setattr(packed_module, "check_every", lambda _device: 50)
    problem = ToyRegression(**small_toy_params(2, [1.0, 100.0]))
    counts = []
    for steps in (50, 200):
        reads = HostReads()
        with reads:
            train_packed(problem, [fresh(name), fresh(name)], Budget(steps, eval_every=steps))
        counts.append(reads.count)
    assert counts[1] - counts[0] <= 3 * 2, counts


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no GPU on this machine")
@pytest.mark.parametrize("name", SYNC_FREE)
def test_no_host_synchronisation_per_step_on_a_gpu(name: str) -> None:
    """On a real GPU: torch's sync debug mode raises at any synchronising call in a step."""
    problem = ToyRegression(**small_toy_params(2, [1.0, 100.0]))
    run = loop_module._Run(  # the loop's own state, so only its steps are watched
        problem, fresh(name), Budget(20), 0, torch.device("cuda"), None, loop_module.Precision.FP32
    )
    batches = [run.train_data.batch(next(run.indices), run.device) for _ in range(3)]
    run.train_step(0, batches[0])  # the first step may set things up
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        for step, batch in enumerate(batches[1:], start=1):
            run.train_step(step, batch)
    finally:
        torch.cuda.set_sync_debug_mode("default")


@pytest.mark.parametrize("name", sorted(set(BALANCERS) - set(SYNC_FREE)))
def test_a_balancer_declared_to_read_the_host_does(
    monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    """``reads_host`` is not a blanket exemption: a method declaring it reads every step."""
    monkeypatch.setattr(loop_module, "check_every", lambda _device: 50)
    problem = ToyRegression(**small_toy_params(2, [1.0, 100.0]))
    counts = []
    for steps in (50, 100):
        reads = HostReads()
        with reads:
            train(problem, fresh(name), Budget(steps, eval_every=steps), seed=0)
        counts.append(reads.count)
    assert counts[1] - counts[0] >= 50, counts
