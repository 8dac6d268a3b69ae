"""Packs: planned trials of one seed and one balancer family, scheduled as one Ray trial.

A pack is a scheduling unit only: each member keeps its own key, row, status, evaluations,
weight trace and timings. Trials of one seed and one packing family pack together: a
balancer whose declaration packs (static, grid and random weightings; GradNorm's αs), or
the family its declaration names (``pack_family``: ``gramian`` holds every Gramian-based
balancer's trials of the seed, MGDA's with the other methods', each member with its own
rule); Optuna's, retrain's and every other balancer's trials run alone. Packing depends only
on the trials to run and the pack size, so the same spec packs the same way, and a resume
packs just the members not completed.

``pack: auto`` picks the size from the device and the model (measured on a 2-core CPU,
docs/spec.md): on the CPU, packing pays for models up to ``CPU.max_parameters``; on a GPU
it pays far beyond, up to ``GPU.max_members`` members a pack. Within that cap, trials are
spread so every concurrent slot gets a pack.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from gradsweep.arms import ArmKind
from gradsweep.plan.trials import TrialSpec
from gradsweep.spec import PackSize, StudySpec
from gradsweep.trainers.balancers.catalog import declaration_of

# Optuna's trials are suggested one at a time and retrain's come after GradNorm's: alone
ALONE_ARMS = frozenset({ArmKind.OPTUNA.value, ArmKind.RETRAIN.value})


@dataclass(frozen=True)
class Pack:
    """Trials trained together in one Ray trial; ``label`` is None for a trial alone."""

    trials: tuple[TrialSpec, ...]
    label: str | None = None


@dataclass(frozen=True)
class PackRule:
    """When ``pack: auto`` packs on one kind of device, and how many members at most."""

    max_parameters: int
    max_members: int


# CPU, 1 thread, 16 members of a toy-shaped MLP: 1.4× one model's member-steps/s at 86k
# parameters, 1.1× at 191k and 346k, 1.0× at 777k, 0.9× at 2.6M (docs/spec.md, packing).
CPU = PackRule(max_parameters=500_000, max_members=64)
# CPU, convolutions: MultiLeNet packs at 1.13× one model's member-steps/s with 4 members and
# 0.85× with 10 (1 thread): on the CPU, auto leaves convolutional models alone.
# GPU: 256 stacked toy models run 157× one model's throughput on an H100; larger packs gain
# less per member and cost memory linearly.
GPU = PackRule(max_parameters=2_000_000, max_members=256)
# Gramian-based members (the gramian family) follow the same rules. CPU, toy, MGDA
# (benchmarks/packing_gramian.py, benchmarks/RESULTS.md): packs of 4, 8 and 16 members run
# 1.23×, 1.37× and 1.35× the member-steps/s of single runs on 1 thread (1.41×, 1.65×, 1.79×
# on 2): the network's part gains as a static pack's does, the members' host solvers (42-44%
# of a pack's time, one member after another) not at all. That pays (the CPU packs down to
# 1.1×), so auto packs them on the CPU. GPU (not measured yet): a single run's solver waits
# on the device at every Frank-Wolfe iteration, a pack copies its Gramians to the host once a
# step, so packing should pay more there, up to the point where the members' host solvers
# fill the step (K ≈ 16); more members then only lengthen the pack.


@dataclass(frozen=True)
class PackingDecision:
    """The pack size a launch uses and the one line that says why."""

    size: int
    reason: str

    @property
    def notice(self) -> bool:
        """Whether the line is worth saying even without live progress (packing refused)."""
        return self.reason.startswith("packing off:")


def family(trial: TrialSpec) -> str | None:
    """The pack family of a trial: its declaration's ``pack_family`` (``gramian``: every
    Gramian-based balancer, so MGDA's trials pack with the other Gramian methods' of their
    seed), else its balancer alone; None when it always runs alone."""
    declaration = declaration_of(trial.balancer)
    if trial.arm in ALONE_ARMS or declaration.packed is None:
        return None
    return declaration.pack_family or trial.balancer


def _label(fam: str, seed: int, trials: Sequence[TrialSpec]) -> str:
    digest = hashlib.sha1("\n".join(t.key for t in trials).encode()).hexdigest()[:8]
    return f"{fam}/s{seed}/{digest}"


def _chunks(trials: list[TrialSpec], size: int) -> list[list[TrialSpec]]:
    """Balanced consecutive chunks of at most ``size`` (17 at 16 → 9 + 8, not 16 + 1)."""
    count = math.ceil(len(trials) / size)
    base, extra = divmod(len(trials), count)
    chunks, start = [], 0
    for i in range(count):
        end = start + base + (1 if i < extra else 0)
        chunks.append(trials[start:end])
        start = end
    return chunks


def make_packs(todo: Sequence[TrialSpec], size: int) -> list[Pack]:
    """The trials to run as packs of at most ``size``, in plan order (a pack where its first
    member stood); trials of no family, and packs of one, run alone."""
    groups: dict[tuple[str, int], list[TrialSpec]] = {}
    order: list[tuple[str, int] | TrialSpec] = []
    for trial in todo:
        fam = family(trial) if size > 1 else None
        if fam is None:
            order.append(trial)
            continue
        group = (fam, trial.seed)
        if group not in groups:
            groups[group] = []
            order.append(group)
        groups[group].append(trial)
    packs: list[Pack] = []
    for item in order:
        if isinstance(item, TrialSpec):
            packs.append(Pack((item,)))
            continue
        for chunk in _chunks(groups[item], size):
            label = _label(item[0], item[1], chunk) if len(chunk) > 1 else None
            packs.append(Pack(tuple(chunk), label))
    return packs


def packable_count(todo: Sequence[TrialSpec]) -> int:
    return sum(1 for trial in todo if family(trial) is not None)


def auto_size(
    parameters: int,
    device: Literal["cpu", "gpu"],
    packable: int,
    concurrency: int,
    convolutional: bool = False,
) -> PackingDecision:
    """``pack: auto``: 1 for a model that would not gain, else spread the packable trials
    over the concurrent slots, at most the device's ``max_members`` a pack."""
    rule = GPU if device == "gpu" else CPU
    if convolutional and device == "cpu":
        return PackingDecision(
            1,
            "packing off: a convolutional model on the CPU (packed convolutions run slower "
            "than one model's here; pack: N forces it)",
        )
    if parameters > rule.max_parameters:
        return PackingDecision(
            1,
            f"packing off: the model has {parameters:,} parameters, above the "
            f"{rule.max_parameters:,} up to which packing pays on the {device.upper()}",
        )
    size = max(1, min(rule.max_members, math.ceil(packable / max(concurrency, 1))))
    return PackingDecision(size, f"packing: auto, up to {size} trials a pack ({device.upper()})")


