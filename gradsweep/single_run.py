"""One trial outside any study: what ``gradsweep train`` and ``make demo`` run."""

from __future__ import annotations

import inspect
import math
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from gradsweep.console import clip, is_clipped, output_console, print_table, visible
from gradsweep.errors import GradsweepError
from gradsweep.trainers import Budget, EpochRecord, TrainResult, make_balancer, make_problem, train
from gradsweep.trainers.balancers.catalog import built_in, resolve
from gradsweep.trainers.engine.balancer_check import check_balancer
from gradsweep.trainers.engine.dry_run import call_user, dry_run
from gradsweep.trainers.engine.loop import resolve_device
from gradsweep.trainers.engine.precision import parse_precision


@dataclass(frozen=True)
class SingleRun:
    """The arguments of ``gradsweep train``, checked together before any work starts."""

    problem: str = "toy"
    problem_params: dict[str, Any] = field(default_factory=dict)
    tasks: int = 2
    sigmas: list[float] | None = None
    balancer: str = "gradnorm"
    weights: list[float] | None = None
    alpha: float | None = None
    lr: float | None = None  # None: the balancer's own default
    initial_loss: str | None = None
    balancer_params: dict[str, Any] = field(default_factory=dict)
    steps: int = 2000
    seed: int = 0
    device: str | None = None
    precision: str = "fp32"

    def problem_arguments(self) -> dict[str, Any]:
        if self.problem != "toy":
            return dict(self.problem_params)
        return {"tasks": self.tasks, "sigmas": self.sigmas, **self.problem_params}

    def balancer_arguments(self) -> dict[str, Any]:
        """The balancer's constructor arguments: its declared ``train`` defaults, then the
        options given that it takes (``--weights`` and ``--alpha`` are refused by a
        balancer without them), then ``--balancer-param``."""
        cls = resolve(self.balancer)
        takes = _parameters(cls)
        own: dict[str, Any] = dict(cls.declaration.train_defaults)
        for option, name, value in (
            ("--weights", "weights", self.weights),
            ("--alpha", "alpha", self.alpha),
        ):
            if value is None:
                continue
            if name not in takes:
                those = " or ".join(n for n, c in built_in().items() if name in _parameters(c))
                raise GradsweepError(f"{option} only applies to --balancer {those}")
            own[name] = value
        told: list[tuple[str, Any]] = [("lr", self.lr), ("initial_loss", self.initial_loss)]
        for name, value in told:
            if value is not None and name in takes:
                own[name] = value
        return {**own, **self.balancer_params}


def _parameters(cls: type) -> set[str]:
    return set(inspect.signature(cls).parameters)


# torch's seed range (torch.manual_seed): a seed beyond it overflowed deep in torch, an
# internal error, where the user's mistake is one line
SEED_RANGE = (-(2**63), 2**64 - 1)
MAX_STEPS = 2**63 - 1  # a step count torch can size a tensor by


def check_numbers(run: SingleRun) -> None:
    """The numbers of a run that cannot train, refused in one line before anything is
    built: a seed or a step count beyond torch's integers, and a non-finite alpha, learning
    rate, weight or sigma (``--alpha inf`` trained, and printed ``Infinity`` into the
    JSON, which is not JSON)."""
    low, high = SEED_RANGE
    if not low <= run.seed <= high:
        raise GradsweepError("--seed: out of range: torch takes seeds from -2**63 to 2**64 - 1")
    if run.steps < 1:
        raise GradsweepError(f"--steps must be >= 1, got {run.steps}")
    if run.steps > MAX_STEPS:
        raise GradsweepError("--steps: too large: at most 2**63 - 1")
    for option, value in (("--alpha", run.alpha), ("--lr", run.lr)):
        if value is not None and not math.isfinite(value):
            raise GradsweepError(f"{option}: expected a finite number, got {value}")
    for option, values in (("--weights", run.weights), ("--sigmas", run.sigmas)):
        if values is not None and not all(math.isfinite(v) for v in values):
            raise GradsweepError(f"{option}: expected finite numbers, got {values}")


