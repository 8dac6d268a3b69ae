"""Pure figure builders: DataFrames and the Comparison in, Plotly figures out.

Shared by the Dash app and the HTML report; nothing here knows about Dash or the database.
Frames have the columns of ``gradsweep.storage.queries`` (trials, curves, weight traces).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from gradsweep.arms import STATIC_ARMS, TrialStatus, config_of
from gradsweep.compare import format_paired, format_value, format_weights
from gradsweep.results.comparison import Comparison, best_so_far_label
from gradsweep.results.pareto import ParetoView
from gradsweep.trainers.balancers.catalog import built_in

MAX_TRACE_POINTS = 400  # per trajectory: more is not visible, and costs the browser
CLIP_LOW, CLIP_HIGH = 0.05, 0.95  # an objective axis's quantiles
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


def has_data(figure: go.Figure) -> bool:
    """Whether any trace of the figure has something to draw: a figure without is empty
    axes, which the page leaves out."""
    return any(_draws(trace) for trace in figure.data)


def _draws(trace: Any) -> bool:
    if trace.type == "table":
        return bool(trace.cells.values)
    if trace.type == "parcoords":
        return bool(trace.dimensions) and len(trace.dimensions[0].values) > 0
    values = trace.a if trace.type == "scatterternary" else trace.x
    return values is not None and any(v is not None for v in values)


TASK_COLOURS = (
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
    "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf",
)  # fmt: skip
# an adaptive configuration's colour, symbol and (in w_i(t), where colour is the task's)
# line style: 10 colours and 9 symbols give 90 configurations before a pair repeats
CONFIG_COLOURS = (
    "#e41a1c", "#377eb8", "#ff7f00", "#984ea3", "#a65628",
    "#f781bf", "#17becf", "#4daf4a", "#7f7f7f", "#bcbd22",
)  # fmt: skip
CONFIG_SYMBOLS = (
    "x", "diamond", "square", "triangle-up", "cross",
    "pentagon", "triangle-down", "hexagon", "bowtie",
)  # fmt: skip
CONFIG_DASHES = ("solid", "dash", "dot", "dashdot", "longdash", "longdashdot")
LEGEND_GREY = "#444444"  # w_i(t)'s legend: a configuration's line style, not a task's colour


class ConfigStyle(NamedTuple):
    """How one adaptive configuration is drawn in every figure of a page."""

    colour: str
    symbol: str
    dash: str

    def marker(self, size: int = 12) -> dict[str, Any]:
        return {
            "symbol": self.symbol,
            "size": size,
            "color": self.colour,
            "line": {"width": 1, "color": "black"},
        }


def config_styles(configs: Iterable[str], start: int = 0) -> dict[str, ConfigStyle]:
    """A style for each configuration, in sorted order: one mapping for a whole page, so a
    configuration looks the same in each figure."""
    return {
        config: ConfigStyle(
            CONFIG_COLOURS[i % len(CONFIG_COLOURS)],
            CONFIG_SYMBOLS[i % len(CONFIG_SYMBOLS)],
            CONFIG_DASHES[i % len(CONFIG_DASHES)],
        )
        for i, config in enumerate(sorted(set(configs)), start=start)
    }


def _with_styles(
    configs: Iterable[str], styles: Mapping[str, ConfigStyle] | None
) -> dict[str, ConfigStyle]:
    """The page's styles, with one for each configuration they do not know yet."""
    known = dict(styles or {})
    return {**known, **config_styles(set(configs) - set(known), start=len(known))}


class Trajectory(NamedTuple):
    """One adaptive trial's thinned ``w(t)`` and where it converged."""

    key: str
    points: np.ndarray
    converged: np.ndarray
    resampled: bool

    @property
    def config(self) -> str:
        return config_of(self.key)


# a configuration's entry is one line of the legend: symbols at one size, no gap between
# groups (each configuration is a legend group)
LEGEND = {"itemsizing": "constant", "tracegroupgap": 0}
FIGURE_PX, LEGEND_ROW_PX, LEGEND_ROOM_PX = 450, 20, 300


