"""Median step time of every adaptive balancer relative to an equal-weight step (toy model).

The compute side of "which adaptive method lands nearest the static optimum, and at what
cost": the same model, batch and thread count for all, steps interleaved so drift in the
machine's speed hits all alike. One CPU thread unless --threads.

    python -m benchmarks.balancer_overhead [--device cpu|cuda] [--steps 300] [--no-write]
"""

from __future__ import annotations

import argparse
import shlex
import sys

import torch

from benchmarks._results import machine, markdown_table, update_section
from benchmarks.gradnorm_overhead import balancer_step, median_seconds
from gradsweep.trainers import ToyRegression, make_balancer
from gradsweep.trainers.problem import MultitaskModel

BALANCERS = {
    "equal": ("static", {}),
    "gradnorm": ("gradnorm", {"alpha": 0.12}),
    "uncertainty": ("uncertainty", {}),
    "dwa": ("dwa", {}),
    "rlw": ("rlw", {}),
}


def measure(tasks: int, repeats: int, device: torch.device) -> dict[str, float]:
    problem = ToyRegression(tasks=tasks, sigmas=None if tasks in (2, 10) else [1.0, 10.0, 100.0])
    batch = problem.train_data.batch(torch.arange(problem.batch_size), device)

    def fresh_model() -> MultitaskModel:
        torch.manual_seed(0)
        return problem.build_model().to(device)

    steps = {
        label: balancer_step(problem, fresh_model(), batch, make_balancer(name, params))
        for label, (name, params) in BALANCERS.items()
    }
    return median_seconds(steps, repeats, device)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--steps", type=int, default=300, help="timed steps per balancer")
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    rows = []
    for tasks in (2, 3, 10):
        t = measure(tasks, args.steps, device)
        rows.append(
            [str(tasks), f"{t['equal'] * 1e3:.3f}"]
            + [f"{t[name] / t['equal']:.2f}×" for name in BALANCERS if name != "equal"]
        )
    header = ["T", "equal ms"] + [f"{name} / equal" for name in BALANCERS if name != "equal"]
    table = markdown_table(header, rows)
    print(table)
    if args.no_write:
        return
    where = "GPU" if device.type == "cuda" else "CPU"
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else machine()
    command = "python -m benchmarks.balancer_overhead " + " ".join(
        shlex.quote(a) for a in sys.argv[1:]
    )
    update_section(
        f"Adaptive balancers: step cost ({where})",
        f"Median step time on the toy model relative to an equal-weight step (batch 100, "
        f"{args.steps} interleaved steps per balancer, {args.threads} thread(s)), "
        f"torch {torch.__version__}.\n\nMachine: {name}\n\nCommand: `{command}`\n\n{table}\n\n"
        "Uncertainty weighting adds a T-vector and its Adam step; DWA only bookkeeping of "
        "epoch means; RLW one random draw per step. GradNorm alone needs per-task gradients "
        "at the last shared layer.",
    )


if __name__ == "__main__":
    main()
