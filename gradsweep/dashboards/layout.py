"""Layout builders: the shell, the study list, a study page, and the pages for mistakes."""

from __future__ import annotations

from urllib.parse import quote

from dash import dcc, html

from gradsweep.dashboards.ids import Ids
from gradsweep.dashboards.page import StudyPage
from gradsweep.results.study import FailedTrial
from gradsweep.results.summary import StudySummary, optimum_text

REFRESH_MS = 3000
GRAPHS = (
    (Ids.TABLE, "table"),
    (Ids.PARETO, "pareto"),
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


def study_table(studies: list[StudySummary]) -> html.Div:
    """Every study with the figures ``gradsweep status`` shows (its own objective)."""
    if not studies:
        return message_page("No studies yet", "Start one with `gradsweep launch SPEC.yaml`.")
    columns = ("study", "status", "trials done", "objective", "static optimum", "created")
    header = html.Tr([html.Th(c) for c in columns])
    rows = [
        html.Tr(
            [
                html.Td(dcc.Link(row.name, href=f"/study/{quote(row.name)}")),
                html.Td(str(row.status)),
                html.Td(f"{row.counts['completed']}/{row.planned or '?'}"),
                html.Td(row.objective.label),
                html.Td(optimum_text(row.static_optimum, row.selected_on)),
                html.Td(str(row.created_at)[:16]),
            ]
        )
        for row in studies
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
                options={
                    "test_loss": "test loss",
                    "val_loss": "validation loss",
                    "train_loss": "train loss",
                },
                value="test_loss",
                inline=True,
            ),
            dcc.Graph(id=Ids.LOSSES),
            html.Div(id=Ids.FAILURES),
        ],
        id=Ids.STUDY_VIEW,
        style=HIDDEN,
    )


def status_line(page: StudyPage) -> str:
    text = (
        f"{page.status} · {page.completed}/{page.trials} trials completed · "
        f"objective: {page.objective_label}"
    )
    return f"{text} · {page.message}" if page.message else text


FAILURES_SHOWN = 100


def failures_section(failures: list[FailedTrial]) -> html.Div:
    """Each failed trial's reason, its traceback folded beneath it."""
    if not failures:
        return html.Div()
    items: list[html.Details | html.P] = [
        html.Details(
            [
                html.Summary(f"{failure.key}: {failure.error}"),
                html.Pre(failure.traceback or "no traceback: the trial failed without raising"),
            ]
        )
        for failure in failures[:FAILURES_SHOWN]
    ]
    more = len(failures) - FAILURES_SHOWN
    if more > 0:
        items.append(html.P(f"… and {more} more: gradsweep query trials --status failed"))
    return html.Div([html.H2(f"failed trials ({len(failures)})"), *items])


def message_page(title: str, text: str) -> html.Div:
    return html.Div([html.H1(title), html.P(text), dcc.Link("← all studies", href="/")])
