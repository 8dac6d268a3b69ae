"""Figure builders on hand-made frames: what each figure holds, not how it looks."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from gradsweep.dashboards import figures
from gradsweep.results.comparison import compare_trials


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
    ends = {t.name: (t.a[0], t.b[0], t.c[0]) for t in figure.data if t.meta == "converged"}
    assert ends["gradnorm/a=0.12/s0 E_t[w]"] == pytest.approx((1.4, 1.05, 0.55))
    assert ends["dwa/t=2/s0 E_t[w]"] == pytest.approx((1.45, 1.0, 0.55))
    lines = [t.name for t in figure.data if t.meta == "trajectory"]
    assert lines == ["dwa/t=2/s0", "gradnorm/a=0.12/s0"]


def test_resampled_weights_start_hidden_and_tasks_keep_their_colour() -> None:
    """RLW redraws its weights every step: its trace is noise and starts hidden (legend
    only), while its E_t[w] marker and every other trajectory stay shown."""
    trials = trial_frame(3)
    rlw = trace_frame(3, steps=10).assign(key="rlw/normal/s0", arm="rlw")
    traces = pd.concat([trace_frame(3, steps=10), rlw])
    simplex = figures.simplex_figure(trials, traces, names(3))
    shown = {t.name: t.visible for t in simplex.data if t.meta in ("trajectory", "converged")}
    assert shown == {
        "gradnorm/a=0.12/s0": True,
        "gradnorm/a=0.12/s0 E_t[w]": None,
        "rlw/normal/s0": "legendonly",
        "rlw/normal/s0 E_t[w]": None,
    }
    curves = figures.weight_curves_figure(traces, names(3))
    assert [(t.name, t.visible) for t in curves.data if t.visible == "legendonly"] == [
        (f"rlw/normal/s0 {task}", "legendonly") for task in names(3)
    ]
    colours = {(t.legendgroup, t.line.color) for t in curves.data}
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
    assert len(figure.data) == 3 and len(figure.data[0].x) <= figures.MAX_TRACE_POINTS
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


def test_a_few_extreme_trials_do_not_flatten_the_colours_or_the_axis() -> None:
    trials = trial_frame(3)
    static = trials["arm"] == "random"
    objectives = np.linspace(0.9, 1.1, int(static.sum()))
    objectives[:2] = [95.0, 100.0]  # two trials near a single-task edge
    trials.loc[static, "objective"] = objectives
    trials.loc[static, "selection_objective"] = objectives
    figure = figures.simplex_figure(trials, pd.DataFrame(columns=["key", "arm", "step"]), names(3))
    marker = figure.data[0].marker
    assert marker.cmax < 2.0 and marker.cmin >= 0.9  # the scale spans the bulk of the trials
    assert "clipped to the bulk of trials" in marker.colorbar.title.text
    comparison = compare_trials("s", "normalized_loss", names(3), trials)
    distance = figures.distance_figure(trials, comparison)
    assert distance.layout.yaxis.range[1] < 2.0
    assert "axis cut" in distance.layout.yaxis.title.text
    no_traces = pd.DataFrame(columns=["key", "arm", "step"])
    plain = figures.simplex_figure(trial_frame(3), no_traces, names(3)).data[0].marker
    assert plain.colorbar.title.text == "objective"  # nothing to clip: no note
