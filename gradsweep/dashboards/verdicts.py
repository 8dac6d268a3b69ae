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
LINES = qualitative.D3  # one colour per configuration, the same in both panels


def card_header(verdicts: Verdicts) -> str:
    return (
        f"each claim judged on 95 % intervals over seeds (margin {verdicts.margin:g}), "
        "recomputed at every evaluation step, on coarser grids and with each seed left out"
    )


def verdict_words(verdict: Verdict) -> tuple[str, str, str]:
    """(what is claimed, the outcome, why and how robust): one row of the card."""
    claim = f"{verdict.claim} {verdict.config} {verdict.title}"
    return claim, str(verdict.outcome), f"{verdict.reason}{verdict.tail()}"


def card(verdicts: Verdicts) -> html.Div:
    """The dashboard's verdict card: one row per claim and method, the warnings under it."""
    rows = []
    for verdict in verdicts.claims:
        claim, outcome, why = verdict_words(verdict)
        colour = {"color": COLOURS[verdict.outcome], "fontWeight": "bold"}
        rows.append(
            html.Tr(
                [
                    html.Td(claim, style={"paddingRight": "1em"}),
                    html.Td(outcome, style={**colour, "paddingRight": "1em"}),
                    html.Td(why, style={"overflowWrap": "anywhere"}),
                ],
                className=f"verdict {outcome}",
            )
        )
    warnings = [
        html.P(f"warning: {w}", className="verdict-warning", style={"color": "#9a6700"})
        for w in verdicts.warnings
    ]
    return html.Div(
        [
            html.H2(CARD_TITLE),
            html.P(card_header(verdicts), style={"color": "#555"}),
            html.Table(html.Tbody(rows), style={"fontSize": "14px", "width": "100%"}),
            *warnings,
        ],
        className="verdict-card",
        style={"border": "1px solid #d0d7de", "padding": "0.5em 1em", "margin": "1em 0"},
    )


def card_html(verdicts: Verdicts) -> str:
    """The report's verdict card: the same rows as plain HTML."""
    rows = "".join(
        f"<tr class='verdict {outcome}'><td>{html_text.escape(claim)}</td>"
        f"<td style='color:{COLOURS[v.outcome]};font-weight:bold'>{outcome}</td>"
        f"<td>{html_text.escape(why)}</td></tr>"
        for v in verdicts.claims
        for claim, outcome, why in [verdict_words(v)]
    )
    warnings = "".join(
        f"<p class='verdict-warning'>warning: {html_text.escape(w)}</p>" for w in verdicts.warnings
    )
    return (
        f"<div class='verdict-card'><h2>{CARD_TITLE}</h2>"
        f"<p>{html_text.escape(card_header(verdicts))}</p>"
        f"<table class='verdicts'><tbody>{rows}</tbody></table>{warnings}</div>"
    )


def budget_figure(verdicts: Verdicts) -> go.Figure | None:
    """C1 and C2 over the training budget: per method, the paired difference and its 95 %
    interval at every evaluation step, each point coloured by the verdict there (None when
    the study's evaluations were not read)."""
    shown = [
        v
        for v in verdicts.claims
        if v.claim in BUDGET_CLAIMS and v.robustness is not None and v.robustness.budget
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
