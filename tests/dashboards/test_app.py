"""The app's guards, through its real Flask server (test client) on a real database."""

from __future__ import annotations

import logging
import re
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from typer.testing import CliRunner
from werkzeug.serving import make_server

from gradsweep.cli import app as cli
from gradsweep.dashboards import figures, layout
from gradsweep.dashboards.app import create_app, exposure_warning
from gradsweep.dashboards.callbacks import refresh_study, render_page, study_from_path
from gradsweep.dashboards.ids import Ids
from gradsweep.dashboards.page import FIGURE_NAMES, shown_static, study_page
from gradsweep.dashboards.report import write_report
from gradsweep.results import load_results
from gradsweep.results.study import FailedTrial
from gradsweep.storage.engine import open_engine
from tests.dashboards.study import (
    build_empty_study,
    build_failed_study,
    build_running_study,
    build_three_task_study,
)


def test_token_is_required_when_set(sqlite_url: str) -> None:
    build_three_task_study(sqlite_url)
    client = create_app(
        open_engine(sqlite_url, read_only=True), token="s3cret"
    ).server.test_client()
    assert client.get("/").status_code == 403
    assert client.get("/_dash-layout").status_code == 403
    assert client.get("/?token=wrong").status_code == 403
    first = client.get("/?token=s3cret")
    assert first.status_code == 200
    assert client.get("/_dash-layout").status_code == 200  # the cookie carries it on


def test_no_token_needed_by_default(sqlite_url: str) -> None:
    build_three_task_study(sqlite_url)
    client = create_app(open_engine(sqlite_url, read_only=True)).server.test_client()
    assert client.get("/").status_code == 200


def test_exposure_warnings() -> None:
    assert exposure_warning("127.0.0.1", None) is None
    assert "anyone who can reach" in (exposure_warning("0.0.0.0", None) or "")
    assert "token required" in (exposure_warning("0.0.0.0", "t") or "")


def test_pages_for_every_path(sqlite_url: str) -> None:
    build_three_task_study(sqlite_url)
    engine = open_engine(sqlite_url, read_only=True)
    message, listing, *_ = render_page(engine, "/")
    assert message is None and listing is not None
    assert render_page(engine, "/study/three")[4] == "three"
    assert "unknown study" in str(render_page(engine, "/study/nope")[0])
    assert "Page not found" in str(render_page(engine, "/elsewhere")[0])
    assert study_from_path("/study/a%20b") == "a b" and study_from_path("/study/") is None


def test_large_studies_are_cut_to_what_a_person_sees(sqlite_url: str) -> None:
    build_three_task_study(sqlite_url, static=40)
    engine = open_engine(sqlite_url, read_only=True)
    page = study_page(engine, "three")
    trials_shown = shown_static(load_results(engine, "three").trials, limit=20)
    static = trials_shown[trials_shown["arm"] == "random"]
    assert 10 <= len(static) <= 20
    assert "gradnorm/a=0.12/s0" in set(trials_shown["key"])  # other arms are all kept
    best = page.comparison.static_best.keys[0] if page.comparison else None
    assert best in set(trials_shown["key"])  # the best trials are always kept


def test_dashboard_command_refuses_a_missing_database(tmp_path) -> None:  # type: ignore[no-untyped-def]
    run = CliRunner().invoke(cli, ["dashboard", "--db", f"sqlite:///{tmp_path}/none.db"])
    assert run.exit_code == 2 and "no database at" in run.stderr


def test_an_empty_study_gets_a_page_not_an_error(sqlite_url: str) -> None:
    from gradsweep.storage.records import StudyRecord
    from gradsweep.storage.writer import ResultsWriter

    ResultsWriter(open_engine(sqlite_url)).get_or_create_study(
        StudyRecord("empty", "{}", "h", "toy", ["a", "b", "c"], "normalized_loss")
    )
    engine = open_engine(sqlite_url, read_only=True)
    page = study_page(engine, "empty")
    assert page.trials == 0 and page.comparison is None
    assert page.message is not None and "no completed static-weight trial" in page.message
    assert render_page(engine, "/study/empty")[4] == "empty"


