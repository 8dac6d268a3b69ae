"""``gradsweep compare``'s tables: the comparison (results/comparison.py) as rich tables,
and the number formats the dashboard's comparison table shares."""

from __future__ import annotations

from typing import Any

from gradsweep.arms import Outcome
from gradsweep.objectives import LABELS
from gradsweep.results.comparison import Comparison, PairedDifference, best_so_far_label
from gradsweep.results.pareto import ParetoView
from gradsweep.results.selection import StaticBest
from gradsweep.results.verdicts import Verdict, Verdicts

MAX_FRONT_ROWS = 20
OUTCOME_STYLES = {
    Outcome.CONFIRMED: "bold green",
    Outcome.REFUTED: "bold red",
    Outcome.INCONCLUSIVE: "bold yellow",
}


def format_value(value: float | None, spread: float | None = None) -> str:
    """``mean ± std`` (the spread over seeds, where there is one); ``–`` for no value.
    The CLI's tables and the dashboard's comparison table show numbers this way."""
    if value is None:
        return "–"
    return f"{value:.4f}" if spread is None else f"{value:.4f} ± {spread:.4f}"


def format_paired(paired: PairedDifference | None) -> str:
    """``−0.0120 [−0.0310, +0.0070]; 2/3 seeds``: the mean per-seed difference (negative:
    the adaptive run is better), its 95% interval, and the seeds it won."""
    if paired is None:
        return "–"
    interval = "" if paired.low is None else f" [{paired.low:+.4f}, {paired.high:+.4f}]"
    return f"{paired.mean:+.4f}{interval}; {paired.wins}/{paired.seeds} seeds"


def format_weights(weights: list[float]) -> str:
    """``1.500, 0.500``: a weighting as the comparison tables show it."""
    return ", ".join(f"{w:.3f}" for w in weights)


def verdict_header(verdicts: Verdicts) -> str:
    return (
        f"verdicts: {len(verdicts.claims)} claims, each judged on 95 % intervals over seeds "
        f"(margin {verdicts.margin:g}) and recomputed over the budget, coarser grids and "
        "each seed left out"
    )


def verdict_text(verdict: Verdict) -> Any:
    """One claim's line, its outcome coloured."""
    from rich.text import Text

    return Text.assemble(
        f"{verdict.claim} {verdict.config} {verdict.title}: ",
        (str(verdict.outcome), OUTCOME_STYLES[verdict.outcome]),
        f" ({verdict.reason}){verdict.tail()}",
    )


def verdict_lines(comparison: Comparison) -> list[Any]:
    """What ``compare`` opens with: one line per claim and method, then the warnings."""
    from rich.text import Text

    verdicts = comparison.verdicts
    if verdicts is None:
        return []
    lines: list[Any] = [Text(verdict_header(verdicts), style="bold")]
    lines += [verdict_text(verdict) for verdict in verdicts.claims]
    lines += [Text(f"warning: {warning}", style="yellow") for warning in verdicts.warnings]
    return [*lines, Text("")]


def verdict_plain_lines(comparison: Comparison) -> list[str]:
    """``compare --format verdicts``: the same lines as plain text (docs/results.md holds
    them as this prints them)."""
    verdicts = comparison.verdicts
    if verdicts is None:
        return []
    return [
        verdict_header(verdicts),
        *verdicts.lines(),
        *(f"warning: {warning}" for warning in verdicts.warnings),
    ]


