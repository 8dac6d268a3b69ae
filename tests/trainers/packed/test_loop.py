"""A packed member is the unpacked trial of the same balancer and seed, to float rounding."""

from __future__ import annotations

import functools

import pytest
import torch

from gradsweep.trainers import (
    Budget,
    GradNorm,
    MultiDigits,
    StaticBalancer,
    ToyRegression,
    TrainResult,
    UncertaintyWeighting,
)
from gradsweep.trainers import train as train_on
from gradsweep.trainers.balancers.base import Balancer
from gradsweep.trainers.packed import loop as packed_module
from gradsweep.trainers.packed.loop import PackRound
from gradsweep.trainers.packed.loop import train_packed as train_packed_on
from gradsweep.trainers.packed.weights import NotPackable
from tests.trainers.conftest import small_toy_params
from tests.trainers.packing_problems import BatchNormToy, GenericTrunkToy
from tests.trainers.reference_gradnorm import reference_gradnorm
from tests.trainers.user_problem import make_exploding

# on the CPU whatever the machine has: the comparisons are of two runs on one device
train = functools.partial(train_on, device="cpu")
train_packed = functools.partial(train_packed_on, device="cpu")

WEIGHTINGS = [[1.0, 1.0, 1.0], [0.5, 2.0, 0.5], [3.0, 0.0, 0.0], [0.1, 0.1, 2.8]]
ALPHAS = [0.0, 0.12, 1.5, 3.0]


def toy3() -> ToyRegression:
    return ToyRegression(**small_toy_params(3, [1.0, 10.0, 100.0]))


def max_relative(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().max() / b.abs().max().clamp(min=1e-12))


def assert_same_run(packed: TrainResult, alone: TrainResult, tol: float) -> None:
    """Weights, losses at every evaluation and the network itself agree within ``tol``."""
    assert packed.status == alone.status == "completed"
    assert [e.step for e in packed.epochs] == [e.step for e in alone.epochs]
    ours = torch.tensor([[t.test_loss for t in e.tasks] for e in packed.epochs])
    theirs = torch.tensor([[t.test_loss for t in e.tasks] for e in alone.epochs])
    assert max_relative(ours, theirs) <= tol
    trace_ours = torch.tensor([w for _, w in packed.trace])
    trace_theirs = torch.tensor([w for _, w in alone.trace])
    assert max_relative(trace_ours, trace_theirs) <= tol
    assert packed.weights_mean == pytest.approx(alone.weights_mean, rel=tol)
    assert packed.model is not None and alone.model is not None
    for (name, ours_p), (_, theirs_p) in zip(
        packed.model.state_dict().items(), alone.model.state_dict().items(), strict=True
    ):
        assert max_relative(ours_p, theirs_p) <= tol, name


def test_static_members_equal_their_unpacked_trials(float64: None) -> None:
    problem = toy3()
    budget = Budget(50, trace_every=1)
    packed = train_packed(
        problem, [StaticBalancer(w) for w in WEIGHTINGS], budget, seed=3, keep_models=True
    )
    for weights, member in zip(WEIGHTINGS, packed, strict=True):
        alone = train(problem, StaticBalancer(weights), budget, seed=3, device="cpu")
        assert_same_run(member, alone, 1e-9)
        assert member.weights_final == weights


def test_gradnorm_members_equal_their_unpacked_trials_and_algorithm_1(float64: None) -> None:
    # tasks of similar scale, so that α (not the scale alone) steers the weights
    problem = ToyRegression(**small_toy_params(3, [1.0, 1.2, 1.5]))
    budget = Budget(50, trace_every=1)
    packed = train_packed(
        problem, [GradNorm(alpha) for alpha in ALPHAS], budget, seed=3, keep_models=True
    )
    finals = []
    for alpha, member in zip(ALPHAS, packed, strict=True):
        alone = train(problem, GradNorm(alpha), budget, seed=3, device="cpu")
        assert_same_run(member, alone, 1e-9)
        reference = reference_gradnorm(problem, alpha=alpha, steps=50, seed=3)
        ours = torch.tensor([w for _, w in member.trace])
        assert max_relative(ours, torch.stack(reference.weights[:-1])) <= 1e-9
        finals.append(member.weights_final)
    # the members are different runs: the α really changed the weights
    assert max(abs(a - b) for a, b in zip(finals[0], finals[-1], strict=True)) > 1e-3