def test_failed_trials_are_listed_with_their_tracebacks(sqlite_url: str) -> None:
    from gradsweep.storage.records import TrialOutcome, TrialRecord
    from gradsweep.storage.writer import ResultsWriter

    study = build_three_task_study(sqlite_url)
    writer = ResultsWriter(open_engine(sqlite_url))
    key = "random/i099/s0"
    trial = writer.upsert_trials(
        study, [TrialRecord(key, "random", "static", {}, [1.0, 1.0, 1.0], None, 0)]
    )[key]
    writer.mark_running(trial, "n", "cpu", None)
    error = "ValueError: bad batch (problem.py:12 in sample)"
    trace = "Traceback (most recent call last):\n"
    trace += '  File "problem.py", line 12\nValueError: bad batch'
    writer.finish_trial(
        trial, TrialOutcome("failed", error, "n", "cpu", None, None, None, None, traceback=trace)
    )
    engine = open_engine(sqlite_url, read_only=True)
    assert [(f.key, f.error) for f in study_page(engine, "three").failures] == [(key, error)]
    section = refresh_study(engine, "/study/three", None)[-3]
    text = str(section.to_plotly_json())
    assert "failed trials (1)" in text and error in text and "line 12" in text
    assert "Details" in text  # the traceback folded under its reason


BUILDERS = {
    "failed": build_failed_study,
    "empty": build_empty_study,
    "running": build_running_study,
}


@pytest.mark.parametrize("study", sorted(BUILDERS))
def test_a_study_without_results_shows_what_it_has_and_no_empty_axes(
    study: str, sqlite_url: str
) -> None:
    BUILDERS[study](sqlite_url)
    engine = open_engine(sqlite_url, read_only=True)
    page = study_page(engine, study)
    assert page.comparison is None and "no completed static-weight trial" in page.summary
    for name, figure in page.figures.items():  # what is drawn has data and a title
        assert figures.has_data(figure) and figure.layout.title.text, name
    drawn = {"running": {"simplex", "weights"}}.get(study, set())
    assert set(page.figures) == drawn  # GradNorm's trajectory so far, its w_i(t)
    missing = " ".join(page.missing)  # a line says what each left-out figure misses
    assert all(FIGURE_NAMES[name] in missing for name in FIGURE_NAMES if name not in drawn)
    assert len(page.missing) == (1 if drawn else 3)  # the comparison's four share a line
    failed = {"failed": 2, "running": 1, "empty": 0}[study]
    assert len(page.failures) == failed
    # the app: a graph with nothing to draw is tucked away, never shown as empty axes
    out = refresh_study(engine, f"/study/{study}", None)
    graphs, styles = out[: len(layout.GRAPHS)], out[len(layout.GRAPHS) : 2 * len(layout.GRAPHS)]
    for (_, name), graph, style in zip(layout.GRAPHS, graphs, styles, strict=True):
        assert style == (layout.SHOWN if name in drawn else layout.TUCKED), name
        assert (style == layout.SHOWN) == figures.has_data(graph), name
    assert out[-1] == layout.TUCKED  # no completed trial: no loss curves to pick
    assert "Not drawn yet" in str(out[-2].to_plotly_json())


def test_failures_come_first_under_the_title(sqlite_url: str, tmp_path: Path) -> None:
    """The page's order: title, summary, the verdict card, failures, what is not drawn,
    then the table and the figures."""
    order = [getattr(c, "id", None) for c in layout.study_view().children]
    assert order.index(Ids.STUDY_TITLE) < order.index(Ids.STUDY_STATUS)
    assert order.index(Ids.STUDY_STATUS) < order.index(Ids.VERDICTS) < order.index(Ids.FAILURES)
    assert order.index(Ids.FAILURES) < order.index(Ids.MISSING)
    assert order.index(Ids.MISSING) < order.index(Ids.TABLE) < order.index(Ids.PARETO)
    build_failed_study(sqlite_url)
    engine = open_engine(sqlite_url, read_only=True)
    text = write_report(engine, "failed", tmp_path / "r.html").read_text()  # no refusal
    body = text[text.index("<body>") :]
    reason = "gradnorm/a=0.12/s0: RuntimeError: CUDA out of memory (gradnorm/a=0.12/s0)"
    assert body.index("<h1>") < body.index("failed trials (2)") < body.index(reason)
    assert body.index(reason) < body.index("Not drawn yet")
    assert "<section>" not in body and "<table" not in body  # no figure: no empty axes


def test_many_failures_fold_after_the_first_ten() -> None:
    failures = [FailedTrial(f"random/i{i:03d}/s0", "ValueError: bad", None) for i in range(130)]
    section = str(layout.failures_section(failures).to_plotly_json())
    assert "failed trials (130)" in section and "120 more failed trials" in section
    assert "… and 30 more" in section


