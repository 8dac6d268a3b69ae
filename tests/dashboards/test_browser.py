"""The dashboard and the report in a real browser: Debian's Chromium driven by Playwright."""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from werkzeug.serving import make_server

from gradsweep.dashboards.app import create_app
from gradsweep.dashboards.report import write_report
from gradsweep.results.answer import compare_study
from gradsweep.storage.engine import open_engine
from gradsweep.storage.writer import ResultsWriter
from tests.conftest import IN_CI
from tests.dashboards.study import (
    EIGHT_CONFIGS,
    add_static,
    build_eight_config_study,
    build_empty_study,
    build_failed_study,
    build_three_task_study,
)

CHROMIUM = "/usr/bin/chromium"
SHOTS = os.environ.get("GRADSWEEP_SHOTS")  # a folder: the tests save screenshots there
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


@pytest.fixture
def browser_page() -> Iterator:  # type: ignore[type-arg]
    from playwright.sync_api import sync_playwright

    if shutil.which(CHROMIUM) is None:
        reason = f"{CHROMIUM} missing (apt-get install chromium)"
        if IN_CI:
            pytest.fail(f"{reason}; CI=true requires the browser tests")
        pytest.skip(reason)

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        page = browser.new_page()
        page.errors = []  # type: ignore[attr-defined]
        page.on("console", lambda m: m.type == "error" and page.errors.append(m.text))
        page.on("pageerror", lambda e: page.errors.append(str(e)))
        yield page
        browser.close()


def shot(page, name: str) -> None:  # type: ignore[no-untyped-def]
    """A full-page screenshot in $GRADSWEEP_SHOTS, when set, to look at the page."""
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(SHOTS) / f"{name}.png"), full_page=True)