def decide(
    spec: StudySpec, todo: Sequence[TrialSpec], requested: PackSize | None, concurrency: int
) -> PackingDecision:
    """The pack size for these trials: ``requested`` (``--pack``) over ``resources.pack``;
    1 when fewer than two trials could pack or the model fails the packed-step check."""
    wanted = requested if requested is not None else spec.resources.pack
    if wanted == 1:
        return PackingDecision(1, "packing off (pack: 1)")
    packable = packable_count(todo)
    if packable < 2:
        return PackingDecision(1, "packing: nothing to pack")
    from gradsweep.trainers.packed.packability import check_packing, model_size  # torch
    from gradsweep.trainers.registry import built_problem

    problem = built_problem(
        spec.problem.name, spec.problem.params_json(), spec.selection.validation_fraction
    )
    device: Literal["cpu", "gpu"] = "gpu" if spec.resources.gpus_per_trial > 0 else "cpu"
    if wanted == "auto":
        size = model_size(problem)
        decision = auto_size(size.parameters, device, packable, concurrency, size.convolutional)
    else:
        decision = PackingDecision(wanted, f"packing: up to {wanted} trials a pack")
    if decision.size == 1:
        return decision
    check = check_packing(problem)
    if check.reason is not None:
        return PackingDecision(1, f"packing off: {check.reason}; each trial runs alone")
    return decision
