"""``make demo``: GradNorm against equal weights on the paper's T=2 toy, side by side."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from gradsweep.single_run import SingleRun, run_single

STEPS = 2000


def main() -> None:
    console = Console()
    console.print(
        f"[bold]gradsweep demo[/bold]: the paper's Sec. 4 toy, T=2, σ=(1, 100), {STEPS} steps, "
        "same data and initialisation for both runs."
    )
    equal = run_single(SingleRun(balancer="static", steps=STEPS))
    gradnorm = run_single(SingleRun(balancer="gradnorm", alpha=0.12, steps=STEPS))
    table = Table(title="equal weights vs GradNorm (α = 0.12)")
    for column in (
        "balancer",
        "mean weights",
        "test loss task0 (σ=1)",
        "test loss task1 (σ=100)",
        "objective",
        "seconds",
    ):
        table.add_column(column, justify="right")
    for name, result in (("equal weights", equal), ("GradNorm", gradnorm)):
        table.add_row(
            name,
            ", ".join(f"{w:.3f}" for w in result.weights_mean),
            f"{result.test_losses[0]:.4g}",
            f"{result.test_losses[1]:.4g}",
            f"{result.objective:.4f}" if result.objective is not None else "failed",
            f"{result.train_seconds:.1f}",
        )
    console.print(table)
    console.print(
        "objective = mean over tasks of test L_i / L_i at initialisation (lower is better). "
        "Try `gradsweep train --help` for one trial of your own."
    )


if __name__ == "__main__":
    main()
