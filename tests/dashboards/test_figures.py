"""Figure builders on hand-made frames: what each figure holds, not how it looks."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest

from gradsweep.compare import comparison_tables
from gradsweep.dashboards import figures
from gradsweep.results.comparison import compare_trials
from gradsweep.results.pareto import FrontPoint, ParetoView, Placement


def trial_frame(tasks: int) -> pd.DataFrame:
    rows = []
    rng = np.random.default_rng(0)
    for i, w in enumerate(rng.dirichlet(np.ones(tasks), size=12) * tasks):
        rows.append(
            {
                "key": f"random/i{i:03d}/s0",
                "seed": 0,
                "arm": "random",
                "balancer": "static",
                "status": "completed",
                "static_weights": list(w),
                "alpha": None,
                "objective": float(1 + np.linalg.norm(w - 1)),
                "weights_mean": list(w),
                "weights_final": list(w),
                "train_seconds": 1.0,
                "finished_at": pd.Timestamp("2026-01-01") + pd.Timedelta(seconds=i),
            }
        )
    rows.append({**rows[0], "key": "random/failed", "status": "failed", "objective": None})
    rows.append(
        {
            "key": "gradnorm/a=0.12/s0",
            "seed": 0,
            "arm": "gradnorm",
            "balancer": "gradnorm",
            "status": "completed",
            "static_weights": None,
            "alpha": 0.12,
            "objective": 0.9,
            "weights_mean": [1.0] * tasks,
            "weights_final": [1.0] * tasks,
            "train_seconds": 2.0,
            "finished_at": pd.Timestamp("2026-01-02"),
        }
    )
    frame = pd.DataFrame(rows)
    frame["selection_objective"] = frame["objective"]  # a study selected on test
    return frame


def trace_frame(tasks: int, steps: int = 1000) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "key": "gradnorm/a=0.12/s0",
            "arm": "gradnorm",
            "alpha": 0.12,
            "seed": 0,
            "step": range(steps),
            "weights": [[1.0] * tasks for _ in range(steps)],
        }
    )


def names(tasks: int) -> list[str]:
    return [f"task{i}" for i in range(tasks)]


def test_ternary_for_three_tasks() -> None:
    trials, traces = trial_frame(3), trace_frame(3)
    comparison = compare_trials("s", "normalized_loss", names(3), trials)
    figure = figures.simplex_figure(trials, traces, names(3), comparison.static_best.weights)
    kinds = [trace.type for trace in figure.data]
    assert kinds == ["scatterternary"] * 4
    static = figure.data[0]
    assert len(static.a) == 12  # one point per completed static trial, the failed one left out
    assert np.allclose(np.array(static.a) + static.b + static.c, 3)
    trajectory = next(t for t in figure.data if t.meta == "trajectory")
    assert len(trajectory.a) <= figures.MAX_TRACE_POINTS  # thinned from 1000 steps
    assert figure.data[-1].name == "static optimum"


def test_trajectories_end_at_the_stored_time_average() -> None:
    trials = trial_frame(3)
    traces = trace_frame(3, steps=10)
    traces["weights"] = [[1.0 + s / 10, 1.0, 1.0 - s / 10] for s in range(10)]
    # E_t[w] over every step, not the mean of the traced steps (1.45, 1, 0.55)
    trials.loc[trials["key"] == "gradnorm/a=0.12/s0", "weights_mean"] = pd.Series(
        [[1.4, 1.05, 0.55]], index=trials.index[trials["key"] == "gradnorm/a=0.12/s0"]
    )
    running = traces.assign(key="dwa/t=2/s0")  # not finished: no stored average yet
    trials = pd.concat(
        [
            trials,
            pd.DataFrame(
                [{"key": "dwa/t=2/s0", "arm": "dwa", "status": "running", "weights_mean": None}]
            ),
        ]
    )
    figure = figures.simplex_figure(trials, pd.concat([traces, running]), names(3))
    ends = {t.text[0]: (t.a[0], t.b[0], t.c[0]) for t in figure.data if t.meta == "converged"}
    assert ends["gradnorm/a=0.12/s0"] == pytest.approx((1.4, 1.05, 0.55))
    assert ends["dwa/t=2/s0"] == pytest.approx((1.45, 1.0, 0.55))
    lines = [t.name for t in figure.data if t.meta == "trajectory"]
    assert lines == ["dwa/t=2/s0", "gradnorm/a=0.12/s0"]


def test_resampled_weights_start_hidden_and_tasks_keep_their_colour() -> None:
    """RLW redraws its weights every step: its trace is noise and starts hidden (legend
    only), while its E_t[w] marker and every other trajectory stay shown."""
    trials = trial_frame(3)
    rlw = trace_frame(3, steps=10).assign(key="rlw/normal/s0", arm="rlw")
    traces = pd.concat([trace_frame(3, steps=10), rlw])
    simplex = figures.simplex_figure(trials, traces, names(3))
    lines = {t.name: t.visible for t in simplex.data if t.meta == "trajectory"}
    assert lines == {"gradnorm/a=0.12/s0": True, "rlw/normal/s0": "legendonly"}
    ends = {t.text[0]: t.visible for t in simplex.data if t.meta == "converged"}
    assert ends == {"gradnorm/a=0.12/s0": None, "rlw/normal/s0": None}
    curves = figures.weight_curves_figure(traces, names(3))
    assert [(t.name, t.visible) for t in curves.data if t.visible == "legendonly"] == [
        ("rlw/normal", "legendonly"),  # its legend entry
        *[(f"rlw/normal/s0 {task}", "legendonly") for task in names(3)],
    ]
    colours = {(t.legendgroup, t.line.color) for t in curves.data if t.meta != "legend"}
    assert len(colours) == 6 and len({colour for _, colour in colours}) == 3  # one per task
    two = figures.simplex_figure(
        trial_frame(2), pd.concat([trace_frame(2), rlw.assign(weights=[[1.0, 1.0]] * 10)]), names(2)
    )
    assert {t.name: t.visible for t in two.data if t.meta == "trajectory"} == {
        "gradnorm/a=0.12/s0": True,
        "rlw/normal/s0": "legendonly",
    }


def test_line_for_two_tasks_and_parallel_coordinates_beyond_three() -> None:
    two = figures.simplex_figure(trial_frame(2), trace_frame(2), names(2))
    assert two.data[0].type == "scatter" and len(two.data[0].x) == 12
    five = figures.simplex_figure(trial_frame(5), trace_frame(5), names(5))
    assert five.data[0].type == "parcoords"
    assert [d.label for d in five.data[0].dimensions] == [*names(5), "objective"]


def test_distance_figure_carries_spearman() -> None:
    trials = trial_frame(3)
    comparison = compare_trials("s", "normalized_loss", names(3), trials)
    figure = figures.distance_figure(trials, comparison)
    rho = comparison.adaptive[0].spearman_objective_vs_distance
    assert rho is not None and f"ρ = {rho:.3f}" in figure.data[0].name
    assert len(figure.data[0].x) == 12


def test_weight_and_loss_curves() -> None:
    figure = figures.weight_curves_figure(trace_frame(3), names(3))
    legend, *lines = figure.data
    assert legend.meta == "legend" and legend.name == "gradnorm/a=0.12"
    assert len(lines) == 3 and len(lines[0].x) <= figures.MAX_TRACE_POINTS
    curves = pd.DataFrame(
        {
            "key": "k",
            "task": ["a", "a", "b", "b"],
            "step": [0, 10, 0, 10],
            "test_loss": [1.0, 0.5, 2.0, 1.0],
            "train_loss": [None, 0.6, None, 1],
        }
    )
    losses = figures.loss_curves_figure(curves)
    assert [t.name for t in losses.data] == ["k a", "k b"]


def test_best_so_far_and_table() -> None:
    trials = trial_frame(3)
    comparison = compare_trials("s", "normalized_loss", names(3), trials)
    best = figures.best_so_far_figure(comparison)
    assert {t.name for t in best.data} == {"random", "gradnorm"}
    random_line = next(t for t in best.data if t.name == "random")
    assert list(random_line.y) == sorted(random_line.y, reverse=True)  # never gets worse
    # one trial's test score, in compare's words: never "best objective", never the optimum
    compute = comparison_tables(comparison)[-1 - len(comparison.notes)]
    assert best.layout.yaxis.title.text == compute.columns[2].header
    assert (
        compute.columns[2].header == f"best on {comparison.selection['split']} (its test objective)"
    )
    table = figures.comparison_table_figure(comparison)
    cells = table.data[0].cells.values
    assert cells[0][1] == comparison.adaptive[0].config == "gradnorm/a=0.12"
    assert cells[2][0] == f"{comparison.static_best.objective:.4f}"
    assert cells[2][1] == f"{comparison.adaptive[0].objective:.4f}"
    assert cells[7][1] == f"{comparison.adaptive[0].compute_seconds:.1f}"
    assert cells[9][1].endswith("1/1 seeds")  # paired against the static optimum, one seed


@pytest.mark.parametrize("limit", [1, 5, 400])
def test_thin_keeps_the_last_point(limit: int) -> None:
    frame = pd.DataFrame({"step": range(1000)})
    thinned = figures.thin(frame, limit)
    assert thinned["step"].iloc[-1] == 999 and len(thinned) <= limit + 1


def with_extremes(trials: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray]:
    """Two static trials near a single-task edge (a task switched off), the rest close."""
    static = (trials["arm"] == "random") & (trials["status"] == "completed")
    objectives = np.linspace(0.9, 1.1, int(static.sum()))
    objectives[:2] = [95.0, 100.0]
    trials = trials.copy()
    trials.loc[static, "objective"] = objectives
    trials.loc[static, "selection_objective"] = objectives
    return trials, objectives


NO_TRACES = pd.DataFrame(columns=["key", "arm", "step", "weights"])


def test_a_few_extreme_trials_do_not_flatten_the_axis() -> None:
    trials, _ = with_extremes(trial_frame(3))
    comparison = compare_trials("s", "normalized_loss", names(3), trials)
    distance = figures.distance_figure(trials, comparison)
    assert distance.layout.yaxis.range[1] < 2.0
    assert "axis cut" in distance.layout.yaxis.title.text
    two, _ = with_extremes(trial_frame(2))
    assert figures.simplex_figure(two, NO_TRACES, names(2)).layout.yaxis.range[1] < 2.0


@pytest.mark.parametrize("tasks", [2, 3, 5])
def test_the_simplex_is_coloured_by_rank_and_hovers_the_value(tasks: int) -> None:
    """Extreme objectives (a task switched off) set no colour scale: each weighting is
    coloured by its rank, so the twelve take twelve evenly spaced colours, the best 0."""
    trials, objectives = with_extremes(trial_frame(tasks))
    figure = figures.simplex_figure(trials, NO_TRACES, names(tasks), objective="Δm%")
    static = figure.data[0]
    if tasks == 5:  # parallel coordinates: the line's colour, the objective's real values
        colour, scale = np.array(static.line.color), static.line
        assert list(static.dimensions[-1].values) == pytest.approx(objectives)
    else:
        colour, scale = np.array(static.marker.color), static.marker
        assert list(static.customdata) == pytest.approx(objectives)  # what hover shows
        assert "%{customdata" in static.hovertemplate
    assert (scale.cmin, scale.cmax) == (0.0, 1.0)
    assert colour == pytest.approx(np.argsort(np.argsort(objectives)) / 11)
    assert colour[np.argmin(objectives)] == 0.0 and colour[np.argmax(objectives)] == 1.0
    assert np.diff(np.sort(colour)) == pytest.approx([1 / 11] * 11)  # interior ones differ
    assert scale.colorbar.title.text == "Δm% rank among static trials (0 = best, 1 = worst)"


def test_objective_rank_is_the_share_of_better_trials() -> None:
    assert list(figures.objective_rank([3.0, 1.0, 1.0, 2.0])) == [1.0, 0.0, 0.0, 2 / 3]
    assert list(figures.objective_rank([1.0, 2.0, 2.0])) == [0.0, 0.5, 0.5]
    assert list(figures.objective_rank([5.0])) == [0.0]
    assert len(figures.objective_rank([])) == 0


CONFIGS = ["dwa/t=2", "gradnorm/a=0.12", "gradnorm/a=1.5", "rlw/normal", "uncertainty/lr=0.025"]


def many_configurations(tasks: int, seeds: int = 2) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The static trials of ``trial_frame`` and five adaptive configurations on two seeds,
    each with its trace."""
    frame = trial_frame(tasks)
    template = frame.iloc[-1].to_dict()  # its GradNorm trial's columns
    runs, traces = [], []
    for n, config in enumerate(CONFIGS):
        balancer = config.split("/")[0]
        for seed in range(seeds):
            weights = [1.0 + (n - 2) / 10] + [1.0 - (n - 2) / 10 / (tasks - 1)] * (tasks - 1)
            key = f"{config}/s{seed}"
            runs.append(
                {
                    **template,
                    "key": key,
                    "seed": seed,
                    "arm": balancer,
                    "balancer": balancer,
                    "objective": 0.9 + n / 100 + seed / 1000,
                    "weights_mean": weights,
                    "weights_final": weights,
                }
            )
            trace = trace_frame(tasks, steps=20).assign(key=key, arm=balancer, seed=seed)
            trace["weights"] = [weights] * 20
            traces.append(trace)
    static = frame[frame["arm"] == "random"]
    trials = pd.concat([static, pd.DataFrame(runs)], ignore_index=True)
    trials["selection_objective"] = trials["objective"]
    return trials, pd.concat(traces, ignore_index=True)


