"""Packed Gramian balancers: does a pack of K MGDA members beat K single MGDA runs?

Member-steps per second of one packed run of K MGDA members (``gramian.PackedGramian``:
T backward passes for the whole pack, then each member's Frank-Wolfe solver on its own
Gramian, one after the other) against one unpacked MGDA run, on the toy (T=3, batch 100,
evaluations every 200 steps on 2,000 test samples included), at each thread count. The runs
are interleaved round by round (one unpacked run, then each pack), so a load that comes and
goes on a shared machine hits both alike; the figures are the medians over the rounds, the
ratio the median of each round's own ratio; the best round's rates are given too (on a
shared machine another process's load hits some rounds, at 2 threads on 2 cores hard: the
best rates are the undisturbed ones). The members' solvers' share of the pack's time is
measured too: it is what packing cannot shorten.

    python -m benchmarks.packing_gramian [--members 4,8,16] [--threads 1,2] [--steps 300]
                                         [--rounds 3] [--device cpu|cuda] [--no-write]

Needs torch and torchjd alone, so it runs on a GPU machine with ``PYTHONPATH=.``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import torch

from benchmarks._results import command_line, machine, markdown_table, update_section
from gradsweep.trainers import Budget, ToyRegression, train
from gradsweep.trainers.balancers.gramian import PackedGramian
from gradsweep.trainers.balancers.mgda import Mgda
from gradsweep.trainers.packed.loop import train_packed


@contextmanager
def solver_clock() -> Iterator[list[float]]:
    """Seconds spent in ``PackedGramian.choose`` (the members' solvers) while inside."""
    spent = [0.0]
    choose = PackedGramian.choose

    def timed(self: PackedGramian, gramians: torch.Tensor) -> None:
        started = time.perf_counter()
        choose(self, gramians)
        spent[0] += time.perf_counter() - started

    PackedGramian.choose = timed  # type: ignore[method-assign]
    try:
        yield spent
    finally:
        PackedGramian.choose = choose  # type: ignore[method-assign]


def timed_run(run: Callable[[], object], device: str) -> float:
    if device == "cuda":
        torch.cuda.synchronize()
    started = time.perf_counter()
    run()
    if device == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - started


def one_round(
    problem: ToyRegression, members: list[int], steps: int, device: str
) -> tuple[float, dict[int, tuple[float, float]]]:
    """Member-steps/s of one unpacked run, and of each pack with its solvers' share."""
    budget = Budget(steps, trace_every=10)
    alone = steps / timed_run(lambda: train(problem, Mgda(), budget, seed=0, device=device), device)
    packs: dict[int, tuple[float, float]] = {}
    for count in members:
        with solver_clock() as spent:
            seconds = timed_run(
                lambda count=count: train_packed(  # type: ignore[misc]
                    problem, [Mgda() for _ in range(count)], budget, seed=0, device=device
                ),
                device,
            )
        packs[count] = (count * steps / seconds, spent[0] / seconds)
    return alone, packs


def thread_rows(
    problem: ToyRegression, members: list[int], steps: int, rounds: int, device: str
) -> tuple[list[list[str]], dict[int, float]]:
    one_round(problem, [2], 20, device)  # warm-up: first calls pay one-time initialisation
    results = [one_round(problem, members, steps, device) for _ in range(rounds)]
    alone = [rate for rate, _ in results]
    threads = str(torch.get_num_threads()) if device == "cpu" else "-"
    rates_text = f"{statistics.median(alone):,.0f} ({max(alone):,.0f})"
    rows = [[threads, "K single runs", rates_text, "1.00×", "1.00×", "-"]]
    ratios: dict[int, float] = {}
    for count in members:
        rates = [packs[count][0] for _, packs in results]
        each = sorted(packs[count][0] / rate for rate, packs in results)
        share = statistics.median(packs[count][1] for _, packs in results)
        ratios[count] = statistics.median(each)
        spread = f"{ratios[count]:.2f}× ({each[0]:.2f}–{each[-1]:.2f})"
        rows.append(
            [
                threads,
                f"pack of {count}",
                f"{statistics.median(rates):,.0f} ({max(rates):,.0f})",
                spread,
                f"{max(rates) / max(alone):.2f}×",
                f"{share:.0%}",
            ]
        )
        print(rows[-1], flush=True)
    return rows, ratios


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", default="4,8,16", help="K values, comma-separated")
    parser.add_argument("--threads", default="1,2", help="torch threads, comma-separated (CPU)")
    parser.add_argument("--steps", type=int, default=300, help="steps a run")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    members = [int(k) for k in args.members.split(",")]
    problem = ToyRegression(tasks=3, sigmas=[1.0, 10.0, 100.0])
    load_before = os.getloadavg()[0]
    rows: list[list[str]] = []
    threads = [int(n) for n in args.threads.split(",")] if args.device == "cpu" else [0]
    for count in threads:
        if count:
            torch.set_num_threads(count)
        rows += thread_rows(problem, members, args.steps, args.rounds, args.device)[0]
    load_after = os.getloadavg()[0]
    header = [
        "threads",
        "run",
        "member-steps/s (best)",
        "vs single runs (range)",
        "best vs best",
        "solvers' share",
    ]
    table = markdown_table(header, rows)
    print(table)
    if args.no_write:
        return
    name = torch.cuda.get_device_name() if args.device == "cuda" else machine()
    title = "Packed Gramian balancers (MGDA)"
    if args.device != "cpu":
        title += f" ({args.device})"
    update_section(
        title,
        f"Machine: {name}, torch {torch.__version__}\n\n"
        f"Command: `{command_line('benchmarks.packing_gramian')}`\n\n"
        f"Member-steps per second of one packed run of K MGDA members against one unpacked "
        f"MGDA run (K single runs go at its rate), on {args.device}: toy T=3 (σ = 1, 10, 100), "
        f"batch 100, {args.steps} steps a run, evaluations every 200 steps on 2,000 test "
        f"samples included; median of {args.rounds} interleaved rounds (best in brackets), "
        "the ratio the median of each round's own, with its range, and the best rates' "
        "ratio (what an undisturbed round gives, where others' work loads the machine). "
        "Solvers' share: the pack's time in the members' Frank-Wolfe "
        "solvers (one after the other on the host), which packing cannot shorten. "
        f"1-minute load average {load_before:.1f} before, {load_after:.1f} after.\n\n"
        f"{table}",
    )


if __name__ == "__main__":
    main()