def legend_height(figure: go.Figure) -> int:
    """Plotly's height, or taller where the legend would not fit beside the plot (Plotly
    scrolls it, and entries at its foot go unseen)."""
    entries = sum(t.showlegend is not False for t in figure.data)
    return max(FIGURE_PX, LEGEND_ROOM_PX + LEGEND_ROW_PX * entries)


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
    styles: Mapping[str, ConfigStyle] | None = None,
) -> go.Figure:
    """Static trials on the weight simplex coloured by objective rank, with adaptive
    trajectories ending at their converged points: ternary for 3 tasks, a line for 2,
    parallel coordinates beyond."""
    static = static_trials(trials)
    tasks = len(task_names)
    weights = np.array(static["static_weights"].tolist(), dtype=float).reshape(len(static), tasks)
    if tasks not in (2, 3):
        return _parallel(static, weights, task_names, objective)
    groups = _trajectory_groups(traces, trials)
    styles = _with_styles((group.config for group in groups), styles)
    if tasks == 3:
        return _ternary(static, weights, groups, task_names, optimum, objective, styles)
    return _segment(static, weights, groups, task_names, optimum, objective, styles)


def objective_rank(values: pd.Series | np.ndarray) -> np.ndarray:
    """Each value's rank among them, 0 (best: lowest) … 1 (worst): the share of the others
    that are better (ties share the better rank).

    The simplex is coloured by this, not by the value: weightings that switch a task off
    have extreme objectives, and on a value scale they would turn every other weighting the
    same colour."""
    ranks = pd.Series(np.asarray(values, dtype=float)).rank(method="min").to_numpy()
    if len(ranks) < 2:
        return np.zeros(len(ranks))
    return (ranks - 1) / (len(ranks) - 1)


def rank_title(objective: str) -> str:
    return f"{objective} rank among static trials (0 = best, 1 = worst)"


def _marker(static: pd.DataFrame, objective: str, colorbar: bool = True) -> dict:
    return {
        "color": objective_rank(static["objective"]),
        "colorscale": "Viridis_r",
        "cmin": 0.0,
        "cmax": 1.0,
        "showscale": colorbar and len(static) > 0,
        # below the plot: the legend of configurations takes the right-hand side
        "colorbar": {
            "title": rank_title(objective),
            "orientation": "h",
            "y": -0.2,
            "yanchor": "top",
            "len": 0.6,
        },
        "size": 7,
    }


def _static_hover(objective: str) -> str:
    """The trial, its real objective (customdata) and its rank (the colour)."""
    return (
        "%{text}<br>" + objective + " %{customdata:.4f}<br>rank %{marker.color:.2f}<extra></extra>"
    )


def _adaptive_traces(
    trajectories: Sequence[Trajectory],
    styles: Mapping[str, ConfigStyle],
    make: Any,
    place: Any,
    hover: str,
) -> list[go.BaseTraceType]:
    """Each trial's trajectory and its ``E_t[w]``, drawn in its configuration's colour and
    symbol; one legend entry for each configuration (its first seed's end point), which
    shows or hides all its seeds together."""
    drawn: list[go.BaseTraceType] = []
    named: set[str] = set()
    for trajectory in trajectories:
        config, style = trajectory.config, styles[trajectory.config]
        drawn.append(
            make(
                **place(trajectory.points),
                mode="lines",
                name=trajectory.key,
                legendgroup=config,
                showlegend=False,
                line={"width": 2, "color": style.colour},
                meta="trajectory",
                visible=_visibility(trajectory.resampled),
            )
        )
        drawn.append(
            make(
                **place(trajectory.converged[None, :]),
                mode="lines+markers",  # a point, but a legend sample with the line's colour
                name=config,
                text=[trajectory.key],
                legendgroup=config,
                showlegend=config not in named,
                marker=style.marker(),
                line={"width": 2, "color": style.colour},
                hovertemplate=hover,
                meta="converged",
            )
        )
        named.add(config)
    return drawn