def run_single(run: SingleRun, progress: bool = True) -> TrainResult:
    """Build the problem and balancer, dry-run the problem, train, and return the result
    (with a progress bar). A user's problem that raises, in its factory or in any method
    the dry run calls, is one line (a ``GradsweepError``), not a traceback."""
    check_numbers(run)
    balancer = make_balancer(run.balancer, run.balancer_arguments())
    factory = run.problem.rpartition(":")[2]
    problem = call_user(
        run.problem, factory, lambda: make_problem(run.problem, run.problem_arguments())
    )
    if run.weights is not None and len(run.weights) != len(problem.tasks):
        raise GradsweepError(f"--weights: {len(run.weights)} given for {len(problem.tasks)} tasks")
    dry_run(problem)
    check_balancer(problem, balancer, run.balancer)  # a broken plug-in: one line, here
    budget = Budget(steps=run.steps)
    device = resolve_device(run.device)  # a mistake here is said before any progress bar
    precision = parse_precision(run.precision)
    console = Console(stderr=True)
    if not progress or not console.is_terminal:  # a bar in a log is noise
        return train(problem, balancer, budget, run.seed, None, device, precision)
    columns = (TextColumn("{task.description}"), BarColumn(), TextColumn("{task.fields[info]}"))
    with Progress(*columns, TimeRemainingColumn(), console=console, transient=True) as bar:
        task = bar.add_task(f"{run.balancer} on {problem.name}", total=run.steps, info="")

        def on_epoch(record: EpochRecord) -> None:
            bar.update(task, completed=record.step, info=f"objective {record.normalized_loss:.4f}")

        return train(problem, balancer, budget, run.seed, on_epoch, device, precision)


def summary(result: TrainResult) -> dict[str, Any]:
    """The JSON of ``gradsweep train --json`` (the documented keys, and a few more)."""
    return {
        "problem": result.problem.get("name"),
        "problem_params": result.problem,
        "tasks": result.tasks,
        "balancer": result.balancer.get("name"),
        "balancer_params": result.balancer,
        "steps": result.steps,
        "seed": result.seed,
        "status": result.status,
        "error": result.error,
        "device": result.device,
        "precision": result.precision,
        "weights_final": result.weights_final,
        "weights_mean": result.weights_mean,
        "initial_test_losses": result.initial_test_losses,
        "test_losses": result.test_losses,
        "test_metrics": result.test_metrics,
        "objective": result.normalized_loss,  # a single run's objective
        "train_seconds": result.train_seconds,
    }


def print_summary(result: TrainResult, console: Console | None = None) -> None:
    """A readable table of one trial's per-task outcome."""
    console = console or output_console()
    title = (
        f"{result.balancer.get('name')} on {result.problem.get('name')}: {result.status}, "
        f"{result.steps} steps, {result.train_seconds:.1f} s on {result.device}"
        + ("" if result.precision == "fp32" else f" ({result.precision})")
    )
    table = Table(title=title)
    for column in ("task", "mean weight", "final weight", "test loss", "initial test loss"):
        table.add_column(column, justify="right")
    # one cell of `name=value` pairs: tasks of one problem can have different metrics
    table.add_column("test metrics", justify="left")
    for i, task in enumerate(result.tasks):
        metrics = result.test_metrics[i] if i < len(result.test_metrics) else {}
        table.add_row(
            task,
            f"{result.weights_mean[i]:.4f}",
            f"{result.weights_final[i]:.4f}",
            f"{result.test_losses[i]:.5g}",
            f"{result.initial_test_losses[i]:.5g}",
            ", ".join(f"{name}={value:.5g}" for name, value in metrics.items()) or "–",
        )
    print_table(table, console)
    if result.error:
        reason = visible(result.error)
        whole = " (--json prints it whole)" if is_clipped(reason) else ""
        console.print(f"[red]failed:[/red] {escape(clip(reason))}{whole}", soft_wrap=True)
    else:
        console.print(
            "objective (mean test L_i / initial L_i, lower is better): "
            f"{result.normalized_loss:.5f}"
        )
