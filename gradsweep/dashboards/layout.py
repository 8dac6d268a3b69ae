"""Layout builders: the shell, the study list, a study page, and the pages for mistakes."""

from __future__ import annotations

from urllib.parse import quote

import pandas as pd
from dash import dcc, html

from gradsweep.dashboards.data import StudyPage
from gradsweep.dashboards.ids import Ids

REFRESH_MS = 3000
GRAPHS = (
    (Ids.TABLE, "table"),
    (Ids.SIMPLEX, "simplex"),
    (Ids.WEIGHTS, "weights"),
    (Ids.DISTANCE, "distance"),
    (Ids.BEST_SO_FAR, "best"),
)


HIDDEN = {"display": "none"}
SHOWN: dict[str, str] = {}


def shell() -> html.Div:
    """Every view is always in the page (shown or hidden), so callbacks never target a
    component that is not there."""
    return html.Div(
        [
            dcc.Location(id=Ids.URL),
            dcc.Interval(id=Ids.REFRESH, interval=REFRESH_MS),
            dcc.Store(id=Ids.SIGNATURE),
            html.Div(id=Ids.MESSAGE),
            html.Div(id=Ids.LIST_VIEW),
            study_view(),
        ],
        style={"fontFamily": "sans-serif", "margin": "1em 2em"},
    )


def study_list(studies: pd.DataFrame) -> html.Div:
    if studies.empty:
        return message_page("No studies yet", "Start one with `gradsweep launch SPEC.yaml`.")
    header = html.Tr(
        [html.Th(c) for c in ("study", "status", "trials done", "best objective", "created")]
    )
    rows = [
        html.Tr(
            [
                html.Td(dcc.Link(row.name, href=f"/study/{quote(str(row.name))}")),
                html.Td(row.status),
                html.Td(f"{row.completed}/{row.trials}"),
                html.Td("–" if pd.isna(row.best_objective) else f"{row.best_objective:.4f}"),
                html.Td(str(row.created_at)[:16]),
            ]
        )
        for row in studies.itertuples()
    ]
    return html.Div([html.H1("gradsweep studies"), html.Table([header, *rows], id=Ids.STUDY_LIST)])


def study_view() -> html.Div:
    """The study page's frame; the refresh callback fills its figures."""
    return html.Div(
        [
            dcc.Link("← all studies", href="/"),
            html.H1(id=Ids.STUDY_TITLE),
            html.P(id=Ids.STUDY_STATUS),
            *[dcc.Graph(id=graph_id) for graph_id, _ in GRAPHS],
            html.H2("loss curves"),
            dcc.Dropdown(id=Ids.TRIAL_PICKER, multi=True, placeholder="trials…"),
            dcc.RadioItems(
                id=Ids.LOSS_KIND,
                options={"test_loss": "test loss", "train_loss": "train loss"},
                value="test_loss",
                inline=True,
            ),
            dcc.Graph(id=Ids.LOSSES),
        ],
        id=Ids.STUDY_VIEW,
        style=HIDDEN,
    )


def status_line(page: StudyPage) -> str:
    text = f"{page.status} · {page.completed}/{page.trials} trials completed"
    return f"{text} · {page.message}" if page.message else text


def message_page(title: str, text: str) -> html.Div:
    return html.Div([html.H1(title), html.P(text), dcc.Link("← all studies", href="/")])