def comparison_tables(comparison: Comparison) -> list[Any]:
    """Rich renderables: the verdicts, the static optimum, the adaptive configurations,
    compute per arm."""
    from rich.table import Table

    split = comparison.selection_split
    head = Table(
        title=f"{comparison.study}: static optimum over {comparison.static_trials} "
        f"static trials ({LABELS.get(comparison.objective, comparison.objective)}, "
        f"lower is better; chosen on {split}, scored on test)"
    )
    for column in ("", "weights", f"{split} objective", "test objective", "95% CI", "trials"):
        head.add_column(column)
    rows = [("static optimum", comparison.static_best)]
    picked = comparison.distinct_test_pick()
    if picked is not None:
        rows.append(("chosen on test instead", picked))
    if comparison.equal_weights is not None:
        rows.append(("equal weights", comparison.equal_weights))
    for label, row in rows:
        head.add_row(label, *static_cells(row))
    if comparison.selection_optimism is not None and split != "test":
        head.caption = (
            f"selection optimism (choosing on test): {comparison.selection_optimism:+.4f}; "
            f"checkpoint: {comparison.selection.get('checkpoint', 'final')}"
        )
    body = Table(title="adaptive configurations against the static optimum")
    body.add_column("")
    for a in comparison.adaptive:
        body.add_column(a.config, justify="right")
    lines = {
        "seeds": [str(a.seeds) for a in comparison.adaptive],
        f"{split} objective (chooses)": [
            format_value(a.selection_objective) + (" ◀ best" if a.chosen_on_validation else "")
            for a in comparison.adaptive
        ],
        "time-averaged w (Σ = T)": [format_weights(a.weights_mean) for a in comparison.adaptive],
        "final w": [format_weights(a.weights_final) for a in comparison.adaptive],
        "test objective": [format_value(a.objective, a.objective_std) for a in comparison.adaptive],
        "gap to static optimum": [f"{a.gap_to_static_best:+.4f}" for a in comparison.adaptive],
        "L2 distance to it": [f"{a.distance_to_static_best:.3f}" for a in comparison.adaptive],
        "static trials beaten %": [f"{a.rank_percentile:.1f}" for a in comparison.adaptive],
        "vs equal weights, paired (95% CI; wins)": [
            format_paired(a.versus_equal) for a in comparison.adaptive
        ],
        "vs static optimum, paired (95% CI; wins)": [
            format_paired(a.versus_static_best) for a in comparison.adaptive
        ],
        "Spearman ρ (objective, distance)": [
            format_value(a.spearman_objective_vs_distance) for a in comparison.adaptive
        ],
        "training seconds (all seeds)": [f"{a.compute_seconds:.1f}" for a in comparison.adaptive],
        "retrained static (GradNorm Static)": [
            format_value(a.retrain_objective, a.retrain_objective_std) for a in comparison.adaptive
        ],
    }
    for label, values in lines.items():
        body.add_row(label, *values)
    tables: list[Any] = [head, body]
    if comparison.pareto is not None:
        tables.extend(pareto_tables(comparison.pareto, comparison.task_names))
    compute = Table(title="compute per arm (training seconds)")
    compute.add_column("arm")
    compute.add_column("seconds", justify="right")
    compute.add_column(best_so_far_label(comparison.selection_split), justify="right")
    for arm, seconds in comparison.compute.items():
        points = comparison.best_so_far.get(arm)
        compute.add_row(arm, f"{seconds:.1f}", format_value(points[-1][1]) if points else "–")
    return [*verdict_lines(comparison), *tables, compute, *comparison.notes]


def static_cells(row: StaticBest) -> list[str]:
    """A static weighting's cells: weights, selection and test objectives, interval, trials."""
    interval = "–" if row.low is None else f"[{row.low:.4f}, {row.high:.4f}]"
    return [
        format_weights(row.weights),
        format_value(row.selection_objective),
        format_value(row.objective, row.objective_std),
        interval,
        str(row.trials),
    ]


def pareto_tables(pareto: ParetoView, task_names: list[str]) -> list[Any]:
    """The adaptive configurations against the static front, and the front itself."""
    from rich.table import Table

    placed = Table(
        title=f"Pareto view: each task's {pareto.value_name}; static front of "
        f"{len(pareto.front)} of {pareto.static_points} static weightings"
    )
    for column in ("", *task_names, "on front", "dominated by", "ε"):
        placed.add_column(column, justify="left" if not column else "right")
    for config, p in pareto.adaptive.items():
        placed.add_row(
            config,
            *(f"{v:.4f}" for v in p.task_values),
            "yes" if p.on_front else "no",
            str(p.dominated_by),
            f"{p.epsilon:.4f}",
        )
    front = Table(title="static front (weights: per-task values)")
    front.add_column("weights")
    for name in task_names:
        front.add_column(name, justify="right")
    for point in pareto.front[:MAX_FRONT_ROWS]:
        front.add_row(format_weights(point.weights), *(f"{v:.4f}" for v in point.task_values))
    if len(pareto.front) > MAX_FRONT_ROWS:
        front.caption = f"{len(pareto.front) - MAX_FRONT_ROWS} more in --format json"
    return [placed, front]
