"""Step time and peak memory of equal weights, GradNorm and bf16, bare and through ``train``.

For each problem (NYUv2's SegNet on generated data: full size on a GPU, small on a CPU;
the paper's toy) and each variant, three figures:

- **bare step**: median of interleaved steps on one batch already on the device (zero
  grad, forward, balancer, optimizer), synchronised on a GPU;
- **train step**: what ``trainers.train`` spends per step, data pipeline, non-finite
  watch and weight trace included: the difference in wall time between a long and a short
  run, over the difference in steps (both evaluate at the same points, so that cancels);
- **peak memory** of one bare step above what was allocated before it (torch's allocator
  on a GPU; resident pages on a CPU, see _memory.py).

``gradnorm (graph path)`` is GradNorm with the trunk's output made a copy of ``W``'s
conv output, which forces the path that keeps the step's graph (what every conv trunk
used before the layer path). Importable with torch and numpy alone.

    PYTHONPATH=. python3 -m benchmarks.gpu_step --device cuda|cpu [--rounds 30] [--no-write]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from benchmarks._memory import MALLOC_ENV, peak_bytes
from benchmarks._results import command_line, markdown_table, targets, update_section, verdict
from benchmarks.gradnorm_overhead import device_label
from gradsweep.trainers import Budget, GradNorm, NYUv2, StaticBalancer, ToyRegression, train
from gradsweep.trainers.balancers.base import Balancer
from gradsweep.trainers.engine.loop import balancer_context
from gradsweep.trainers.engine.precision import Precision
from gradsweep.trainers.engine.step import TrainingStep
from gradsweep.trainers.problems.base import MultitaskModel, MultitaskProblem
from gradsweep.trainers.problems.nyuv2_synthetic import write_dataset

Step = Callable[[], None]


@dataclass(frozen=True)
class Variant:
    label: str
    balancer: str  # equal | gradnorm
    precision: Precision = Precision.FP32
    graph_path: bool = False


VARIANTS = [
    Variant("equal", "equal"),
    Variant("gradnorm", "gradnorm"),
    Variant("gradnorm (graph path)", "gradnorm", graph_path=True),
    Variant("equal bf16", "equal", Precision.BF16),
    Variant("gradnorm bf16", "gradnorm", Precision.BF16),
]
ALPHA = {"nyuv2": 1.5, "toy": 0.12}


@dataclass(frozen=True)
class Figures:
    bare_ms: float
    train_ms: float | None
    peak_mib: float


class Copy(nn.Module):
    """``x.clone()``: the trunk's output stops being ``W``'s layer output (graph path)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.clone()


def build_model(
    problem: MultitaskProblem, variant: Variant, device: torch.device
) -> MultitaskModel:
    torch.manual_seed(0)
    model = problem.build_model()
    if variant.graph_path:
        trunk = nn.Sequential(model.trunk, Copy())
        model = MultitaskModel(trunk, list(model.heads), model.shared_layer)
    return model.to(device)


def make_balancer(variant: Variant, problem_name: str) -> Balancer:
    return GradNorm(ALPHA[problem_name]) if variant.balancer == "gradnorm" else StaticBalancer()


def bare_step(problem: MultitaskProblem, variant: Variant, name: str, device: torch.device) -> Step:
    model = build_model(problem, variant, device)
    optimizer = torch.optim.Adam(model.parameters(), lr=problem.learning_rate)
    balancer = make_balancer(variant, name)
    balancer.start(balancer_context(problem, model, device, 0, variant.precision))
    batch = problem.train_data.batch(torch.arange(problem.batch_size), device)

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        balancer.step(
            TrainingStep(model, problem, batch, balancer.needs_task_gradients, variant.precision)
        )
        optimizer.step()

    return step