def test_float32_members_end_at_the_unpacked_objective() -> None:
    """In float32 a packed step rounds differently (batched products), so agreement is a
    matter of how chaotic training is. On digits 300 steps amplify 1 ulp of the
    initialisation to ~1e-5 of the objective for balanced weightings and to 1.5e-3 for
    the lopsided 0.1/0.1/2.8 (measured since digits holds out validation digits); on the toy
    to ~1e-2, so the toy's exactness is the float64 tests' business."""
    problem = MultiDigits(train_samples=2000, test_samples=500)
    budget = Budget(300, eval_every=100)
    weightings = [[1.0, 1.0, 1.0], [0.5, 2.0, 0.5], [2.0, 0.5, 0.5], [0.1, 0.1, 2.8]]
    groups = ([StaticBalancer(w) for w in weightings], [GradNorm(a) for a in (1.0, 1.5, 2.0, 3.0)])
    for balancers in groups:
        packed = train_packed(problem, balancers, budget, seed=0)
        objectives = []
        for balancer, member in zip(balancers, packed, strict=True):
            alone = train(problem, balancer, budget, seed=0, device="cpu")
            assert member.normalized_loss is not None and alone.normalized_loss is not None
            assert member.normalized_loss == pytest.approx(alone.normalized_loss, rel=3e-3)
            objectives.append(alone.normalized_loss)
        assert max(objectives) - min(objectives) > 1e-2 * min(objectives)  # distinct runs


def test_batchnorm_members_keep_their_own_statistics(float64: None) -> None:
    problem = BatchNormToy(**small_toy_params(2, [1.0, 100.0]))
    budget = Budget(30, eval_every=10)
    weightings = [[1.0, 1.0], [1.9, 0.1]]
    packed = train_packed(
        problem, [StaticBalancer(w) for w in weightings], budget, 0, keep_models=True
    )
    # the bias before BatchNorm has a zero gradient up to rounding, which Adam scales up to
    # lr-sized steps: that parameter agrees to ~1e-9, not 1e-12 as the rest
    for weights, member in zip(weightings, packed, strict=True):
        assert_same_run(member, train(problem, StaticBalancer(weights), budget, seed=0), 1e-7)


def test_first_epoch_mean_moves_batchnorm_before_the_members_are_copied(float64: None) -> None:
    problem = BatchNormToy(**small_toy_params(2, [1.0, 100.0]))
    budget = Budget(20, eval_every=10)
    balancers = [GradNorm(a, initial_loss="first_epoch_mean") for a in (0.5, 1.5)]
    packed = train_packed(problem, balancers, budget, 0, keep_models=True)
    for alpha, member in zip((0.5, 1.5), packed, strict=True):
        alone = train(problem, GradNorm(alpha, initial_loss="first_epoch_mean"), budget, seed=0)
        assert_same_run(member, alone, 1e-7)


def test_gradnorm_generic_path_packs_exactly(float64: None) -> None:
    problem = GenericTrunkToy(**small_toy_params(2, [1.0, 100.0]))
    assert not problem.build_model().linear_tail
    budget = Budget(30, trace_every=1)
    packed = train_packed(problem, [GradNorm(0.12), GradNorm(2.0)], budget, 0, keep_models=True)
    for alpha, member in zip((0.12, 2.0), packed, strict=True):
        assert_same_run(member, train(problem, GradNorm(alpha), budget, seed=0), 1e-9)


def test_theoretical_initial_losses_pack_exactly(float64: None) -> None:
    problem = MultiDigits(train_samples=400, test_samples=100, batch_size=50)
    budget = Budget(12, trace_every=1)
    balancers = [GradNorm(a, initial_loss="theoretical") for a in (0.5, 1.5)]
    packed = train_packed(problem, balancers, budget, seed=2, keep_models=True)
    for alpha, member in zip((0.5, 1.5), packed, strict=True):
        alone = train(problem, GradNorm(alpha, initial_loss="theoretical"), budget, seed=2)
        assert_same_run(member, alone, 1e-9)


