"""Thin callbacks: read the URL and the clock, ask the data layer, return components."""

from __future__ import annotations

import logging
from urllib.parse import unquote

import plotly.graph_objects as go
from dash import Dash, Input, Output, State, ctx, no_update
from sqlalchemy import Engine

from gradsweep.dashboards import figures, layout
from gradsweep.dashboards.ids import Ids
from gradsweep.dashboards.page import loss_curves, study_page
from gradsweep.dashboards.verdicts import card
from gradsweep.errors import GradsweepError
from gradsweep.results import readers
from gradsweep.results.summary import study_list
from gradsweep.storage.errors import StorageError

log = logging.getLogger(__name__)
STUDY_PREFIX = "/study/"


def study_from_path(path: object) -> str | None:
    if isinstance(path, str) and path.startswith(STUDY_PREFIX) and len(path) > len(STUDY_PREFIX):
        return unquote(path[len(STUDY_PREFIX) :]).strip("/")
    return None


def render_page(engine: Engine, path: str | None) -> tuple:
    """(message, list view, list style, study style, study title) for a URL; mistakes get
    a message of their own, never an error response."""
    try:
        if path in (None, "", "/"):
            listing = layout.study_table(study_list(engine))
            return None, listing, layout.SHOWN, layout.TUCKED, ""
        study = study_from_path(path)
        if study is None:
            return _message("Page not found", f"There is no page at {path}.")
        name = readers.study_name(engine, study)
        return None, None, layout.HIDDEN, layout.SHOWN, name
    except (StorageError, GradsweepError) as exc:
        return _message("Not found", str(exc))
    except Exception:  # a page must never become a 500
        log.exception("rendering %s", path)
        return _message("Something went wrong", "See the dashboard's log.")


def _message(title: str, text: str) -> tuple:
    return layout.message_page(title, text), None, layout.HIDDEN, layout.TUCKED, ""


def refresh_study(engine: Engine, path: str | None, known: str | None) -> tuple:
    """New figures only when the study changed since the last refresh; the trial picker's
    choice is set only when a study page is first drawn (``known`` is None). A figure with
    nothing to draw is hidden (its line in the missing section says why), never empty axes.
    """
    empty = (no_update,) * (2 * len(layout.GRAPHS) + 9)
    study = study_from_path(path)
    if study is None:
        return empty
    try:
        current = readers.study_signature(engine, study)
        if current == known:
            return empty
        page = study_page(engine, study)
    except Exception as exc:
        log.warning("refreshing %s: %s", study, exc)
        return empty
    graphs = [page.figures.get(name, go.Figure()) for _, name in layout.GRAPHS]
    styles = [layout.SHOWN if name in page.figures else layout.TUCKED for _, name in layout.GRAPHS]
    chosen = page.default_keys if known is None else no_update
    table = page.figures.get("table")
    return (
        *graphs,
        *styles,
        layout.table_view(figures.table_content(table) if table else None),
        page.summary,
        card(page.verdicts) if page.verdicts is not None else None,
        current,
        page.trial_keys,
        chosen,
        layout.failures_section(page.failures),
        layout.missing_section(page.missing),
        layout.SHOWN if page.trial_keys else layout.TUCKED,
    )


def losses(engine: Engine, path: str | None, keys: list[str] | None, which: str) -> tuple:
    """The picked trials' loss curves, the graph hidden while there are none to draw."""
    study = study_from_path(path)
    if study is None:
        return no_update, no_update
    try:
        figure = loss_curves(engine, study, list(keys or []), which)
    except Exception as exc:
        log.warning("loss curves of %s: %s", study, exc)
        return no_update, no_update
    if figure is None:
        return go.Figure(), layout.TUCKED
    return figure, layout.SHOWN


def register_callbacks(app: Dash, engine: Engine) -> None:
    @app.callback(
        Output(Ids.MESSAGE, "children"),
        Output(Ids.LIST_VIEW, "children"),
        Output(Ids.LIST_VIEW, "style"),
        Output(Ids.STUDY_VIEW, "style"),
        Output(Ids.STUDY_TITLE, "children"),
        Input(Ids.URL, "pathname"),
    )
    def _page(path: str | None) -> tuple:
        return render_page(engine, path)

    @app.callback(
        *[Output(graph_id, "figure") for graph_id, _ in layout.GRAPHS],
        *[Output(graph_id, "style") for graph_id, _ in layout.GRAPHS],
        Output(Ids.TABLE, "children"),
        Output(Ids.STUDY_STATUS, "children"),
        Output(Ids.VERDICTS, "children"),
        Output(Ids.SIGNATURE, "data"),
        Output(Ids.TRIAL_PICKER, "options"),
        Output(Ids.TRIAL_PICKER, "value"),
        Output(Ids.FAILURES, "children"),
        Output(Ids.MISSING, "children"),
        Output(Ids.LOSS_SECTION, "style"),
        Input(Ids.REFRESH, "n_intervals"),
        Input(Ids.URL, "pathname"),
        State(Ids.SIGNATURE, "data"),
    )
    def _refresh(_ticks: int | None, path: str | None, known: str | None) -> tuple:
        # A new URL shows another study's (empty) graphs: fill them whatever was shown before.
        return refresh_study(engine, path, None if ctx.triggered_id == Ids.URL else known)

    @app.callback(
        Output(Ids.LOSSES, "figure"),
        Output(Ids.LOSSES, "style"),
        Input(Ids.TRIAL_PICKER, "value"),
        Input(Ids.LOSS_KIND, "value"),
        State(Ids.URL, "pathname"),
    )
    def _losses(keys: list[str] | None, which: str, path: str | None) -> tuple:
        return losses(engine, path, keys, which)
