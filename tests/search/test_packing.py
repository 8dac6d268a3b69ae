"""How planned trials become packs, and how big ``pack: auto`` makes them."""

from __future__ import annotations

import pytest

from gradsweep.plan.trials import plan_up_front
from gradsweep.search.packing import CPU, GPU, auto_size, decide, make_packs
from gradsweep.spec import parse_spec
from tests.test_spec import BASE, mutate

ADAPTIVE = BASE.replace("  retrain: {alpha: 0.12}\n", "  dwa: {}\n  retrain: {alpha: 0.12}\n")


def test_packs_hold_one_seed_and_one_family_in_plan_order() -> None:
    plan = plan_up_front(parse_spec(ADAPTIVE), 3)  # per seed: 16 static, 2 gradnorm, 1 dwa
    packs = make_packs(plan, 16)
    assert [len(p.trials) for p in packs] == [16, 2, 1, 16, 2, 1]
    for pack in packs:
        assert len({t.seed for t in pack.trials}) == 1
        assert len({t.balancer for t in pack.trials}) == 1
    assert packs[0].label is not None and packs[0].label.startswith("static/s0/")
    assert packs[1].label is not None and packs[1].label.startswith("gradnorm/s0/")
    assert packs[2].label is None and packs[2].trials[0].arm == "dwa"  # never packed
    assert [t.key for p in packs for t in p.trials] == [t.key for t in plan]


def test_packs_are_balanced_stable_and_named_by_their_members() -> None:
    plan = plan_up_front(parse_spec(ADAPTIVE), 3)
    packs = make_packs(plan, 6)  # 16 static → 6 + 5 + 5, not 6 + 6 + 4
    assert [len(p.trials) for p in packs[:4]] == [6, 5, 5, 2]
    assert make_packs(plan, 6) == packs
    labels = [p.label for p in packs if p.label is not None]
    assert len(set(labels)) == len(labels)
    # a resume packs only what is left: other members, another label
    rest = make_packs(plan[3:], 6)
    assert rest[0].trials == tuple(plan[3:8]) and rest[0].label != packs[0].label


def test_pack_size_one_runs_every_trial_alone() -> None:
    plan = plan_up_front(parse_spec(BASE), 3)
    packs = make_packs(plan, 1)
    assert len(packs) == len(plan) and all(p.label is None for p in packs)


def test_auto_spreads_over_the_slots_up_to_the_device_cap() -> None:
    assert auto_size(86_000, "cpu", packable=21, concurrency=2).size == 11
    assert auto_size(86_000, "cpu", packable=1000, concurrency=2).size == CPU.max_members
    assert auto_size(86_000, "gpu", packable=1000, concurrency=2).size == GPU.max_members
    too_big = auto_size(CPU.max_parameters + 1, "cpu", packable=100, concurrency=2)
    assert too_big.size == 1 and too_big.reason.startswith("packing off: the model has")
    assert auto_size(CPU.max_parameters + 1, "gpu", packable=100, concurrency=2).size == 50


def test_decide_follows_the_option_then_the_spec_then_the_check() -> None:
    spec = parse_spec(BASE)
    plan = plan_up_front(spec, 3)  # 36 packable trials
    assert decide(spec, plan, None, 2).size == 18
    assert decide(spec, plan, 4, 2).size == 4
    off = parse_spec(BASE + "resources: {pack: 1}\n")
    assert decide(off, plan, None, 2).size == 1
    assert decide(off, plan, 8, 2).size == 8  # --pack wins over the spec
    assert decide(spec, plan[:1], None, 2).size == 1  # nothing to pack


@pytest.mark.parametrize("requested", [None, 8])
def test_an_unpackable_model_runs_alone_with_the_reason(requested: int | None) -> None:
    params = {"tasks": 3, "sigmas": [1, 10, 100], "train_samples": 200, "test_samples": 50}
    dropout = {"name": "tests.trainers.packing_problems:dropout_toy", "params": params}
    spec = parse_spec(mutate({"problem": dropout}))
    decision = decide(spec, plan_up_front(spec, 3), requested, 2)
    assert decision.size == 1 and decision.notice
    assert decision.reason.startswith("packing off: the model does not run under torch.func.vmap")
    assert decision.reason.endswith("; each trial runs alone") and "\n" not in decision.reason


def test_auto_leaves_convolutional_models_alone_on_the_cpu_only() -> None:
    cpu = auto_size(47_450, "cpu", packable=40, concurrency=2, convolutional=True)
    assert cpu.size == 1 and "convolutional model on the CPU" in cpu.reason
    assert auto_size(47_450, "gpu", packable=40, concurrency=2, convolutional=True).size == 20


GRAMIAN = BASE.replace(
    "  retrain: {alpha: 0.12}\n",
    "  retrain: {alpha: 0.12}\n  mgda: {}\n"
    "  tests.trainers.packed.gramian_members:InverseNormGramian: {gradients: representation}\n",
)


def test_gramian_balancers_of_one_seed_share_a_pack() -> None:
    """Every Gramian-based balancer is of the gramian family: MGDA's trial packs with the
    other Gramian methods' of its seed (a user's too, by its declaration)."""
    plan = plan_up_front(parse_spec(GRAMIAN), 3)
    packs = [p for p in make_packs(plan, 16) if p.label and p.label.startswith("gramian/")]
    assert [[t.key for t in p.trials] for p in packs] == [
        ["mgda/exact/s0", "test_inverse_norm_gramian/at=z/s0"],
        ["mgda/exact/s1", "test_inverse_norm_gramian/at=z/s1"],
    ]
    assert [p.label.split("/")[1] for p in packs if p.label] == ["s0", "s1"]


@pytest.mark.parametrize("gpus", [0, 1], ids=["cpu", "gpu"])
def test_auto_packs_gramian_members_on_the_cpu_and_the_gpu(gpus: int) -> None:
    """Measured on the CPU (benchmarks/packing_gramian.py, 1 thread): a pack of MGDA members
    runs 1.23-1.37× the member-steps/s of single runs, so auto packs them as it packs the
    others; on a GPU the host solvers run once a step for all members, so it packs too."""
    spec = parse_spec(GRAMIAN + f"resources: {{gpus_per_trial: {gpus}}}\n")
    plan = plan_up_front(spec, 3)  # per seed: 16 static, 2 gradnorm, 2 gramian
    decision = decide(spec, plan, None, 2)
    assert decision.size == 20 and decision.reason.endswith("(GPU)" if gpus else "(CPU)")
    gramian = [p for p in make_packs(plan, decision.size) if p.trials[0].arm == "mgda"]
    assert [len(p.trials) for p in gramian] == [2, 2]
    assert all(p.label is not None and p.label.startswith("gramian/") for p in gramian)
