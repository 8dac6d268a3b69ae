"""The dashboard's and the report's comparison table: the spreads and the equal-weights
row that ``gradsweep compare`` shows, with its numbers (the hand-built study of
test_compare: two seeds per weighting)."""

from __future__ import annotations

from html.parser import HTMLParser
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from gradsweep.cli import app as cli
from gradsweep.compare import format_value
from gradsweep.dashboards.app import create_app
from gradsweep.dashboards.figures import comparison_table_figure, table_content
from gradsweep.results.answer import compare_study
from gradsweep.results.comparison import Comparison
from gradsweep.storage.engine import open_engine
from tests.test_compare import build


def expected_rows(comparison: Comparison) -> dict[str, str]:
    """Each row's objective cell as the CLI's compare table prints it."""
    best, equal = comparison.static_best, comparison.equal_weights
    assert equal is not None
    rows = {
        "static optimum": format_value(best.objective, best.objective_std),
        "equal weights": format_value(equal.objective, equal.objective_std),
    }
    for a in comparison.adaptive:
        rows[a.config] = format_value(a.objective, a.objective_std)
    return rows


def check_cells(cells: list[list[str]], comparison: Comparison) -> None:
    objectives = dict(zip(cells[0], cells[2], strict=True))
    assert objectives == expected_rows(comparison)
    assert objectives["static optimum"] == "0.4000 ± 0.1414"
    assert objectives["equal weights"] == "0.6000 ± 0.1414"
    assert cells[1][cells[0].index("equal weights")] == "1.000, 1.000"
    gradnorm = cells[0].index("gradnorm/a=0.12")
    assert cells[6][gradnorm] == "0.4000 ± 0.0283"  # GradNorm Static over its two seeds
    # paired per-seed differences: against equal weights (−0.15, −0.25), the optimum (±0.05)
    assert cells[8][gradnorm] == "-0.2000 [-0.8353, +0.4353]; 2/2 seeds"
    assert cells[9][gradnorm] == "+0.0000 [-0.6353, +0.6353]; 1/2 seeds"


def test_figure_rows(sqlite_url: str) -> None:
    build(sqlite_url)
    comparison = compare_study(open_engine(sqlite_url), "known")
    cells = comparison_table_figure(comparison).data[0].cells.values
    check_cells([list(column) for column in cells], comparison)


class TableCells(HTMLParser):
    """The body cells of the page's comparison table, column by column."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[list[str]] = []
        self.inside = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "tbody":
            self.inside = True
        elif tag == "tr" and self.inside:
            self.rows.append([])
        elif tag == "td" and self.inside:
            self.rows[-1].append("")

    def handle_endtag(self, tag: str) -> None:
        if tag == "tbody":
            self.inside = False

    def handle_data(self, data: str) -> None:
        if self.inside and self.rows and self.rows[-1]:
            self.rows[-1][-1] += data


def columns(rows: list[list[str]]) -> list[list[str]]:
    return [list(column) for column in zip(*rows, strict=True)]


def test_report_html_carries_spreads_and_equal_weights(sqlite_url: str, tmp_path: Path) -> None:
    build(sqlite_url)
    out = tmp_path / "report.html"
    run = CliRunner().invoke(cli, ["report", "known", "--out", str(out), "--db", sqlite_url])
    assert run.exit_code == 0, run.stderr
    parser = TableCells()  # the table as the report writes it: an HTML table
    parser.feed(out.read_text())
    check_cells(columns(parser.rows), compare_study(open_engine(sqlite_url), "known"))


def dash_rows(component: Any) -> list[list[str]]:
    """The body rows of a Dash table, from its JSON."""
    if isinstance(component, list):
        return [row for child in component for row in dash_rows(child)]
    if not isinstance(component, dict):
        return []
    props = component.get("props", {})
    if component.get("type") == "Tr" and any(
        isinstance(c, dict) and c.get("type") == "Td" for c in props.get("children", [])
    ):
        return [[str(cell["props"]["children"]) for cell in props["children"]]]
    return dash_rows(props.get("children"))


def test_dashboard_serves_spreads_and_equal_weights(sqlite_url: str) -> None:
    build(sqlite_url)
    dash_app = create_app(open_engine(sqlite_url, read_only=True))
    key = next(k for k in dash_app.callback_map if "comparison-table.children" in k)
    outputs = [
        {"id": output.rsplit(".", 1)[0], "property": output.rsplit(".", 1)[1]}
        for output in key.strip(".").split("...")
    ]
    body = {
        "output": key,
        "outputs": outputs,
        "inputs": [
            {"id": "refresh", "property": "n_intervals", "value": 1},
            {"id": "url", "property": "pathname", "value": "/study/known"},
        ],
        "state": [{"id": "signature", "property": "data", "value": None}],
        "changedPropIds": ["url.pathname"],
    }
    response = dash_app.server.test_client().post("/_dash-update-component", json=body)
    assert response.status_code == 200
    table = response.get_json()["response"]["comparison-table"]["children"]
    comparison = compare_study(open_engine(sqlite_url), "known")
    check_cells(columns(dash_rows(table)), comparison)
    header = table_content(comparison_table_figure(comparison)).header
    assert all(h in str(table) for h in header[1:])
