"""Pure figure builders: DataFrames and the Comparison in, Plotly figures out.

Shared by the Dash app and the HTML report; nothing here knows about Dash or the database.
Frames have the columns of ``gradsweep.storage.queries`` (trials, curves, weight traces).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from gradsweep.arms import STATIC_ARMS, TrialStatus
from gradsweep.compare import format_paired, format_value, format_weights
from gradsweep.results.comparison import Comparison
from gradsweep.results.pareto import ParetoView
from gradsweep.trainers.balancers.catalog import built_in

MAX_TRACE_POINTS = 400  # per trajectory: more is not visible, and costs the browser
CLIP_LOW, CLIP_HIGH = 0.05, 0.95  # the colour scale's quantiles
FENCE = 3.0  # … and its far fences, in interquartile ranges beyond the quartiles
OUTLIER_SPAN = 2.0  # clipped only when the whole range is over twice the clipped one
MAX_PARETO_POINTS = 3000  # static weightings drawn beside the front


def static_trials(trials: pd.DataFrame) -> pd.DataFrame:
    """Completed static-weight trials with an objective."""
    done = trials[(trials["status"] == TrialStatus.COMPLETED) & trials["objective"].notna()]
    return done[done["arm"].isin(STATIC_ARMS)]


def thin(frame: pd.DataFrame, limit: int = MAX_TRACE_POINTS) -> pd.DataFrame:
    """Every k-th row (always keeping the last) so a trace has at most ``limit`` points."""
    if len(frame) <= limit:
        return frame
    index = np.unique(np.r_[np.linspace(0, len(frame) - 1, limit).astype(int), len(frame) - 1])
    return frame.iloc[index]


def is_resampled(arm: str) -> bool:
    """Whether the arm's balancer redraws its weights at random every step (declared): its
    trace is noise around E_t[w] and would hide every other trajectory, so it starts hidden
    (its legend entry shows it)."""
    classes = built_in()
    return arm in classes and classes[arm].declaration.resampled


TASK_COLOURS = (
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
    "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf",
)  # fmt: skip


class Trajectory(NamedTuple):
    """One adaptive trial's thinned ``w(t)`` and where it converged."""

    key: str
    points: np.ndarray
    converged: np.ndarray
    resampled: bool


def _visibility(resampled: bool) -> bool | str:
    return "legendonly" if resampled else True


def _trajectory_groups(traces: pd.DataFrame, trials: pd.DataFrame) -> list[Trajectory]:
    """Per adaptive trial: its thinned trace and where it converged, ``E_t[w]``.

    ``E_t[w]`` is the trial's stored time average over every step (what ``compare``
    uses); the trace keeps every ``trace_every``-th step, so its mean is only the
    fallback for a trial that has not finished.
    """
    stored = dict(zip(trials["key"], trials["weights_mean"], strict=True))
    groups = []
    for key, trace in traces.groupby("key", sort=True):
        points = np.array(thin(trace.sort_values("step"))["weights"].tolist(), dtype=float)
        mean = stored.get(key)
        finished = isinstance(mean, list | tuple) and len(mean) == points.shape[1]
        converged = np.asarray(mean, dtype=float) if finished else points.mean(axis=0)
        resampled = is_resampled(str(trace["arm"].iloc[0]))
        groups.append(Trajectory(str(key), points, converged, resampled))
    return groups


def simplex_figure(
    trials: pd.DataFrame,
    traces: pd.DataFrame,
    task_names: Sequence[str],
    optimum: Sequence[float] | None = None,
    objective: str = "objective",
) -> go.Figure:
    """Static trials on the weight simplex coloured by objective, with adaptive trajectories
    ending at their converged points: ternary for 3 tasks, a line for 2, parallel
    coordinates beyond."""
    static = static_trials(trials)
    tasks = len(task_names)
    weights = np.array(static["static_weights"].tolist(), dtype=float).reshape(len(static), tasks)
    if tasks == 3:
        groups = _trajectory_groups(traces, trials)
        return _ternary(static, weights, groups, task_names, optimum, objective)
    if tasks == 2:
        groups = _trajectory_groups(traces, trials)
        return _segment(static, weights, groups, task_names, optimum, objective)
    return _parallel(static, weights, task_names, objective)


class ColourRange(NamedTuple):
    """The colour scale's ends: the 5th and 95th percentiles, pulled in further to the far
    fences (quartile ∓ 3 × interquartile range) when more than one trial in twenty is
    extreme, so that a few extreme trials (a task switched off) cannot turn every other
    trial the same colour. Data without such outliers keeps its whole range."""

    low: float
    high: float
    clipped: bool


