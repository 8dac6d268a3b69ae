"""The paper's Sec. 4 toy: GradNorm (α = 0.12) against equal weights, T = 2 and T = 10.

python -m benchmarks.toy_paper [--steps 4000] [--seeds 0,1,2] [--no-write]
"""

from __future__ import annotations

import argparse
import statistics

import torch

from benchmarks._results import command_line, machine, markdown_table, update_section
from gradsweep.trainers import Budget, GradNorm, StaticBalancer, ToyRegression, train


def mean_std(values: list[float]) -> str:
    spread = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.4f} ± {spread:.4f}"


def run(tasks: int, steps: int, seeds: list[int]) -> list[str]:
    problem = ToyRegression(tasks=tasks)
    equal, gradnorm, weights = [], [], []
    for seed in seeds:
        equal_result = train(problem, StaticBalancer(), Budget(steps), seed=seed)
        gradnorm_result = train(problem, GradNorm(alpha=0.12), Budget(steps), seed=seed)
        equal.append(equal_result.normalized_loss or float("nan"))
        gradnorm.append(gradnorm_result.normalized_loss or float("nan"))
        weights.append(gradnorm_result.weights_mean)
        print(
            f"T={tasks} seed={seed}: equal {equal[-1]:.4f}, GradNorm {gradnorm[-1]:.4f}", flush=True
        )
    mean_weights = [statistics.mean(column) for column in zip(*weights, strict=True)]
    wins = sum(g < e for g, e in zip(gradnorm, equal, strict=True))
    return [
        str(tasks),
        ", ".join(f"{s:g}" for s in problem.sigmas),
        mean_std(equal),
        mean_std(gradnorm),
        f"{wins}/{len(seeds)}",
        ", ".join(f"{w:.3f}" for w in mean_weights),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=4000)
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)
    seeds = [int(s) for s in args.seeds.split(",")]
    rows = [run(tasks, args.steps, seeds) for tasks in (2, 10)]
    header = [
        "T",
        "σ",
        "equal weights objective",
        "GradNorm objective",
        "GradNorm better",
        "GradNorm mean weights E_t[w]",
    ]
    table = markdown_table(header, rows)
    print(table)
    if args.no_write:
        return
    command = command_line("benchmarks.toy_paper")
    update_section(
        "Paper toy (Sec. 4): GradNorm vs equal weights",
        f"Objective = mean over tasks of test L_i / test L_i at initialisation (lower is "
        f"better), mean ± std over seeds {args.seeds}; {args.steps} steps, batch 100, Adam "
        f"lr 1e-3, 20,000 training / 2,000 test samples, data seed 0, α = 0.12, w lr 0.025.\n\n"
        f"Machine: {machine()}\n\nCommand: `{command}`\n\n{table}",
    )


if __name__ == "__main__":
    main()
