"""The dashboard and the report in a real browser: Debian's Chromium driven by Playwright."""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from werkzeug.serving import make_server

from gradsweep.dashboards.app import create_app
from gradsweep.dashboards.report import write_report
from gradsweep.results.answer import compare_study
from gradsweep.storage.engine import open_engine
from gradsweep.storage.writer import ResultsWriter
from tests.conftest import IN_CI
from tests.dashboards.study import add_static, build_three_task_study

CHROMIUM = "/usr/bin/chromium"
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


@pytest.fixture
def dashboard(sqlite_url: str) -> Iterator[str]:
    build_three_task_study(sqlite_url)
    app = create_app(open_engine(sqlite_url, read_only=True))
    server = make_server("127.0.0.1", 0, app.server, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


def plot_data(page, graph: str) -> list:  # type: ignore[no-untyped-def, type-arg]
    selector = f"#{graph} .js-plotly-plot"
    page.wait_for_function(
        f"() => document.querySelector('{selector}')?._fullData?.length > 0", timeout=30000
    )
    return page.evaluate(f"() => document.querySelector('{selector}')._fullData")


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
        d["name"]: [d["a"][0], d["b"][0], d["c"][0]] for d in data if d.get("meta") == "converged"
    }
    for adaptive in comparison.adaptive:
        assert ends[f"{adaptive.config}/s0 E_t[w]"] == pytest.approx(adaptive.weights_mean)
    assert any(d.get("name") == "static optimum" for d in data)
    table = plot_data(page, "comparison-table")[0]["cells"]["values"]
    assert table[0][1:] == ["gradnorm/a=0.12", "dwa/t=2"]
    assert table[2][0] == f"{comparison.static_best.objective:.4f}"
    assert table[2][1] == f"{comparison.adaptive[0].objective:.4f}"
    assert table[4][1] == f"{comparison.adaptive[0].rank_percentile:.1f}"
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
        "() => document.querySelectorAll('.js-plotly-plot').length === 7", timeout=30000
    )
    ternary = browser_page.evaluate(
        "() => [...document.querySelectorAll('.js-plotly-plot')].map(p => p._fullData[0].type)"
    )
    assert "scatterternary" in ternary and "table" in ternary
    pareto = browser_page.evaluate(
        "() => [...document.querySelectorAll('.js-plotly-plot')]"
        ".map(p => (p.layout.title || {}).text).filter(t => t && t.startsWith('per-task'))"
    )
    assert len(pareto) == 1 and "static front" in pareto[0]
    assert requests == [] and browser_page.errors == []