def colour_range(values: pd.Series | np.ndarray) -> ColourRange:
    finite = np.asarray(values, dtype=float)
    finite = finite[np.isfinite(finite)]
    if len(finite) == 0:
        return ColourRange(0.0, 1.0, False)
    low, q1, q3, high = np.quantile(finite, [CLIP_LOW, 0.25, 0.75, CLIP_HIGH])
    spread = FENCE * (q3 - q1)
    low, high = max(low, q1 - spread), min(high, q3 + spread)
    full = float(finite.max() - finite.min())
    if high <= low or full <= OUTLIER_SPAN * (high - low):  # no outliers worth cutting off
        return ColourRange(float(finite.min()), float(finite.max()), False)
    return ColourRange(float(low), float(high), True)


def _marker(static: pd.DataFrame, objective: str, colorbar: bool = True) -> dict:
    scale = colour_range(static["objective"])
    title = f"{objective} (scale clipped to the bulk of trials)" if scale.clipped else objective
    return {
        "color": static["objective"],
        "colorscale": "Viridis_r",
        "cmin": scale.low,
        "cmax": scale.high,
        "showscale": colorbar,
        # below the plot: the legend of trajectories takes the right-hand side
        "colorbar": {
            "title": title,
            "orientation": "h",
            "y": -0.2,
            "yanchor": "top",
            "len": 0.6,
        },
        "size": 7,
    }


def _ternary(static, weights, trajectories, task_names, optimum, objective) -> go.Figure:  # type: ignore[no-untyped-def]
    figure = go.Figure()
    figure.add_trace(
        go.Scatterternary(
            a=weights[:, 0],
            b=weights[:, 1],
            c=weights[:, 2],
            mode="markers",
            marker=_marker(static, objective),
            text=static["key"],
            name="static trials",
            hovertemplate="%{text}<br>" + objective + " %{marker.color:.4f}<extra></extra>",
        )
    )
    for key, points, end, resampled in trajectories:
        figure.add_trace(
            go.Scatterternary(
                a=points[:, 0],
                b=points[:, 1],
                c=points[:, 2],
                mode="lines",
                name=key,
                line={"width": 2},
                meta="trajectory",
                visible=_visibility(resampled),
            )
        )
        figure.add_trace(
            go.Scatterternary(
                a=[end[0]],
                b=[end[1]],
                c=[end[2]],
                mode="markers",
                name=f"{key} E_t[w]",
                marker={"symbol": "x", "size": 12, "color": "red"},
                meta="converged",
            )
        )
    if optimum is not None:
        figure.add_trace(
            go.Scatterternary(
                a=[optimum[0]],
                b=[optimum[1]],
                c=[optimum[2]],
                mode="markers",
                name="static optimum",
                marker={
                    "symbol": "star",
                    "size": 16,
                    "color": "gold",
                    "line": {"width": 1, "color": "black"},
                },
            )
        )
    figure.update_layout(
        ternary={
            "sum": 3,
            "aaxis": {"title": task_names[0]},
            "baxis": {"title": task_names[1]},
            "caxis": {"title": task_names[2]},
        },
        title="static trials on the weight simplex, adaptive trajectories over them",
    )
    return figure


def _segment(static, weights, trajectories, task_names, optimum, objective) -> go.Figure:  # type: ignore[no-untyped-def]
    figure = go.Figure()
    figure.add_trace(
        go.Scatter(
            x=weights[:, 0],
            y=static["objective"],
            mode="markers",
            marker=_marker(static, objective),
            text=static["key"],
            name="static trials",
        )
    )
    scale = colour_range(static["objective"])
    top = scale.high if len(static) else 1.0
    for key, points, end, resampled in trajectories:
        figure.add_trace(
            go.Scatter(
                x=points[:, 0],
                y=np.linspace(top * 1.05, top * 1.05, len(points)),
                mode="lines",
                name=key,
                meta="trajectory",
                visible=_visibility(resampled),
            )
        )
        figure.add_vline(x=float(end[0]), line_dash="dash", line_color="red")
    if optimum is not None:
        figure.add_vline(x=float(optimum[0]), line_color="gold", line_width=3)
    figure.update_layout(
        xaxis_title=f"w({task_names[0]}); w({task_names[1]}) = 2 − that",
        yaxis_title=objective,
        yaxis_range=_axis_range(static["objective"]),
        title="static trials along the simplex",
    )
    return figure


def _axis_range(values: pd.Series) -> list[float] | None:
    """From the lowest value to a little above the colour scale's top: the outliers above
    leave the plot instead of squashing it (None: let Plotly choose)."""
    scale = colour_range(values)
    if not scale.clipped:
        return None
    finite = np.asarray(values, dtype=float)
    low = float(np.nanmin(finite))
    high = scale.high + 0.1 * (scale.high - low)
    return [low - 0.05 * (high - low), high]


