"""Median step time of every balancer relative to an equal-weight step (toy model): each
built-in the catalogue finds, and the example plug-in.

The compute side of "which adaptive method lands nearest the static optimum, and at what
cost": the same model, batch and thread count for all, steps interleaved so drift in the
machine's speed hits all alike. One CPU thread unless --threads.

    python -m benchmarks.balancer_overhead [--device cpu|cuda] [--steps 300] [--rounds 3]
        [--no-write]
"""

from __future__ import annotations

import argparse
import statistics

import torch

from benchmarks._results import command_line, markdown_table, update_section
from benchmarks.gradnorm_overhead import balancer_step, device_label, median_seconds, toy_setup
from gradsweep.trainers import make_balancer
from gradsweep.trainers.balancers.catalog import built_in

PLUG_IN = "examples.inverse_norm_balancer:InverseGradientNorm"
# every balancer the catalogue finds (static as "equal"), and the example plug-in, each
# as `gradsweep train` builds it when told nothing else
BALANCERS = {
    ("equal" if name == "static" else name): (name, dict(cls.declaration.train_defaults))
    for name, cls in built_in().items()
} | {"inverse_norm (example plug-in)": (PLUG_IN, {})}


def measure(tasks: int, repeats: int, device: torch.device) -> dict[str, float]:
    problem, batch, fresh_model = toy_setup(tasks, device)
    steps = {
        label: balancer_step(problem, fresh_model(), batch, make_balancer(name, params))
        for label, (name, params) in BALANCERS.items()
    }
    return median_seconds(steps, repeats, device)


def ratios_over_rounds(
    tasks: int, repeats: int, rounds: int, device: torch.device
) -> tuple[float, dict[str, list[float]]]:
    """Median equal-step seconds and, per balancer, its ratio to equal in every round.

    Ratios move by ±0.15× between rounds on a small shared machine (allocator and cache
    state), so one round's figure is not worth reporting alone.
    """
    equal, ratios = [], {name: [] for name in BALANCERS if name != "equal"}
    for _ in range(rounds):
        t = measure(tasks, repeats, device)
        equal.append(t["equal"])
        for name in ratios:
            ratios[name].append(t[name] / t["equal"])
    return statistics.median(equal), ratios


def ratio_cell(values: list[float]) -> str:
    if len(values) == 1:
        return f"{values[0]:.2f}×"
    return f"{statistics.median(values):.2f}× ({min(values):.2f}–{max(values):.2f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--steps", type=int, default=300, help="timed steps per balancer")
    parser.add_argument("--rounds", type=int, default=3, help="repeat and report the median")
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    rows = []
    for tasks in (2, 3, 10):
        equal, ratios = ratios_over_rounds(tasks, args.steps, args.rounds, device)
        rows.append([str(tasks), f"{equal * 1e3:.3f}"] + [ratio_cell(r) for r in ratios.values()])
    header = ["T", "equal ms"] + [f"{name} / equal" for name in BALANCERS if name != "equal"]
    table = markdown_table(header, rows)
    print(table)
    if args.no_write:
        return
    where, name = device_label(device)
    command = command_line("benchmarks.balancer_overhead")
    update_section(
        f"Adaptive balancers: step cost ({where})",
        f"Median step time on the toy model relative to an equal-weight step (batch 100, "
        f"{args.steps} interleaved steps per balancer, {args.threads} thread(s)), median "
        f"of {args.rounds} rounds with their range, torch {torch.__version__}.\n\n"
        f"Machine: {name}\n\nCommand: `{command}`\n\n{table}\n\n"
        "Uncertainty weighting adds a T-vector and its Adam step; DWA only bookkeeping of "
        "epoch means; RLW one random draw per step. GradNorm needs per-task gradients "
        "at the last shared layer; the example plug-in (examples/inverse_norm_balancer.py) "
        "every task's gradient over all the shared parameters before it chooses w "
        "(Need.TASK_GRADIENTS): T extra backward passes through the trunk a step.",
    )


if __name__ == "__main__":
    main()
