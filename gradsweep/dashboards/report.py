"""``gradsweep report``: the study's figures and comparison in one file that opens offline.

plotly.js is inlined once; the file makes no network request.
"""

from __future__ import annotations

import html
from pathlib import Path

import plotly.graph_objects as go
from plotly.offline import get_plotlyjs
from sqlalchemy import Engine

from gradsweep.compare import compare_study
from gradsweep.dashboards import figures
from gradsweep.objectives import study_trials
from gradsweep.storage import queries


def study_figures(engine: Engine, study: str) -> tuple[str, list[go.Figure]]:
    """The study's name and its figures, in page order."""
    info = queries.find_study(engine, study)
    trials = study_trials(engine, info)
    comparison = compare_study(engine, info.id)
    adaptive_keys = trials.loc[~trials["arm"].isin([*queries.STATIC_ARMS, "retrain"]), "key"]
    traces = queries.weight_traces(engine, info.id, trial_keys=adaptive_keys.tolist())
    best_keys = [*comparison.static_best.keys[:1], *adaptive_keys.tolist()[:2]]
    curves = queries.curves(engine, info.id, trial_keys=best_keys)
    names = list(info.task_names)
    return info.name, [
        figures.comparison_table_figure(comparison),
        figures.simplex_figure(trials, traces, names, comparison.static_best.weights),
        figures.weight_curves_figure(traces, names),
        figures.distance_figure(trials, comparison),
        figures.best_so_far_figure(comparison),
        figures.loss_curves_figure(curves),
    ]


def render_report(name: str, figs: list[go.Figure]) -> str:
    parts = [fig.to_html(full_html=False, include_plotlyjs=False) for fig in figs]
    title = html.escape(f"gradsweep report: {name}")
    return (
        "<!DOCTYPE html><html><head><meta charset='utf-8'>"
        f"<title>{title}</title><script type='text/javascript'>{get_plotlyjs()}</script>"
        "</head><body style='font-family: sans-serif'>"
        f"<h1>{title}</h1>"
        + "".join(f"<section>{part}</section>" for part in parts)
        + "</body></html>"
    )


def write_report(engine: Engine, study: str, out: Path) -> Path:
    """Write the report atomically (a reader never sees half a file)."""
    name, figs = study_figures(engine, study)
    text = render_report(name, figs)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(out)
    return out