def legend_entries(figure: go.Figure) -> list[str]:
    """The names the legend shows for adaptive configurations."""
    return [t.name for t in figure.data if t.showlegend is not False and t.legendgroup in CONFIGS]


@pytest.mark.parametrize("tasks", [2, 3])
def test_each_configuration_has_its_own_marker_and_its_lines_share_its_colour(
    tasks: int,
) -> None:
    trials, traces = many_configurations(tasks)
    figure = figures.simplex_figure(trials, traces, names(tasks))
    ends = [t for t in figure.data if t.meta == "converged"]
    style = {(t.legendgroup, t.marker.symbol, t.marker.color) for t in ends}
    assert len(ends) == 10 and len(style) == 5  # both seeds of a configuration alike
    assert len({(symbol, colour) for _, symbol, colour in style}) == 5
    assert len({symbol for _, symbol, _ in style}) == 5  # the symbol alone tells them apart
    colour = {group: c for group, _, c in style}
    for line in (t for t in figure.data if t.meta == "trajectory"):
        assert line.line.color == colour[line.legendgroup]
    assert {t.legendgroup for t in ends} == set(CONFIGS)


def test_one_style_per_configuration_across_the_page() -> None:
    trials, traces = many_configurations(3)
    styles = figures.config_styles(CONFIGS)
    comparison = compare_trials("s", "normalized_loss", names(3), trials)
    simplex = figures.simplex_figure(trials, traces, names(3), styles=styles)
    distance = figures.distance_figure(trials, comparison, styles=styles)
    for config, style in styles.items():
        end = next(t for t in simplex.data if t.meta == "converged" and t.legendgroup == config)
        dots = next(t for t in distance.data if t.legendgroup == config)
        assert (end.marker.symbol, end.marker.color) == (style.symbol, style.colour)
        assert (dots.marker.symbol, dots.marker.color) == (style.symbol, style.colour)
    assert len(set(figures.config_styles(f"c{i}" for i in range(90)).values())) == 90