def _ternary(static, weights, trajectories, task_names, optimum, objective, styles) -> go.Figure:  # type: ignore[no-untyped-def]
    figure = go.Figure()
    if len(static):
        figure.add_trace(
            go.Scatterternary(
                a=weights[:, 0],
                b=weights[:, 1],
                c=weights[:, 2],
                mode="markers",
                marker=_marker(static, objective),
                text=static["key"],
                customdata=static["objective"],
                name="static trials",
                hovertemplate=_static_hover(objective),
            )
        )
    figure.add_traces(
        _adaptive_traces(
            trajectories,
            styles,
            go.Scatterternary,
            lambda p: {"a": p[:, 0], "b": p[:, 1], "c": p[:, 2]},
            "%{text} E_t[w]: %{a:.3f}, %{b:.3f}, %{c:.3f}<extra></extra>",
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
        legend=LEGEND,
        height=legend_height(figure),
    )
    return figure


def _segment(static, weights, trajectories, task_names, optimum, objective, styles) -> go.Figure:  # type: ignore[no-untyped-def]
    figure = go.Figure()
    if len(static):
        figure.add_trace(
            go.Scatter(
                x=weights[:, 0],
                y=static["objective"],
                mode="markers",
                marker=_marker(static, objective),
                text=static["key"],
                customdata=static["objective"],
                name="static trials",
                hovertemplate=_static_hover(objective),
            )
        )
    row = _row_above(static["objective"])  # the trajectories run along a line above
    figure.add_traces(
        _adaptive_traces(
            trajectories,
            styles,
            go.Scatter,
            lambda p: {"x": p[:, 0], "y": np.full(len(p), row)},
            "%{text} E_t[w]: %{x:.3f}<extra></extra>",
        )
    )
    for trajectory in trajectories:
        colour = styles[trajectory.config].colour
        figure.add_vline(x=float(trajectory.converged[0]), line_dash="dash", line_color=colour)
    if optimum is not None:
        figure.add_vline(x=float(optimum[0]), line_color="gold", line_width=3)
    figure.update_layout(
        legend=LEGEND,
        height=legend_height(figure),
        xaxis_title=f"w({task_names[0]}); w({task_names[1]}) = 2 − that",
        yaxis_title=objective,
        yaxis_range=_axis_range(static["objective"]),
        title="static trials along the simplex",
    )
    return figure


def _row_above(values: pd.Series) -> float:
    """A height just above the bulk of the objectives (1 without any)."""
    finite = np.asarray(values, dtype=float)
    finite = finite[np.isfinite(finite)]
    if len(finite) == 0:
        return 1.0
    low, high = float(finite.min()), bulk_range(finite).high
    return high + 0.05 * ((high - low) or 1.0)


class BulkRange(NamedTuple):
    """Where an objective axis ends: the 5th and 95th percentiles, pulled in further to
    the far fences (quartile ∓ 3 × interquartile range) when more than one trial in twenty
    is extreme, so that a few extreme trials (a task switched off) cannot squash every
    other trial onto one line. Data without such outliers keeps its whole range."""

    low: float
    high: float
    clipped: bool


def bulk_range(values: pd.Series | np.ndarray) -> BulkRange:
    finite = np.asarray(values, dtype=float)
    finite = finite[np.isfinite(finite)]
    if len(finite) == 0:
        return BulkRange(0.0, 1.0, False)
    low, q1, q3, high = np.quantile(finite, [CLIP_LOW, 0.25, 0.75, CLIP_HIGH])
    spread = FENCE * (q3 - q1)
    low, high = max(low, q1 - spread), min(high, q3 + spread)
    full = float(finite.max() - finite.min())
    if high <= low or full <= OUTLIER_SPAN * (high - low):  # no outliers worth cutting off
        return BulkRange(float(finite.min()), float(finite.max()), False)
    return BulkRange(float(low), float(high), True)


def _axis_range(values: pd.Series) -> list[float] | None:
    """From the lowest value to a little above the bulk's top: the outliers above leave
    the plot instead of squashing it (None: let Plotly choose)."""
    scale = bulk_range(values)
    if not scale.clipped:
        return None
    finite = np.asarray(values, dtype=float)
    low = float(np.nanmin(finite))
    high = scale.high + 0.1 * (scale.high - low)
    return [low - 0.05 * (high - low), high]


def _parallel(static, weights, task_names, objective) -> go.Figure:  # type: ignore[no-untyped-def]
    dimensions = [{"label": name, "values": weights[:, i]} for i, name in enumerate(task_names)]
    dimensions.append({"label": objective, "values": static["objective"]})
    line = {
        "color": objective_rank(static["objective"]),
        "colorscale": "Viridis_r",
        "cmin": 0.0,
        "cmax": 1.0,
        "showscale": True,
        "colorbar": {"title": rank_title(objective)},
    }
    return go.Figure(go.Parcoords(line=line, dimensions=dimensions)).update_layout(
        title=f"static trials: weights and {objective}"
    )


def weight_curves_figure(
    traces: pd.DataFrame,
    task_names: Sequence[str],
    styles: Mapping[str, ConfigStyle] | None = None,
) -> go.Figure:
    """``w_i(t)`` of every adaptive trial, one colour per task and one line style per
    configuration; a configuration's one legend entry toggles all its seeds' lines."""
    figure = go.Figure()
    groups = list(traces.groupby("key", sort=True))
    styles = _with_styles((config_of(str(key)) for key, _ in groups), styles)
    named: set[str] = set()
    for key, trace in groups:
        config = config_of(str(key))
        dash = styles[config].dash
        visible = _visibility(is_resampled(str(trace["arm"].iloc[0])))
        if config not in named:  # the entry: the configuration's line style, in grey
            named.add(config)
            figure.add_trace(
                go.Scatter(
                    x=[None],
                    y=[None],
                    mode="lines",
                    name=config,
                    legendgroup=config,
                    line={"color": LEGEND_GREY, "dash": dash},
                    visible=visible,
                    meta="legend",
                )
            )
        trace = thin(trace.sort_values("step"))
        weights = np.array(trace["weights"].tolist(), dtype=float)
        for i, name in enumerate(task_names):
            figure.add_trace(
                go.Scatter(
                    x=trace["step"],
                    y=weights[:, i],
                    mode="lines",
                    name=f"{key} {name}",
                    legendgroup=config,
                    showlegend=False,
                    line={"color": TASK_COLOURS[i % len(TASK_COLOURS)], "dash": dash},
                    visible=visible,
                )
            )
    key = ", ".join(
        f"<span style='color:{TASK_COLOURS[i % len(TASK_COLOURS)]}'>{name}</span>"
        for i, name in enumerate(task_names)
    )
    title = f"task weights w_i(t)<br><sup>colour: the task ({key}); line style: configuration</sup>"
    return figure.update_layout(
        title=title,
        xaxis_title="step",
        yaxis_title="weight",
        margin={"t": 80},
        legend={"tracegroupgap": 0},  # the line style as drawn: its dashes show
        height=legend_height(figure),
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
    trials: pd.DataFrame,
    comparison: Comparison,
    objective: str = "objective",
    styles: Mapping[str, ConfigStyle] | None = None,
) -> go.Figure:
    """Objective of static trials against their distance to each adaptive configuration's
    converged weights, with Spearman's ρ (the paper's Fig. 4)."""
    static = static_trials(trials)
    weights = np.array(static["static_weights"].tolist(), dtype=float).reshape(len(static), -1)
    styles = _with_styles((result.config for result in comparison.adaptive), styles)
    figure = go.Figure()
    for result in comparison.adaptive:
        distance = np.linalg.norm(weights - np.array(result.weights_mean), axis=1)
        rho = result.spearman_objective_vs_distance
        label = result.config
        label += f" (ρ = {rho:.3f})" if rho is not None else " (ρ: too few trials)"
        style = styles[result.config]
        figure.add_trace(
            go.Scatter(
                x=distance,
                y=static["objective"],
                mode="markers",
                name=label,
                text=static["key"],
                legendgroup=result.config,
                marker={"symbol": style.symbol, "color": style.colour, "size": 7},
            )
        )
    clipped = _axis_range(static["objective"])
    note = " (axis cut above the bulk of trials)" if clipped else ""
    return figure.update_layout(
        title=f"{objective} vs distance to the converged weights",
        xaxis_title="L2 distance to E_t[w]",
        yaxis_title=objective + note,
        yaxis_range=clipped,
        legend=LEGEND,
        height=legend_height(figure),
    )


def best_so_far_figure(comparison: Comparison, objective: str = "objective") -> go.Figure:
    """Per arm, the test objective of its trial best so far on the selection split, against
    cumulative training seconds (compare's compute table ends each line)."""
    figure = go.Figure()
    for arm, points in comparison.best_so_far.items():
        compute, best = zip(*points, strict=True) if points else ((), ())
        figure.add_trace(
            go.Scatter(
                x=list(compute), y=list(best), mode="lines+markers", line_shape="hv", name=arm
            )
        )
    split = comparison.selection_split
    return figure.update_layout(
        title=f"best on {split} so far vs compute",
        xaxis_title="cumulative training seconds",
        yaxis_title=best_so_far_label(split, objective),
    )


# Plotly draws a table in a figure of fixed height and scrolls what does not fit inside it,
# with a scrollbar that shows only on hover: the figure is made as tall as its rows. A row
# is 20 px, or 15 px a line plus 16 px when its text wraps (plotly.js wraps at spaces to the
# column's width): measured in Chromium at plotly.js's 12 px font.
TABLE_WIDTH = 1000  # px the rows are sized for: a wider table wraps less and ends lower
TABLE_MARGIN = {"l": 10, "r": 10, "t": 40, "b": 10}
CHAR_PX = 7.0  # a character at 12 px, a little over the widest fonts' digits (6.7)
LINE_PX, WRAP_PAD, ROW_PX, HEADER_PX, CELL_PAD = 15, 16, 20, 28, 8
TABLE_SLACK = 12  # px: rounding in plotly.js's layout


def wrapped_lines(text: str, width: float) -> int:
    """How many lines plotly.js breaks ``text`` into in a column ``width`` px wide (at
    most: each word on a line where it fits, a word wider than the column on its own)."""
    room = max(1, int((width - 2 * CELL_PAD) // CHAR_PX))
    lines, used = 1, 0
    for word in str(text).split(" "):
        if used and used + 1 + len(word) > room:
            lines, used = lines + 1, len(word)
        else:
            used += len(word) + (1 if used else 0)
    return lines


def table_height(
    header: Sequence[str], rows: Sequence[Sequence[str]], widths: Sequence[float]
) -> int:
    """The figure height that shows every row of a table whose columns have these relative
    widths, at ``TABLE_WIDTH`` px or wider."""
    scale = (TABLE_WIDTH - TABLE_MARGIN["l"] - TABLE_MARGIN["r"]) / sum(widths)
    pixels = [w * scale for w in widths]

    def height(cells: Sequence[str], least: int) -> int:
        lines = max(wrapped_lines(c, px) for c, px in zip(cells, pixels, strict=True))
        return least if lines == 1 else max(least, LINE_PX * lines + WRAP_PAD)

    body = sum(height(row, ROW_PX) for row in rows)
    return TABLE_MARGIN["t"] + height(header, HEADER_PX) + body + TABLE_MARGIN["b"] + TABLE_SLACK


def table_figure(
    header: Sequence[str],
    rows: Sequence[Sequence[str]],
    title: str,
    widths: Sequence[float] | None = None,
) -> go.Figure:
    """A table as tall as its rows: every row shows, none scrolls out of sight."""
    widths = list(widths or [1.0] * len(header))
    cells = [list(column) for column in zip(*rows, strict=True)] if rows else []
    table = go.Table(header={"values": list(header)}, cells={"values": cells}, columnwidth=widths)
    return go.Figure(table).update_layout(
        title=title, height=table_height(header, rows, widths), margin=TABLE_MARGIN
    )


class TableContent(NamedTuple):
    """A table figure's title, header and rows: what the page writes as an HTML table."""

    title: str
    header: list[str]
    rows: list[list[str]]


def table_content(figure: go.Figure) -> TableContent:
    """The title, header and rows of a figure made by ``table_figure``."""
    table = figure.data[0]
    columns = [list(column) for column in table.cells.values or ()]
    rows = [list(row) for row in zip(*columns, strict=True)] if columns else []
    return TableContent(figure.layout.title.text or "", list(table.header.values), rows)


COMPARISON_WIDTHS = (1.5, 1.4, 1.25, 0.7, 0.7, 0.75, 1.25, 0.7, 2.0, 2.0, 1.0)


def comparison_table_figure(comparison: Comparison, objective: str = "objective") -> go.Figure:
    """The comparison's numbers as a table, formatted as ``gradsweep compare`` prints them
    (test objectives as ``mean ± std`` over seeds, paired per-seed differences with their
    95% interval): the static optimum (chosen on validation), the weighting choosing on
    test would have picked, equal weights when the study has them, then each adaptive
    configuration, its balancer's best on validation marked."""
    split = comparison.selection_split
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
    title = f"static optimum vs each adaptive configuration: {objective} on test"
    return table_figure(header, rows, title, COMPARISON_WIDTHS)


def pareto_figure(
    pareto: ParetoView,
    static_values: np.ndarray,
    task_names: Sequence[str],
    styles: Mapping[str, ConfigStyle] | None = None,
) -> go.Figure:
    """Each static weighting's per-task values with the front, and each adaptive
    configuration where it lands (its symbol filled on the front, open when dominated): a
    scatter for 2 tasks, the three pairwise projections for 3, a table beyond."""
    tasks = len(task_names)
    if tasks > 3 or tasks < 2:
        return _pareto_table(pareto, task_names)
    styles = _with_styles(pareto.adaptive, styles)
    pairs = [(0, 1)] if tasks == 2 else [(0, 1), (0, 2), (1, 2)]
    figure = make_subplots(rows=1, cols=len(pairs), horizontal_spacing=0.08)
    if len(static_values) > MAX_PARETO_POINTS:  # an even sample: the front is drawn whole
        static_values = static_values[:: -(-len(static_values) // MAX_PARETO_POINTS)]
    static_values = np.asarray(static_values, dtype=float).reshape(-1, tasks)
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
        for config, placed in pareto.adaptive.items():
            style = styles[config]
            figure.add_trace(
                go.Scatter(
                    x=[placed.task_values[i]],
                    y=[placed.task_values[j]],
                    mode="markers",
                    marker={
                        "symbol": style.symbol if placed.on_front else f"{style.symbol}-open",
                        "size": 13,
                        "color": style.colour,
                        "line": {"width": 2, "color": style.colour},
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
    return figure.update_layout(title=title, legend=LEGEND, height=legend_height(figure))


def _pareto_table(pareto: ParetoView, task_names: Sequence[str]) -> go.Figure:
    header = ["", *task_names, "on front", "dominated by", "ε"]
    rows = [
        [config, *(f"{v:.4f}" for v in p.task_values), str(p.on_front), str(p.dominated_by)]
        + [f"{p.epsilon:.4f}"]
        for config, p in pareto.adaptive.items()
    ]
    title = (
        f"per-task {pareto.value_name}: {len(pareto.front)} of {pareto.static_points} "
        "static weightings on the front"
    )
    return table_figure(header, rows, title, [1.5] + [1.0] * (len(header) - 1))
