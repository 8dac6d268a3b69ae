"""``gradsweep report``: the study's page in one file that opens offline.

plotly.js is inlined once; the file makes no network request. The page reads as the
dashboard's study page does: the title and its summary line, the failures, a line for each
figure not drawn, then the figures that have something to draw.

Its head carries ``GENERATOR``: ``report --out`` replaces an existing file only when it
finds that mark (or an older report's title) in it, so a mistyped ``--out`` cannot
overwrite someone's own page, or anything else, without ``--force`` (``outfiles.py``).
"""

from __future__ import annotations

import html
from pathlib import Path

import plotly.graph_objects as go
from plotly.offline import get_plotlyjs
from sqlalchemy import Engine

from gradsweep.dashboards.figures import TableContent, table_content
from gradsweep.dashboards.layout import FAILURES_FIRST, FAILURES_SHOWN
from gradsweep.dashboards.page import FIGURE_NAMES, StudyPage, loss_curves, study_page
from gradsweep.dashboards.verdicts import card_html
from gradsweep.outfiles import FileKind, check_target, database_files, file_head, replace_atomically
from gradsweep.results.study import FailedTrial

# the mark by which `report` knows a file it wrote (and may replace it)
GENERATOR = '<meta name="generator" content="gradsweep report">'
# how reports written before the mark begin (their title, within the first bytes)
OLDER_REPORT = b"<title>gradsweep report: "

# every block as wide as the window at most (the figures follow it), long lines wrapped:
# nothing scrolls sideways in a window 1,400 px wide or narrower
STYLE = (
    "*{box-sizing:border-box}"
    "body{font-family:sans-serif;margin:1em 2em}"
    "section{max-width:100%}"
    "h1,.summary,.failures,.missing,.verdict-card{overflow-wrap:anywhere}"
    ".verdict-card{border:1px solid #d0d7de;padding:0.5em 1em;margin:1em 0}"
    ".verdict-matrix{display:grid;gap:2px 12px;font-size:14px;margin:0.5em 0}"
    "ul.verdicts{font-size:13px;padding-left:1.2em}.verdicts li{margin:2px 0}"
    ".verdict-warning{color:#9a6700}"
    "pre{white-space:pre-wrap}"
    "table.comparison{border-collapse:collapse;font-size:13px;width:100%;margin:1em 0}"
    ".comparison th{background:#c8d4e3;padding:4px 6px;vertical-align:bottom}"
    ".comparison td{padding:3px 6px;text-align:center;border-top:1px solid #dde3ec}"
    ".comparison td:first-child{text-align:left;white-space:nowrap}"
    ".comparison tbody tr:nth-child(even){background:#f2f5fa}"
    ".comparison caption{text-align:left;font-size:1.17em;font-weight:bold;margin:0.5em 0}"
)


def study_figures(engine: Engine, study: str) -> tuple[StudyPage, list[go.Figure]]:
    """The study's page and its figures: the dashboard's study page, in its order, with the
    loss curves of the trials the page shows first; figures with nothing to draw left out."""
    page = study_page(engine, study, lean=False)
    figs = [page.figures[name] for name in FIGURE_NAMES if name in page.figures]
    losses = loss_curves(engine, page.name, page.default_keys, "test_loss")
    return page, [*figs, *([losses] if losses is not None else [])]


def render_report(page: StudyPage, figs: list[go.Figure]) -> str:
    """The page; the comparison table as an HTML table, every row in sight."""
    table = page.figures.get("table")
    parts = [
        table_html(table_content(fig))
        if fig is table
        else fig.to_html(full_html=False, include_plotlyjs=False)
        for fig in figs
    ]
    title = html.escape(f"gradsweep report: {page.name}")
    missing = "".join(f"<p class='missing'>{html.escape(line)}</p>" for line in page.missing)
    return (
        f"<!DOCTYPE html><html><head><meta charset='utf-8'>{GENERATOR}"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>{title}</title><style>{STYLE}</style>"
        f"<script type='text/javascript'>{get_plotlyjs()}</script></head><body>"
        f"<h1>{title}</h1><p class='summary'>{html.escape(page.summary)}</p>"
        + (card_html(page.verdicts) if page.verdicts is not None else "")
        + failures_html(page.failures)
        + missing
        + "".join(f"<section>{part}</section>" for part in parts)
        + "</body></html>"
    )


def table_html(content: TableContent) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in content.header)
    rows = "".join(
        "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>"
        for row in content.rows
    )
    caption = f"<caption>{html.escape(content.title)}</caption>"
    return (
        f"<table class='comparison'>{caption}<thead><tr>{head}</tr></thead>"
        f"<tbody>{rows}</tbody></table>"
    )


def failures_html(failures: list[FailedTrial]) -> str:
    """Each failed trial's key and reason, its traceback folded beneath it (as the
    dashboard shows them: the first ten open, the rest folded under one line)."""
    if not failures:
        return ""
    first = "".join(_failure(f) for f in failures[:FAILURES_FIRST])
    folded = "".join(_failure(f) for f in failures[FAILURES_FIRST:FAILURES_SHOWN])
    more = len(failures) - FAILURES_SHOWN
    if more > 0:
        folded += f"<p>… and {more} more: gradsweep query trials --status failed</p>"
    if folded:
        rest = len(failures) - FAILURES_FIRST
        folded = f"<details><summary>{rest} more failed trials</summary>{folded}</details>"
    heading = f"<h2>failed trials ({len(failures)})</h2>"
    return f"<div class='failures'>{heading}{first}{folded}</div>"


def _failure(failure: FailedTrial) -> str:
    reason = html.escape(f"{failure.key}: {failure.error}")
    trace = failure.traceback or "no traceback: the trial failed without raising"
    return f"<details><summary>{reason}</summary><pre>{html.escape(trace)}</pre></details>"


def is_report(path: Path) -> bool:
    """Whether a file is a report this command wrote (its mark, or an older report's
    title, near its start)."""
    head = file_head(path)
    return GENERATOR.encode() in head or OLDER_REPORT in head


REPORT = FileKind("an HTML report gradsweep wrote", is_report)


def write_report(engine: Engine, study: str, out: Path | str, force: bool = False) -> Path:
    """Write the report to ``out`` atomically (a reader never sees half a file), after
    the checks of ``outfiles.check_target``: never over the database being read or a
    special file, over another file only with ``force``. Checked before the study is
    read (a refusal is quick) and again just before the file is put in place."""
    protected = database_files(engine)
    check_target("--out", out, REPORT, protected, force)
    page, figs = study_figures(engine, study)
    text = render_report(page, figs)
    target = check_target("--out", out, REPORT, protected, force)
    replace_atomically("--out", target, lambda tmp: _write_text(tmp, text))
    return Path(out)  # as the user named it (a symlink's own path, say)


def _write_text(path: Path, text: str) -> None:
    path.write_text(text, encoding="utf-8")