def _parallel(static, weights, task_names, objective) -> go.Figure:  # type: ignore[no-untyped-def]
    dimensions = [{"label": name, "values": weights[:, i]} for i, name in enumerate(task_names)]
    dimensions.append({"label": objective, "values": static["objective"]})
    scale = colour_range(static["objective"])
    line = {
        "color": static["objective"],
        "colorscale": "Viridis_r",
        "cmin": scale.low,
        "cmax": scale.high,
        "showscale": True,
    }
    return go.Figure(go.Parcoords(line=line, dimensions=dimensions)).update_layout(
        title=f"static trials: weights and {objective}"
    )


def weight_curves_figure(traces: pd.DataFrame, task_names: Sequence[str]) -> go.Figure:
    """``w_i(t)`` of every adaptive trial, one colour per task; a trial's lines toggle
    together from the legend."""
    figure = go.Figure()
    for key, trace in traces.groupby("key", sort=True):
        resampled = is_resampled(str(trace["arm"].iloc[0]))
        trace = thin(trace.sort_values("step"))
        weights = np.array(trace["weights"].tolist(), dtype=float)
        for i, name in enumerate(task_names):
            figure.add_trace(
                go.Scatter(
                    x=trace["step"],
                    y=weights[:, i],
                    mode="lines",
                    name=f"{key} {name}",
                    legendgroup=str(key),
                    line={"color": TASK_COLOURS[i % len(TASK_COLOURS)]},
                    visible=_visibility(resampled),
                )
            )
    return figure.update_layout(
        title="task weights w_i(t)", xaxis_title="step", yaxis_title="weight"
    )


def loss_curves_figure(curves: pd.DataFrame, which: str = "test_loss") -> go.Figure:
    """Per-task train, validation or test loss of the given trials' curves (log scale)."""
    figure = go.Figure()
    for (key, task), rows in curves.groupby(["key", "task"], sort=True):
        figure.add_trace(
            go.Scatter(x=rows["step"], y=rows[which], mode="lines+markers", name=f"{key} {task}")
        )
    return figure.update_layout(
        title=which.replace("_", " ") + " per task", xaxis_title="step", yaxis_type="log"
    )


def distance_figure(
    trials: pd.DataFrame, comparison: Comparison, objective: str = "objective"
) -> go.Figure:
    """Objective of static trials against their distance to each adaptive configuration's
    converged weights, with Spearman's ρ (the paper's Fig. 4)."""
    static = static_trials(trials)
    weights = np.array(static["static_weights"].tolist(), dtype=float).reshape(len(static), -1)
    figure = go.Figure()
    for result in comparison.adaptive:
        distance = np.linalg.norm(weights - np.array(result.weights_mean), axis=1)
        rho = result.spearman_objective_vs_distance
        label = result.config
        label += f" (ρ = {rho:.3f})" if rho is not None else " (ρ: too few trials)"
        figure.add_trace(
            go.Scatter(
                x=distance, y=static["objective"], mode="markers", name=label, text=static["key"]
            )
        )
    clipped = _axis_range(static["objective"])
    note = " (axis cut above the bulk of trials)" if clipped else ""
    return figure.update_layout(
        title=f"{objective} vs distance to the converged weights",
        xaxis_title="L2 distance to E_t[w]",
        yaxis_title=objective + note,
        yaxis_range=clipped,
    )


def best_so_far_figure(comparison: Comparison, objective: str = "objective") -> go.Figure:
    """Best objective so far against cumulative training seconds, one line per arm."""
    figure = go.Figure()
    for arm, points in comparison.best_so_far.items():
        compute, best = zip(*points, strict=True) if points else ((), ())
        figure.add_trace(
            go.Scatter(
                x=list(compute), y=list(best), mode="lines+markers", line_shape="hv", name=arm
            )
        )
    return figure.update_layout(
        title=f"best {objective} so far vs compute",
        xaxis_title="cumulative training seconds",
        yaxis_title=f"best {objective}",
    )


