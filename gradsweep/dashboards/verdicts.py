"""The verdict card (first on the study page and the report) and the "verdict over the
training budget" figure, both drawn from ``Comparison.verdicts`` (results/verdicts.py), so
they say what ``gradsweep compare`` says."""

from __future__ import annotations

import html as html_text

import plotly.graph_objects as go
from dash import html
from plotly.colors import qualitative
from plotly.subplots import make_subplots

from gradsweep.arms import Claim, Outcome
from gradsweep.results.verdicts import Verdict, Verdicts

COLOURS = {
    Outcome.CONFIRMED: "#1a7f37",
    Outcome.REFUTED: "#cf222e",
    Outcome.INCONCLUSIVE: "#9a6700",
}
# the claims whose figure is a paired difference with an interval, drawn over the budget
BUDGET_CLAIMS = (Claim.BEATS_EQUAL, Claim.MATCHES_OPTIMUM)
CARD_TITLE = "Verdicts"
SHORT = {
    Claim.BEATS_EQUAL: "beats equal weights",
    Claim.MATCHES_OPTIMUM: "matches the static optimum",
    Claim.BEATS_STATIC: "beats every static weighting",
    Claim.NEARER_IS_BETTER: "nearer is better (Fig. 4)",
    Claim.STATIC_AT_ITS_WEIGHTS: "GradNorm Static ≈ GradNorm",
    Claim.CHEAPER: "cheaper than the search",
}
LINES = qualitative.D3  # one colour per configuration, the same in both panels


def card_header(verdicts: Verdicts) -> str:
    return (
        f"each claim judged on 95 % intervals over seeds (margin {verdicts.margin:g}), "
        "recomputed at every evaluation step, on coarser grids and with each seed left out"
    )


def matrix(verdicts: Verdicts) -> tuple[list[str], list[tuple[str, list[Verdict | None]]]]:
    """The claims judged (columns) and, per configuration, its verdict on each (None: the
    claim does not apply, as C5 for a method without a retrain arm)."""
    claims = [c for c in Claim if any(v.claim is c for v in verdicts.claims)]
    configs = list(dict.fromkeys(v.config for v in verdicts.claims))
    found = {(v.config, v.claim): v for v in verdicts.claims}
    rows = [(config, [found.get((config, c)) for c in claims]) for config in configs]
    return [f"{c} {SHORT[c]}" for c in claims], rows


def robust_word(verdict: Verdict) -> str:
    robustness = verdict.robustness
    if robustness is None or robustness.describe() == "robustness not checked":
        return ""
    return "robust" if robustness.robust else "not robust"


GRID = {
    "display": "grid",
    "gap": "2px 12px",
    "fontSize": "14px",
    "margin": "0.5em 0",
    "alignItems": "baseline",
}


def card(verdicts: Verdicts) -> html.Div:
    """The dashboard's verdict card: a matrix of configurations × claims, each cell its
    outcome (coloured) and whether it is robust, the full line on hover and under it
    (folded), then the warnings."""
    header, rows = matrix(verdicts)
    cells: list[html.Div] = [html.Div("configuration", style={"fontWeight": "bold"})]
    cells += [html.Div(h, style={"fontWeight": "bold"}) for h in header]
    for config, found in rows:
        cells.append(html.Div(config, className="verdict-config"))
        for verdict in found:
            if verdict is None:
                cells.append(html.Div("–"))
                continue
            colour = {"color": COLOURS[verdict.outcome], "fontWeight": "bold"}
            cells.append(
                html.Div(
                    [html.Span(str(verdict.outcome), style=colour), f" {robust_word(verdict)}"],
                    title=verdict.line(),
                    className=f"verdict {verdict.outcome}",
                )
            )
    grid = {**GRID, "gridTemplateColumns": f"max-content repeat({len(header)}, auto)"}
    lines = html.Details(
        [
            html.Summary("why: each verdict's figures and robustness"),
            html.Ul([html.Li(v.line()) for v in verdicts.claims], style={"fontSize": "13px"}),
        ]
    )
    warnings = [
        html.P(f"warning: {w}", className="verdict-warning", style={"color": "#9a6700"})
        for w in verdicts.warnings
    ]
    return html.Div(
        [
            html.H2(CARD_TITLE),
            html.P(card_header(verdicts), style={"color": "#555"}),
            *warnings,
            html.Div(cells, className="verdict-matrix", style=grid),
            lines,
        ],
        className="verdict-card",
        style={"border": "1px solid #d0d7de", "padding": "0.5em 1em", "margin": "1em 0"},
    )


