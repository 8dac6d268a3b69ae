"""Gramian-based balancers packed: each member weights itself from its own Gramian with its
own rule, and trains as its unpacked trial does (float64, to rounding)."""

from __future__ import annotations

import functools

import pytest
import torch

from gradsweep.trainers import Budget, StaticBalancer, ToyRegression, TrainResult
from gradsweep.trainers import train as train_on
from gradsweep.trainers.balancers.catalog import built_in
from gradsweep.trainers.balancers.gramian import GRAMIAN_FAMILY, GramianBalancer, PackedGramian
from gradsweep.trainers.balancers.mgda import Mgda
from gradsweep.trainers.packed import loop as packed_module
from gradsweep.trainers.packed.loop import train_packed as train_packed_on
from gradsweep.trainers.packed.weights import NotPackable
from tests.trainers.conftest import small_toy_params
from tests.trainers.packed.gramian_members import (
    ExplodingGramian,
    InverseNormGramian,
    OwnStepGramian,
    RandomGramian,
)
from tests.trainers.packed.test_loop import assert_same_run, max_relative
from tests.trainers.packing_problems import BatchNormToy, GenericTrunkToy

train = functools.partial(train_on, device="cpu")
train_packed = functools.partial(train_packed_on, device="cpu")


def toy3() -> ToyRegression:
    return ToyRegression(**small_toy_params(3, [1.0, 10.0, 100.0]))


def assert_packed_as_alone(
    problem: ToyRegression, members: list[GramianBalancer], budget: Budget, seed: int
) -> list[TrainResult]:
    packed = train_packed(problem, members, budget, seed=seed, keep_models=True)
    runs: dict[tuple[type, str], TrainResult] = {}
    for member, result in zip(members, packed, strict=True):
        kind = (type(member), member.gradients)
        if kind not in runs:
            runs[kind] = train(problem, type(member)(gradients=member.gradients), budget, seed=seed)
        alone = runs[kind]
        assert_same_run(result, alone, 1e-9)
        # the applied weights (MGDA's sum to 1) are kept as alone, at the same points
        assert [s for s, _ in result.raw_trace] == [s for s, _ in alone.raw_trace]
        assert [s for s, _ in result.raw_trace] == [s for s, _ in result.trace]
        ours = torch.tensor([w for _, w in result.raw_trace])
        theirs = torch.tensor([w for _, w in alone.raw_trace])
        assert max_relative(ours, theirs) <= 1e-9
    return packed


@pytest.mark.parametrize(
    "sites",
    [("parameters",) * 2, ("representation",) * 2, ("parameters", "representation")],
    ids=["parameters", "representation", "mixed-sites"],
)
def test_mgda_members_equal_their_unpacked_trials(float64: None, sites: tuple[str, ...]) -> None:
    budget = Budget(30, eval_every=10, trace_every=1)
    members: list[GramianBalancer] = [Mgda(gradients=site) for site in sites]
    packed = assert_packed_as_alone(toy3(), members, budget, seed=1)
    for result in packed:  # recorded as a single run records them: Σ = T
        assert all(sum(w) == pytest.approx(3.0) for _, w in result.trace)
    if len(set(sites)) > 1:  # the two sites really are two runs
        assert packed[0].weights_final != pytest.approx(packed[1].weights_final, rel=1e-3)


def test_different_gramian_balancers_share_a_pack(float64: None) -> None:
    """MGDA, an inverse-norm rule and two members of a randomised one (each drawing its own
    stream, as alone), at both sites, in one pack."""
    members: list[GramianBalancer] = [
        Mgda(),
        InverseNormGramian(gradients="representation"),
        RandomGramian(),
        RandomGramian(gradients="representation"),
        Mgda(gradients="representation"),
    ]
    packed = assert_packed_as_alone(toy3(), members, Budget(20, trace_every=1), seed=2)
    # the randomised rule ignores the Gramian: alone, each member draws the same sequence,
    # and packed too (one generator shared in turn would hand them alternate draws)
    assert packed[2].trace == packed[3].trace


@pytest.mark.parametrize("problem", [BatchNormToy, GenericTrunkToy])
def test_other_trunks_pack_exactly(float64: None, problem: type[ToyRegression]) -> None:
    members: list[GramianBalancer] = [Mgda(), InverseNormGramian(gradients="representation")]
    instance = problem(**small_toy_params(2, [1.0, 100.0]))
    assert_packed_as_alone(instance, members, Budget(20, eval_every=10, trace_every=1), seed=0)


@pytest.mark.parametrize("every", [1, 4], ids=["read-every-step", "read-every-4"])
def test_a_failing_member_is_masked_and_the_rest_train_as_alone(
    float64: None, monkeypatch: pytest.MonkeyPatch, every: int
) -> None:
    monkeypatch.setattr(packed_module, "check_every", lambda _device: every)
    problem, budget = toy3(), Budget(20, eval_every=10, trace_every=1)
    members: list[GramianBalancer] = [Mgda(), ExplodingGramian(), RandomGramian()]
    packed = train_packed(problem, members, budget, seed=0, keep_models=True)
    assert [r.status for r in packed] == ["completed", "failed", "completed"]
    alone = train(problem, ExplodingGramian(), budget, seed=0)
    failed = packed[1]
    assert alone.status == "failed" and failed.error == alone.error
    assert failed.steps == alone.steps == 5 and "non-finite loss at step 5" in str(failed.error)
    for (s, ours), (t, theirs) in zip(failed.trace, alone.trace, strict=True):
        assert s == t
        torch.testing.assert_close(torch.tensor(ours), torch.tensor(theirs), equal_nan=True)
    final = torch.tensor(failed.weights_final)  # its failing step's: no solve since
    torch.testing.assert_close(final, torch.tensor(alone.weights_final), equal_nan=True)
    assert [e.step for e in failed.epochs] == [0]
    for k in (0, 2):
        rebuilt = type(members[k])(gradients=members[k].gradients)
        assert_same_run(packed[k], train(problem, rebuilt, budget, seed=0), 1e-9)


def test_only_gramian_balancers_whose_step_is_the_familys_pack() -> None:
    with pytest.raises(NotPackable, match=r"gramian \(mgda"):
        train_packed(toy3(), [Mgda(), StaticBalancer()], Budget(5))
    with pytest.raises(NotPackable, match="GramianBalancer's step"):
        train_packed(toy3(), [Mgda(), OwnStepGramian()], Budget(5))
    same = Mgda()
    with pytest.raises(NotPackable, match="one member of a pack"):
        train_packed(toy3(), [same, same], Budget(5))


def test_every_declaration_of_the_family_is_a_gramian_balancer_packed_alike() -> None:
    family = {
        name: cls
        for name, cls in built_in().items()
        if cls.declaration.pack_family == GRAMIAN_FAMILY
    }
    assert "mgda" in family
    for name, cls in family.items():
        assert issubclass(cls, GramianBalancer), name
        assert cls.declaration.packed is PackedGramian, name
        assert cls.step is GramianBalancer.step, name