def test_the_legend_has_one_entry_per_configuration() -> None:
    """Seeds and traces share their configuration's legend group; only its first trace
    has an entry, so the legend lists configurations, not seeds × tasks."""
    trials, traces = many_configurations(3)
    comparison = compare_trials("s", "normalized_loss", names(3), trials)
    placed = {c: Placement([1.0, 1.0, 1.0], i % 2 == 0, i, 0.1) for i, c in enumerate(CONFIGS)}
    pareto = ParetoView("test loss", [FrontPoint([1.0] * 3, [1.0] * 3)], placed, 12)
    built = {
        "simplex": figures.simplex_figure(trials, traces, names(3)),
        "weights": figures.weight_curves_figure(traces, names(3)),
        "distance": figures.distance_figure(trials, comparison),
        "pareto": figures.pareto_figure(pareto, np.ones((12, 3)), names(3)),
    }
    for name, figure in built.items():
        entries = legend_entries(figure)
        assert len(entries) == len(CONFIGS), (name, entries)
        grouped = [t for t in figure.data if t.legendgroup in CONFIGS]
        if name != "distance":  # one trace a configuration there
            assert len(grouped) > len(CONFIGS)  # seeds, tasks or panels share the entry
    assert sorted(legend_entries(built["simplex"])) == CONFIGS
    assert sorted(legend_entries(built["weights"])) == CONFIGS
    dominated = [t.marker.symbol for t in built["pareto"].data if t.legendgroup == CONFIGS[1]]
    assert all(symbol.endswith("-open") for symbol in dominated)  # off the front: open