@contextmanager
def serving(url: str) -> Iterator[str]:
    """The dashboard on ``url``'s database, at a free local port."""
    app = create_app(open_engine(url, read_only=True))
    server = make_server("127.0.0.1", 0, app.server, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()


@pytest.fixture
def dashboard(sqlite_url: str) -> Iterator[str]:
    build_three_task_study(sqlite_url)
    with serving(sqlite_url) as base:
        yield base


def plot_data(page, graph: str) -> list:  # type: ignore[no-untyped-def, type-arg]
    selector = f"#{graph} .js-plotly-plot"
    page.wait_for_function(
        f"() => document.querySelector('{selector}')?._fullData?.length > 0", timeout=30000
    )
    return page.evaluate(f"() => document.querySelector('{selector}')._fullData")


def table_rows(page, table: str) -> list[list[str]]:  # type: ignore[no-untyped-def]
    """The text of each body row of a table on the page, cell by cell."""
    page.wait_for_selector(f"{table} tbody tr", timeout=30000)
    return page.evaluate(
        f"() => [...document.querySelectorAll('{table} tbody tr')]"
        ".map(tr => [...tr.children].map(td => td.textContent))"
    )


def test_list_study_page_and_live_refresh(browser_page, dashboard: str, sqlite_url: str) -> None:  # type: ignore[no-untyped-def]
    page = browser_page
    page.goto(dashboard + "/")
    page.wait_for_selector("#study-list")
    assert "three" in page.inner_text("#study-list")
    page.click("text=three")
    data = plot_data(page, "simplex")
    assert data[0]["type"] == "scatterternary" and len(data[0]["a"]) == 12
    comparison = compare_study(open_engine(sqlite_url), "three")
    # every adaptive balancer's trajectory, ending at its time-averaged weights
    lines = [d["name"] for d in data if d.get("meta") == "trajectory"]
    assert lines == ["dwa/t=2/s0", "gradnorm/a=0.12/s0"]
    ends = {
        d["text"][0]: [d["a"][0], d["b"][0], d["c"][0]]
        for d in data
        if d.get("meta") == "converged"
    }
    for adaptive in comparison.adaptive:
        assert ends[f"{adaptive.config}/s0"] == pytest.approx(adaptive.weights_mean)
    assert any(d.get("name") == "static optimum" for d in data)
    table = table_rows(page, "#comparison-table")
    assert [row[0] for row in table] == ["static optimum", "gradnorm/a=0.12", "dwa/t=2"]
    assert table[0][2] == f"{comparison.static_best.objective:.4f}"
    assert table[1][2] == f"{comparison.adaptive[0].objective:.4f}"
    assert table[1][4] == f"{comparison.adaptive[0].rank_percentile:.1f}"
    losses = plot_data(page, "loss-curves")  # the best static trial's tasks by default
    best_key = comparison.static_best.keys[0]
    assert sorted(d["name"] for d in losses) == [f"{best_key} task{i}" for i in range(3)]
    page.click("text=train loss")
    page.wait_for_function(
        "() => document.querySelector('#loss-curves .js-plotly-plot')"
        "._fullLayout.title.text.startsWith('train')",
        timeout=30000,
    )
    # a trial written after the page loaded appears without a reload
    writer = ResultsWriter(open_engine(sqlite_url))
    add_static(writer, 1, "random/late/s0", [1.0, 1.0, 1.0], 50)
    page.wait_for_function(
        "() => document.querySelector('#simplex .js-plotly-plot')._fullData[0].a.length === 13",
        timeout=30000,
    )
    assert page.errors == []


@pytest.mark.parametrize(
    ("path", "text"),
    [
        ("/study/nope", "unknown study 'nope'"),
        ("/no/such/page", "Page not found"),
        ("/study/%ZZ", ""),
    ],
)
def test_mistakes_get_a_page(browser_page, dashboard: str, path: str, text: str) -> None:  # type: ignore[no-untyped-def]
    response = browser_page.goto(dashboard + path)
    assert response is not None and response.status == 200
    browser_page.wait_for_selector("h1")
    assert text in browser_page.inner_text("body")
    assert "Traceback" not in browser_page.content()


def test_report_opens_offline(browser_page, sqlite_url: str, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    build_three_task_study(sqlite_url)
    out = write_report(open_engine(sqlite_url, read_only=True), "three", tmp_path / "r.html")
    requests: list[str] = []

    def block(route) -> None:  # type: ignore[no-untyped-def]
        if not route.request.url.startswith("file://"):
            requests.append(route.request.url)
            route.abort()
        else:
            route.continue_()

    browser_page.route("**/*", block)
    browser_page.goto(out.as_uri())
    browser_page.wait_for_function(
        "() => document.querySelectorAll('.js-plotly-plot').length === 6", timeout=30000
    )
    ternary = browser_page.evaluate(
        "() => [...document.querySelectorAll('.js-plotly-plot')].map(p => p._fullData[0].type)"
    )
    assert "scatterternary" in ternary
    assert [row[0] for row in table_rows(browser_page, "table.comparison")] == [
        "static optimum",
        "gradnorm/a=0.12",
        "dwa/t=2",
    ]
    pareto = browser_page.evaluate(
        "() => [...document.querySelectorAll('.js-plotly-plot')]"
        ".map(p => (p.layout.title || {}).text).filter(t => t && t.startsWith('per-task'))"
    )
    assert len(pareto) == 1 and "static front" in pareto[0]
    assert requests == [] and browser_page.errors == []


WIDTH = 1400  # a common browser window: the page and the report fit it


def rows_in_sight(page, table: str) -> list[str]:  # type: ignore[no-untyped-def]
    """The first cell of each body row that a person sees: inside the table's box, not
    clipped by anything around it (the element at the cell's centre is the cell), after
    scrolling the window to it (never a box that would scroll inside the page)."""
    return page.evaluate(
        """(table) => {
            return [...document.querySelectorAll(table + ' tbody tr')].flatMap(tr => {
                const cell = tr.children[0];
                const top = cell.getBoundingClientRect().top + window.scrollY;
                window.scrollTo(0, top - window.innerHeight / 2);  // the page, not a box in it
                const box = document.querySelector(table).getBoundingClientRect();
                const r = cell.getBoundingClientRect();
                const inside = r.top >= box.top - 1 && r.bottom <= box.bottom + 1
                    && r.left >= box.left - 1 && r.right <= box.right + 1 && r.height > 0;
                const hit = document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2);
                return inside && cell.contains(hit) ? [cell.textContent] : [];
            });
        }""",
        table,
    )


def verdicts_in_sight(page) -> list[str]:  # type: ignore[no-untyped-def]
    """Each verdict cell of the card a person sees (scrolled to, not covered): its line."""
    return page.evaluate(
        """() => [...document.querySelectorAll('.verdict-matrix .verdict')].flatMap(cell => {
            cell.scrollIntoView({block: 'center'});
            const r = cell.getBoundingClientRect();
            const hit = document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2);
            return r.height > 0 && cell.contains(hit) ? [cell.title] : [];
        })"""
    )


@pytest.mark.parametrize("study", ["three", "eight"])
def test_every_comparison_row_is_in_sight(  # type: ignore[no-untyped-def]
    browser_page, sqlite_url: str, tmp_path: Path, study: str
) -> None:
    """The comparison table shows every row (Plotly's table scrolled all but four or five
    out of its fixed height): on the page and in the report, at a 1,400 px window."""
    build = {"three": build_three_task_study, "eight": build_eight_config_study}[study]
    build(sqlite_url)
    comparison = compare_study(open_engine(sqlite_url), study)
    expected = ["static optimum", *(a.config for a in comparison.adaptive)]
    if study == "eight":
        assert sorted(expected[1:]) == sorted(config for config, _, _ in EIGHT_CONFIGS)
    page = browser_page
    page.set_viewport_size({"width": WIDTH, "height": 900})
    with serving(sqlite_url) as base:
        page.goto(f"{base}/study/{study}")
        assert [row[0] for row in table_rows(page, "#comparison-table")] == expected
        assert rows_in_sight(page, "#comparison-table table") == expected
        assert comparison.verdicts is not None
        lines = comparison.verdicts.lines()
        assert sorted(verdicts_in_sight(page)) == sorted(lines)  # the verdict card, on top
        shot(page, f"{study}-page")
        page.goto("about:blank")  # before the server stops: no request left in flight
    out = write_report(open_engine(sqlite_url, read_only=True), study, tmp_path / "r.html")
    page.goto(out.as_uri())
    assert rows_in_sight(page, "table.comparison") == expected
    assert sorted(verdicts_in_sight(page)) == sorted(lines)
    assert page.errors == []


def test_the_report_fits_a_1400_px_window(browser_page, sqlite_url: str, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """No sideways scrolling in the report (figures, a nine-row table, a traceback line
    400 characters wide unfolded), nor on the dashboard's page of that failed study."""
    build_eight_config_study(sqlite_url)
    build_failed_study(sqlite_url)
    engine = open_engine(sqlite_url, read_only=True)
    page = browser_page
    page.set_viewport_size({"width": WIDTH, "height": 900})
    width = "() => document.documentElement.scrollWidth"
    unfold = "() => document.querySelectorAll('details').forEach(d => d.open = true)"
    for study in ("eight", "failed"):
        out = write_report(engine, study, tmp_path / f"{study}.html")
        page.goto(out.as_uri())
        page.wait_for_load_state("load")
        page.evaluate(unfold)
        shot(page, f"{study}-report")
        assert page.evaluate(width) <= WIDTH, study
    with serving(sqlite_url) as base:
        page.goto(f"{base}/study/failed")
        page.wait_for_selector("#failed-trials details", timeout=30000)
        page.evaluate(unfold)
        shot(page, "failed-page")
        assert page.evaluate(width) <= WIDTH
        text = page.inner_text("#study-view")
        assert text.index("failed trials (2)") < text.index("Not drawn yet")
        page.goto("about:blank")
    assert page.errors == []


def test_a_study_that_gains_results_draws_its_figures_whole(browser_page, sqlite_url: str) -> None:  # type: ignore[no-untyped-def]
    """An empty study's page has no axes at all; when its trials arrive the figures appear
    with their legends measured in full (Plotly drawing into a display: none block cuts a
    legend's names short)."""
    build_empty_study(sqlite_url, name="three")
    page = browser_page
    page.set_viewport_size({"width": WIDTH, "height": 900})
    with serving(sqlite_url) as base:
        page.goto(f"{base}/study/three")
        page.wait_for_selector("#missing-figures p", timeout=30000)
        assert page.evaluate(VISIBLE_PLOTS) == []  # nothing drawn: no empty axes
        build_three_task_study(sqlite_url)  # the same study's trials, written now
        page.wait_for_function(
            "() => document.querySelector('#simplex .js-plotly-plot')?._fullData?.length > 0",
            timeout=30000,
        )
        page.wait_for_selector("#comparison-table tbody tr", timeout=30000)
        shown = page.evaluate(VISIBLE_PLOTS)
        assert {"simplex", "weight-curves", "distance", "best-so-far"} <= set(shown)
        legend = page.evaluate(
            "() => document.querySelector('#simplex .legend').getBoundingClientRect().width"
        )
        assert legend > 100  # "gradnorm/a=0.12" and its symbol, not a clipped stub
        shot(page, "gained-page")
        page.goto("about:blank")
    assert page.errors == []


# the ids of the page's graphs a person sees (a tucked one has no height)
VISIBLE_PLOTS = (
    "() => [...document.querySelectorAll('.dash-graph')]"
    ".filter(g => g.getBoundingClientRect().height > 0 && g.querySelector('.main-svg'))"
    ".map(g => g.id)"
)
