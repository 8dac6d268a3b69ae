"""Layout builders: the shell, the study list, a study page, and the pages for mistakes."""

from __future__ import annotations

from urllib.parse import quote

from dash import dcc, html

from gradsweep.dashboards.figures import TableContent
from gradsweep.dashboards.ids import Ids
from gradsweep.results.study import FailedTrial
from gradsweep.results.summary import StudySummary, optimum_text

REFRESH_MS = 3000
GRAPHS = (  # the comparison table comes first, as an HTML table (every row in sight)
    (Ids.BUDGET, "budget"),
    (Ids.PARETO, "pareto"),
    (Ids.SIMPLEX, "simplex"),
    (Ids.WEIGHTS, "weights"),
    (Ids.DISTANCE, "distance"),
    (Ids.BEST_SO_FAR, "best"),
)


HIDDEN = {"display": "none"}
SHOWN: dict[str, str] = {}
# what holds a figure with nothing to draw (or the study view while another shows): out of
# sight and of the page's flow, but laid out, so that Plotly measures its text right when
# it draws there (it cannot in a display: none block: legends come out cut short)
TUCKED = {"visibility": "hidden", "height": "0px", "overflow": "hidden"}
BREAK = {"overflowWrap": "anywhere"}  # a long name or key breaks rather than widen the page
WRAPPED = {"whiteSpace": "pre-wrap", **BREAK}  # … and so do a traceback's lines


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
    columns = ("study", "status", "completed", "objective", "static optimum", "created")
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
    """The study page's frame; the refresh callback fills its figures. Under the title and
    its summary line come the verdict card, the failures, then a line for each figure not
    drawn, then the figures: each hidden until it has something to draw."""
    return html.Div(
        [
            dcc.Link("← all studies", href="/"),
            html.H1(id=Ids.STUDY_TITLE, style=BREAK),
            html.P(id=Ids.STUDY_STATUS, style=BREAK),
            html.Div(id=Ids.VERDICTS, style=BREAK),
            html.Div(id=Ids.FAILURES, style=BREAK),
            html.Div(id=Ids.MISSING, style=BREAK),
            html.Div(id=Ids.TABLE),
            *[dcc.Graph(id=graph_id, style=TUCKED) for graph_id, _ in GRAPHS],
            html.Div(
                [
                    html.H2("loss curves"),
                    dcc.Dropdown(
                        id=Ids.TRIAL_PICKER,
                        multi=True,
                        placeholder="pick trials to see their loss curves…",
                    ),
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
                    dcc.Graph(id=Ids.LOSSES, style=TUCKED),
                ],
                id=Ids.LOSS_SECTION,
                style=TUCKED,
            ),
        ],
        id=Ids.STUDY_VIEW,
        style=TUCKED,
    )


FAILURES_FIRST = 10  # shown open; the rest folded under one line
FAILURES_SHOWN = 100


def failures_section(failures: list[FailedTrial]) -> html.Div:
    """Each failed trial's key and reason, its traceback folded beneath it: the first ten
    open, the rest folded under one line."""
    if not failures:
        return html.Div()
    items: list[html.Details | html.P] = [_failure(f) for f in failures[:FAILURES_FIRST]]
    folded: list[html.Details | html.P] = [
        _failure(f) for f in failures[FAILURES_FIRST:FAILURES_SHOWN]
    ]
    more = len(failures) - FAILURES_SHOWN
    if more > 0:
        folded.append(html.P(f"… and {more} more: gradsweep query trials --status failed"))
    if folded:
        rest = len(failures) - FAILURES_FIRST
        items.append(html.Details([html.Summary(f"{rest} more failed trials"), *folded]))
    return html.Div([html.H2(f"failed trials ({len(failures)})"), *items])


def _failure(failure: FailedTrial) -> html.Details:
    return html.Details(
        [
            html.Summary(f"{failure.key}: {failure.error}"),
            html.Pre(
                failure.traceback or "no traceback: the trial failed without raising",
                style=WRAPPED,
            ),
        ]
    )


TABLE_STYLE = {"borderCollapse": "collapse", "fontSize": "13px", "width": "100%"}
HEAD_STYLE = {"background": "#c8d4e3", "padding": "4px 6px", "verticalAlign": "bottom"}
CELL_STYLE = {"padding": "3px 6px", "textAlign": "center", "borderTop": "1px solid #dde3ec"}
LABEL_STYLE = {**CELL_STYLE, "textAlign": "left", "whiteSpace": "nowrap"}
STRIPE = "#f2f5fa"


def table_view(content: TableContent | None) -> html.Div:
    """A table figure's rows as an HTML table: the browser lays it out, so every row shows
    at any width (Plotly's table scrolls what does not fit its fixed height)."""
    if content is None:
        return html.Div()
    head = html.Thead(html.Tr([html.Th(h, style=HEAD_STYLE) for h in content.header]))
    body = html.Tbody(
        [
            html.Tr(
                [
                    html.Td(c, style=LABEL_STYLE if j == 0 else CELL_STYLE)
                    for j, c in enumerate(row)
                ],
                style={"background": STRIPE} if i % 2 else {},
            )
            for i, row in enumerate(content.rows)
        ]
    )
    return html.Div(
        [html.H3(content.title), html.Table([head, body], style=TABLE_STYLE)],
        style={"margin": "1em 0"},
    )


def missing_section(lines: list[str]) -> html.Div:
    """A line for each figure left out, in place of empty axes."""
    return html.Div([html.P(line, className="missing") for line in lines])


def message_page(title: str, text: str) -> html.Div:
    return html.Div([html.H1(title), html.P(text), dcc.Link("← all studies", href="/")])