def card_html(verdicts: Verdicts) -> str:
    """The report's verdict card: the same matrix, lines and warnings as plain HTML."""
    header, rows = matrix(verdicts)
    cells = "<div><b>configuration</b></div>" + "".join(
        f"<div><b>{html_text.escape(h)}</b></div>" for h in header
    )
    for config, found in rows:
        cells += f"<div class='verdict-config'>{html_text.escape(config)}</div>"
        for v in found:
            if v is None:
                cells += "<div>–</div>"
                continue
            cells += (
                f"<div class='verdict {v.outcome}' title='{html_text.escape(v.line())}'>"
                f"<b style='color:{COLOURS[v.outcome]}'>{v.outcome}</b> {robust_word(v)}</div>"
            )
    columns = f"grid-template-columns:max-content repeat({len(header)}, auto)"
    lines = "".join(f"<li>{html_text.escape(v.line())}</li>" for v in verdicts.claims)
    warnings = "".join(
        f"<p class='verdict-warning'>warning: {html_text.escape(w)}</p>" for w in verdicts.warnings
    )
    return (
        f"<div class='verdict-card'><h2>{CARD_TITLE}</h2>"
        f"<p>{html_text.escape(card_header(verdicts))}</p>{warnings}"
        f"<div class='verdict-matrix' style='{columns}'>{cells}</div>"
        "<details><summary>why: each verdict's figures and robustness</summary>"
        f"<ul class='verdicts'>{lines}</ul></details></div>"
    )


def budget_figure(verdicts: Verdicts) -> go.Figure | None:
    """C1 and C2 over the training budget: per method, the paired difference and its 95 %
    interval at every evaluation step, each point coloured by the verdict there (None when
    the study's evaluations were not read)."""
    shown = [
        v
        for v in verdicts.claims
        if v.claim in BUDGET_CLAIMS
        and v.robustness is not None
        and any(p.value is not None for p in v.robustness.budget)
    ]
    if not shown:
        return None
    figure = make_subplots(
        rows=1,
        cols=len(BUDGET_CLAIMS),
        subplot_titles=[f"{c}: {c.statement}" for c in BUDGET_CLAIMS],
        shared_xaxes=True,
    )
    configs = list(dict.fromkeys(v.config for v in shown))
    for verdict in shown:
        assert verdict.robustness is not None
        line = LINES[configs.index(verdict.config) % len(LINES)]
        points = verdict.robustness.budget
        column = BUDGET_CLAIMS.index(verdict.claim) + 1
        steps = [p.at for p in points]
        means = [p.value for p in points]
        errors_up = [
            None if p.high is None or p.value is None else p.high - p.value for p in points
        ]
        errors_down = [
            None if p.low is None or p.value is None else p.value - p.low for p in points
        ]
        figure.add_trace(
            go.Scatter(
                x=steps,
                y=means,
                mode="lines+markers",
                line={"color": line},
                name=verdict.config,
                legendgroup=verdict.config,
                showlegend=column == 1,
                marker={"color": [COLOURS[p.outcome] for p in points], "size": 7},
                error_y={
                    "type": "data",
                    "array": errors_up,
                    "arrayminus": errors_down,
                    "thickness": 1,
                    "color": line,
                },
                customdata=[str(p.outcome) for p in points],
                hovertemplate="step %{x}: %{y:.4f} (%{customdata})<extra>%{fullData.name}</extra>",
            ),
            row=1,
            col=column,
        )
    margin = verdicts.margin
    figure.add_hline(y=0, line_dash="dot", line_color="#888", row=1, col=1)
    figure.add_hline(y=margin, line_dash="dot", line_color="#888", row=1, col=2)
    figure.update_xaxes(title_text="evaluation step")
    figure.update_yaxes(title_text="paired difference (lower: adaptive better)", col=1)
    figure.update_layout(
        title="Verdict over the training budget (points: green confirmed, red refuted, "
        "amber inconclusive; bars: 95 % intervals; dotted: 0 and the margin)",
        height=420,
        legend={"title": {"text": "configuration"}},
    )
    return figure
