"""``gradsweep report``: the study's figures and comparison in one file that opens offline.

plotly.js is inlined once; the file makes no network request.
"""

from __future__ import annotations

import html
from pathlib import Path

import plotly.graph_objects as go
from plotly.offline import get_plotlyjs
from sqlalchemy import Engine

from gradsweep.dashboards.layout import GRAPHS
from gradsweep.dashboards.page import loss_curves, study_page
from gradsweep.errors import GradsweepError


def study_figures(engine: Engine, study: str) -> tuple[str, list[go.Figure]]:
    """The study's name and its figures: the dashboard's study page, in its order, with the
    loss curves of the trials the page shows first."""
    page = study_page(engine, study, lean=False)
    if page.comparison is None:
        raise GradsweepError(page.message or f"study {page.name!r} has nothing to compare yet")
    figs = [page.figures[name] for _, name in GRAPHS if name in page.figures]
    return page.name, [*figs, loss_curves(engine, page.name, page.default_keys, "test_loss")]


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