def synchronise(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def median_ms(steps: dict[str, Step], rounds: int, device: torch.device) -> dict[str, float]:
    """Interleaved, after 3 warm-up rounds, so drift in the machine hits every variant."""
    times: dict[str, list[float]] = {label: [] for label in steps}
    for index in range(rounds + 3):
        for label, step in steps.items():
            synchronise(device)
            started = time.perf_counter()
            step()
            synchronise(device)
            if index >= 3:
                times[label].append(time.perf_counter() - started)
    return {label: statistics.median(values) * 1e3 for label, values in times.items()}


def train_ms(
    problem: MultitaskProblem, variant: Variant, name: str, device: torch.device, steps: int
) -> float:
    """Marginal ``train`` time per step between ``steps // 4`` and ``steps`` steps."""

    def wall(count: int) -> float:
        synchronise(device)
        started = time.perf_counter()
        balancer = make_balancer(variant, name)
        budget = Budget(count, eval_every=count)
        train(problem, balancer, budget, 0, device=device, precision=variant.precision)
        synchronise(device)
        return time.perf_counter() - started

    short = max(steps // 4, 1)
    wall(short)  # warm-up: kernels, allocator, page cache
    return (wall(steps) - wall(short)) / (steps - short) * 1e3


def problem_variants(name: str) -> list[Variant]:
    return [v for v in VARIANTS if not (v.graph_path and name == "toy")]


MIN_PEAK_MIB = 1.0  # below, a ratio of peaks is noise (the toy's step allocates ~0.1 MiB)


def peaks_mib(name: str, problem: MultitaskProblem, device: torch.device) -> dict[str, float]:
    """Each variant's peak over one bare step, median of 5."""
    peaks = {}
    for variant in problem_variants(name):
        step = bare_step(problem, variant, name, device)
        step()  # warm-up: optimizer state, kernels
        values = [peak_bytes(step, device) for _ in range(5)]
        peaks[variant.label] = statistics.median(values) / 2**20
    return peaks


def cpu_peaks_mib() -> dict[str, dict[str, float]]:
    """The CPU peaks from a process started with glibc's mmap threshold fixed (which slows
    allocation, so the timings are taken here, without it)."""
    env = {**os.environ, **MALLOC_ENV}
    command = [sys.executable, "-m", "benchmarks.gpu_step", "--device", "cpu", "--peaks-json"]
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def measure(
    name: str,
    problem: MultitaskProblem,
    device: torch.device,
    rounds: int,
    train_steps: int,
    peaks: dict[str, float],
) -> dict[str, Figures]:
    variants = problem_variants(name)
    steps = {v.label: bare_step(problem, v, name, device) for v in variants}
    bare = median_ms(steps, rounds, device)
    trained = {
        v.label: None if v.graph_path else train_ms(problem, v, name, device, train_steps)
        for v in variants
    }
    return {v.label: Figures(bare[v.label], trained[v.label], peaks[v.label]) for v in variants}


def nyuv2(device: torch.device, root: Path) -> tuple[NYUv2, str]:
    """Full size on a GPU (SegNet 64, 288×384, batch 8), small on a CPU."""
    if device.type == "cuda":
        size = {"height": 288, "width": 384}
        params = {"width": 64, "levels": 5, "batch_size": 8}
    else:
        size = {"height": 96, "width": 128}
        params = {"width": 8, "levels": 3, "batch_size": 4}
    write_dataset(root, train=32, val=8, **size)
    problem = NYUv2(root=str(root), **params)  # type: ignore[arg-type]
    shape = f"{size['height']}×{size['width']}, SegNet width {params['width']}, "
    return problem, shape + f"{params['levels']} levels, batch {params['batch_size']}"


def table(results: dict[str, Figures]) -> str:
    base = results["equal"]
    rows = []
    for label, f in results.items():
        rows.append(
            [
                label,
                f"{f.bare_ms:.3f}",
                f"{f.bare_ms / base.bare_ms:.3f}×",
                "–" if f.train_ms is None else f"{f.train_ms:.3f}",
                "–" if f.train_ms is None else f"{f.train_ms / f.bare_ms:.3f}×",
                f"{f.peak_mib:.1f}",
                f"{f.peak_mib / base.peak_mib:.3f}×" if base.peak_mib >= MIN_PEAK_MIB else "–",
            ]
        )
    header = ["variant", "bare ms", "/ equal", "train ms", "train / bare", "peak MiB", "/ equal"]
    return markdown_table(header, rows)


def verdicts(nyu: dict[str, Figures]) -> list[str]:
    equal, gradnorm = nyu["equal"], nyu["gradnorm"]
    assert equal.train_ms is not None
    return [
        verdict(
            "NYUv2 `train` step / bare step (equal)",
            equal.train_ms / equal.bare_ms,
            1.05,
            False,
            "×",
        ),
        verdict(
            "NYUv2 GradNorm peak memory / equal",
            gradnorm.peak_mib / equal.peak_mib,
            1.05,
            False,
            "×",
        ),
        verdict("NYUv2 GradNorm step / equal", gradnorm.bare_ms / equal.bare_ms, 1.06, False, "×"),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--rounds", type=int, default=30, help="timed bare steps per variant")
    parser.add_argument("--train-steps", type=int, default=None, help="long train run's steps")
    parser.add_argument("--threads", type=int, default=2, help="CPU threads")
    parser.add_argument("--no-write", action="store_true", help="print only")
    parser.add_argument("--peaks-json", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    device = torch.device(args.device)
    torch.set_num_threads(args.threads)
    train_steps = args.train_steps or (80 if device.type == "cuda" else 40)
    with tempfile.TemporaryDirectory() as scratch:
        problem, shape = nyuv2(device, Path(scratch) / "nyuv2")
        toy = ToyRegression()
        if args.peaks_json:
            peaks = {
                "nyuv2": peaks_mib("nyuv2", problem, device),
                "toy": peaks_mib("toy", toy, device),
            }
            print(json.dumps(peaks))
            return
        if device.type == "cuda":
            peaks = {
                "nyuv2": peaks_mib("nyuv2", problem, device),
                "toy": peaks_mib("toy", toy, device),
            }
        else:
            peaks = cpu_peaks_mib()
        nyu = measure("nyuv2", problem, device, args.rounds, train_steps, peaks["nyuv2"])
    toy_rounds = max(args.rounds, 200)
    toy_figures = measure("toy", toy, device, toy_rounds, 10 * train_steps, peaks["toy"])
    text = (
        f"NYUv2 ({shape}, generated data, 3 tasks, GradNorm α = 1.5):\n\n{table(nyu)}\n\n"
        f"Paper toy (T = 2, batch 100, GradNorm α = 0.12):\n\n{table(toy_figures)}"
    )
    print(text)
    if args.no_write:
        return
    where, name = device_label(device)
    allocator = (
        "torch's allocator"
        if device.type == "cuda"
        else "resident pages, in a process with glibc's mmap threshold at 64 KiB"
    )
    update_section(
        f"Step time and memory ({where})",
        f"Bare step: median of {args.rounds} interleaved steps on one batch on the device "
        f"(toy: {toy_rounds}); train step: marginal time per step of `trainers.train` "
        f"({train_steps // 4} against {train_steps} steps; toy ×10), pipeline, non-finite "
        "watch and trace included; peak: one bare step's peak above what was allocated "
        f"before it, median of 5 ({allocator}). torch {torch.__version__}, "
        f"{args.threads} CPU thread(s).\n\n"
        f"Machine: {name}\n\nCommand: `{command_line('benchmarks.gpu_step')}`\n\n{text}\n\n"
        + targets(verdicts(nyu))
        + (
            "\n\nThe targets are set for a GPU; on a CPU they are shown for reference (there "
            "the step is compute-bound and a host read costs nothing)."
            if device.type != "cuda"
            else ""
        ),
    )


if __name__ == "__main__":
    main()