def comparison_table_figure(comparison: Comparison) -> go.Figure:
    """The comparison's numbers as a table, formatted as ``gradsweep compare`` prints them
    (test objectives as ``mean ± std`` over seeds, paired per-seed differences with their
    95% interval): the static optimum (chosen on validation), the weighting choosing on
    test would have picked, equal weights when the study has them, then each adaptive
    configuration, its balancer's best on validation marked."""
    split = comparison.selection.get("split", "test")
    static = [("static optimum", comparison.static_best)]
    picked = comparison.distinct_test_pick()
    if picked is not None:
        static.append(("chosen on test instead", picked))
    if comparison.equal_weights is not None:
        static.append(("equal weights", comparison.equal_weights))
    rows = [
        [label, format_weights(s.weights), format_value(s.objective, s.objective_std)] + [""] * 8
        for label, s in static
    ]
    for a in comparison.adaptive:
        rows.append(
            [
                a.config,
                format_weights(a.weights_mean),
                format_value(a.objective, a.objective_std),
                f"{a.distance_to_static_best:.3f}",
                f"{a.rank_percentile:.1f}",
                ""
                if a.spearman_objective_vs_distance is None
                else f"{a.spearman_objective_vs_distance:.3f}",
                ""
                if a.retrain_objective is None
                else format_value(a.retrain_objective, a.retrain_objective_std),
                f"{a.compute_seconds:.1f}",
                format_paired(a.versus_equal),
                format_paired(a.versus_static_best),
                "◀ best" if a.chosen_on_validation else "",
            ]
        )
    header = [
        "",
        "weights (E_t[w])",
        "test objective (± std over seeds)",
        "distance",
        "static beaten %",
        "Spearman ρ",
        "GradNorm Static",
        "compute s",
        "vs equal weights, paired (95% CI; wins)",
        "vs static optimum, paired (95% CI; wins)",
        f"its balancer's best on {split}",
    ]
    return go.Figure(
        go.Table(
            header={"values": header},
            cells={"values": [list(column) for column in zip(*rows, strict=True)]},
        )
    )


def pareto_figure(
    pareto: ParetoView, static_values: np.ndarray, task_names: Sequence[str]
) -> go.Figure:
    """Each static weighting's per-task values with the front, and each adaptive
    configuration where it lands: a scatter for 2 tasks, the three pairwise projections
    for 3, a table beyond."""
    tasks = len(task_names)
    if tasks > 3 or tasks < 2:
        return _pareto_table(pareto, task_names)
    pairs = [(0, 1)] if tasks == 2 else [(0, 1), (0, 2), (1, 2)]
    figure = make_subplots(rows=1, cols=len(pairs), horizontal_spacing=0.08)
    if len(static_values) > MAX_PARETO_POINTS:  # an even sample: the front is drawn whole
        static_values = static_values[:: -(-len(static_values) // MAX_PARETO_POINTS)]
    front = np.array([p.task_values for p in pareto.front], dtype=float).reshape(-1, tasks)
    for column, (i, j) in enumerate(pairs, start=1):
        first = column == 1
        figure.add_trace(
            go.Scatter(
                x=static_values[:, i],
                y=static_values[:, j],
                mode="markers",
                marker={"size": 5, "color": "#b0b0b0"},
                name="static weightings",
                legendgroup="static",
                showlegend=first,
            ),
            row=1,
            col=column,
        )
        figure.add_trace(
            go.Scatter(
                x=front[:, i],
                y=front[:, j],
                mode="markers+lines" if tasks == 2 else "markers",
                line_shape="hv",
                marker={"size": 7, "color": "black"},
                name="static front",
                legendgroup="front",
                showlegend=first,
            ),
            row=1,
            col=column,
        )
        for index, (config, placed) in enumerate(pareto.adaptive.items()):
            figure.add_trace(
                go.Scatter(
                    x=[placed.task_values[i]],
                    y=[placed.task_values[j]],
                    mode="markers",
                    marker={
                        "symbol": "x" if placed.on_front else "circle-open",
                        "size": 13,
                        "color": TASK_COLOURS[(index + 3) % len(TASK_COLOURS)],
                        "line": {"width": 2},
                    },
                    name=f"{config} (dominated by {placed.dominated_by}, ε {placed.epsilon:.3g})",
                    legendgroup=config,
                    showlegend=first,
                ),
                row=1,
                col=column,
            )
        figure.update_xaxes(title_text=task_names[i], row=1, col=column)
        figure.update_yaxes(title_text=task_names[j], row=1, col=column)
    title = f"per-task {pareto.value_name}: static front and adaptive configurations"
    return figure.update_layout(title=title)


def _pareto_table(pareto: ParetoView, task_names: Sequence[str]) -> go.Figure:
    header = ["", *task_names, "on front", "dominated by", "ε"]
    rows = [
        [config, *(f"{v:.4f}" for v in p.task_values), str(p.on_front), str(p.dominated_by)]
        + [f"{p.epsilon:.4f}"]
        for config, p in pareto.adaptive.items()
    ]
    cells = [list(column) for column in zip(*rows, strict=True)] if rows else []
    title = (
        f"per-task {pareto.value_name}: {len(pareto.front)} of {pareto.static_points} "
        "static weightings on the front"
    )
    return go.Figure(go.Table(header={"values": header}, cells={"values": cells})).update_layout(
        title=title
    )
