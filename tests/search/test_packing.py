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