@pytest.mark.parametrize("every", [1, 4], ids=["read-every-step", "read-every-4"])
def test_a_non_finite_member_fails_with_its_reason_and_the_rest_complete(
    monkeypatch: pytest.MonkeyPatch, every: int
) -> None:
    monkeypatch.setattr(packed_module, "check_every", lambda _device: every)
    problem = toy3()
    budget = Budget(30, eval_every=10)
    weightings = [[1.0, 1.0, 1.0], [1e300, 1.0, 1.0], [1.0, 2.0, 0.0]]  # 1e300 → inf in fp32
    rounds: list[PackRound] = []
    balancers = [StaticBalancer(w) for w in weightings]
    packed = train_packed(problem, balancers, budget, 0, rounds.append)
    alone = train(problem, StaticBalancer(weightings[1]), budget, seed=0)
    assert [r.status for r in packed] == ["completed", "failed", "completed"]
    assert alone.status == "failed"
    assert packed[1].error == alone.error and "non-finite loss at step 1" in str(alone.error)
    assert packed[1].steps == alone.steps == 1
    assert [e.step for e in packed[1].epochs] == [0]
    assert 1 in rounds[1].failed and 1 not in rounds[1].records  # said at the next round
    for k in (0, 2):
        assert packed[k].normalized_loss == pytest.approx(
            train(problem, StaticBalancer(weightings[k]), budget, seed=0).normalized_loss, rel=1e-4
        )
        assert [e.step for e in packed[k].epochs] == [0, 10, 20, 30]


@pytest.mark.parametrize("family", ["static", "gradnorm"])
def test_a_deferred_check_fails_members_as_an_immediate_one(
    monkeypatch: pytest.MonkeyPatch, family: str
) -> None:
    """Read every 4 steps (as on a GPU), members that blew up at step 6 train on NaNs in
    their own slices until step 8, then end exactly as when read at once."""
    problem = make_exploding(at=6)
    budget = Budget(20, eval_every=10, trace_every=1)

    def members() -> list[Balancer]:
        if family == "static":
            return [StaticBalancer([1.0, 1.0]), StaticBalancer([0.5, 1.5])]
        return [GradNorm(0.12), GradNorm(1.5)]

    immediate = train_packed(problem, members(), budget, seed=0)
    problem = make_exploding(at=6)
    monkeypatch.setattr(packed_module, "check_every", lambda _device: 4)
    deferred = train_packed(problem, members(), budget, seed=0)
    for a, b in zip(immediate, deferred, strict=True):
        assert a.status == b.status == "failed" and a.steps == b.steps == 6
        assert a.error == b.error and str(a.error).startswith("non-finite loss at step 6")
        assert a.trace == b.trace and a.weights_final == b.weights_final
        assert [e.step for e in b.epochs] == [0]


def test_a_bf16_pack_matches_bf16_runs_alone() -> None:
    problem = toy3()
    budget = Budget(20, eval_every=10)
    balancers = [GradNorm(0.12), GradNorm(1.5)]
    packed = train_packed(problem, balancers, budget, seed=0, precision="bf16")
    for alpha, member in zip((0.12, 1.5), packed, strict=True):
        alone = train(problem, GradNorm(alpha), budget, seed=0, precision="bf16")
        assert member.precision == alone.precision == "bf16"
        assert member.normalized_loss == pytest.approx(alone.normalized_loss, rel=0.05)


def test_members_share_the_packs_time() -> None:
    packed = train_packed(toy3(), [StaticBalancer(w) for w in WEIGHTINGS], Budget(20), seed=0)
    seconds = {member.train_seconds for member in packed}
    assert len(seconds) == 1 and seconds.pop() > 0  # alive together: equal shares


def test_only_one_family_packs() -> None:
    with pytest.raises(NotPackable, match=r"one packing family \(static, gradnorm, .*gramian"):
        train_packed(toy3(), [StaticBalancer(), GradNorm(0.1)], Budget(5))
    with pytest.raises(NotPackable, match=r"one packing family \(static, gradnorm, "):
        train_packed(toy3(), [UncertaintyWeighting(), UncertaintyWeighting()], Budget(5))
    with pytest.raises(NotPackable, match="share lr"):
        train_packed(toy3(), [GradNorm(0.1, lr=0.01), GradNorm(0.2)], Budget(5))