UNKNOWN_ASSETS = [
    "/_dash-component-suites/nope/x.js",  # no such library
    "/_dash-component-suites/dash/nope.js",  # no such file of a library
    "/_dash-component-suites/dash/deps/polyfill@7.v2_0_0m1.js",  # a version never served
    "/_dash-component-suites/dash/../../etc/passwd",
    "/_dash-component-suites/plotly/package_data/nope.min.js",
]


def test_an_unknown_asset_is_a_404_without_a_traceback(
    sqlite_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    build_three_task_study(sqlite_url)
    client = create_app(open_engine(sqlite_url, read_only=True)).server.test_client()
    with caplog.at_level(logging.INFO):
        for path in UNKNOWN_ASSETS:
            assert client.get(path).status_code == 404, path
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert "Traceback" not in caplog.text
    # the assets the page names are still served
    page = client.get("/").get_data(as_text=True)
    scripts = re.findall(r'src="(/_dash-component-suites/[^"]+)"', page)
    assert scripts and all(client.get(src).status_code == 200 for src in scripts)


def test_an_unknown_asset_behind_a_token_is_still_403_first(sqlite_url: str) -> None:
    build_three_task_study(sqlite_url)
    engine = open_engine(sqlite_url, read_only=True)
    client = create_app(engine, token="s3cret-token").server.test_client()
    assert client.get(UNKNOWN_ASSETS[0]).status_code == 403
    assert client.get(UNKNOWN_ASSETS[0] + "?token=s3cret-token").status_code == 404


def served(app: Any) -> Iterator[str]:
    """The app on werkzeug's real server (the one `gradsweep dashboard` runs), whose
    request lines go to the access log."""
    http = make_server("127.0.0.1", 0, app.server, threaded=True)
    thread = threading.Thread(target=http.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{http.server_port}"
    finally:
        http.shutdown()


def status_of(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=60) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


def test_the_token_never_reaches_the_access_log(
    sqlite_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    build_three_task_study(sqlite_url)
    token = "s3cret-token/+="  # characters a URL encodes
    app = create_app(open_engine(sqlite_url, read_only=True), token=token)
    encoded = quote(token, safe="")
    with caplog.at_level(logging.INFO, logger="werkzeug"):
        for base in served(app):
            assert status_of(f"{base}/?token={encoded}") == 200
            assert status_of(f"{base}/study/three?x=1&token={encoded}&y=2") == 200
            assert status_of(f"{base}/?token=wrong-guess") == 403
            assert status_of(f"{base}/_dash-component-suites/nope/x.js?token={encoded}") == 404
    lines = [r.getMessage() for r in caplog.records if r.name == "werkzeug"]
    assert len([line for line in lines if "GET /" in line]) == 4, lines
    text = "\n".join(lines)
    assert token not in text and encoded not in text and "wrong-guess" not in text
    assert "s3cret" not in text
    assert text.count("token=[redacted]") == 4 and "&y=2" in text


def test_redaction_keeps_the_rest_of_a_line() -> None:
    from gradsweep.dashboards.app import RedactTokens

    redact = RedactTokens()
    redact.tokens.update({"abcdef123", "ab"})
    line = '127.0.0.1 - - "GET /study/x?a=1&TOKEN=abcdef123;b=2 HTTP/1.1" 200 -'
    assert (
        redact.redact(line)
        == '127.0.0.1 - - "GET /study/x?a=1&TOKEN=[redacted];b=2 HTTP/1.1" 200 -'
    )
    assert redact.redact("a path /abcdef123/x") == "a path /[redacted]/x"
    assert redact.redact("GET /about?tab=1") == "GET /about?tab=1"  # a short token is left


def test_a_large_study_page_leaves_robustness_to_compare(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Above PAGE_ROBUSTNESS_TRIALS the page judges each claim but says the robustness is
    compare's (each variant re-scores the whole study); below it, it checks robustness."""
    from gradsweep.dashboards import page as page_module

    build_three_task_study(sqlite_url)
    engine = open_engine(sqlite_url, read_only=True)
    checked = study_page(engine, "three")
    assert checked.verdicts is not None
    assert all(v.robustness is not None for v in checked.verdicts.claims)
    assert page_module.ROBUSTNESS_LEFT_OUT not in checked.missing
    monkeypatch.setattr(page_module, "PAGE_ROBUSTNESS_TRIALS", 3)
    large = study_page(engine, "three")
    assert large.verdicts is not None and large.verdicts.claims
    assert all(v.robustness is None for v in large.verdicts.claims)
    assert [v.outcome for v in large.verdicts.claims] == [
        v.outcome for v in checked.verdicts.claims
    ]
    assert page_module.ROBUSTNESS_LEFT_OUT in large.missing