def test_the_table_is_as_tall_as_its_rows() -> None:
    assert figures.wrapped_lines("0.1234", 100) == 1
    # 14 characters a line: "-0.2000", "[-0.8353,", "+0.4353]; 2/2", "seeds"
    assert figures.wrapped_lines("-0.2000 [-0.8353, +0.4353]; 2/2 seeds", 120) == 4
    assert figures.wrapped_lines("averylongwordwithoutspaces", 40) == 1  # never split
    row = ["x"] * 3
    one = figures.table_figure(["a", "b", "c"], [row], "t").layout.height
    ten = figures.table_figure(["a", "b", "c"], [row] * 10, "t").layout.height
    assert ten - one == 9 * figures.ROW_PX
    wrapped = figures.table_figure(["a", "b", "c"], [["word " * 60, "x", "x"]] * 10, "t")
    assert wrapped.layout.height > ten + 10 * figures.LINE_PX


def test_the_comparison_table_fits_eight_configurations() -> None:
    trials, _ = many_configurations(3)
    comparison = compare_trials("s", "normalized_loss", names(3), trials)
    table = figures.comparison_table_figure(comparison, "normalised loss")
    content = figures.table_content(table)
    assert [row[0] for row in content.rows][1:] == [a.config for a in comparison.adaptive]
    assert len(content.rows) == 1 + len(comparison.adaptive)  # no equal weights here
    least = figures.TABLE_MARGIN["t"] + figures.HEADER_PX + len(content.rows) * figures.ROW_PX
    assert table.layout.height >= least
    assert "normalised loss" in content.title


def test_figures_without_data_are_known() -> None:
    empty = trial_frame(3).iloc[0:0]
    assert not figures.has_data(figures.simplex_figure(empty, NO_TRACES, names(3)))
    assert not figures.has_data(figures.weight_curves_figure(NO_TRACES, names(3)))
    assert not figures.has_data(figures.simplex_figure(empty, NO_TRACES, names(5)))
    trials, traces = many_configurations(3)
    assert figures.has_data(figures.simplex_figure(empty, traces, names(3)))  # trajectories
    assert figures.has_data(figures.weight_curves_figure(traces, names(3)))
