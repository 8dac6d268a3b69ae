"""Tables that survive pipes: cut to nothing off a terminal, laid out as before on one."""

from __future__ import annotations

import io
import os
import subprocess
import sys

import pytest
from rich.console import Console
from rich.table import Table
from rich.text import Text
from typer.testing import CliRunner

from gradsweep.cli import app
from gradsweep.console import LONG_TEXT, clip, print_table, visible
from tests.test_compare import TRIALS, build

LONG = "diabetes-progression-" + "x" * 70  # wider than 80 columns on its own
# more adaptive configurations than fit 80 columns side by side
ALPHAS = [0.12, 0.5, 1.5, 2.5]
WIDE_TRIALS = [t for t in TRIALS if t[0] != "gradnorm"] + [
    ("gradnorm", f"gradnorm/a={a:g}/s{seed}", None, a, seed, [1.4 + a / 10, 0.6 - a / 10], 0.4, 4.0)
    for a in ALPHAS
    for seed in (0, 1)
]


@pytest.fixture(autouse=True)
def no_columns(monkeypatch: pytest.MonkeyPatch) -> None:
    """rich takes $COLUMNS as the width when there is no terminal: leave it to the rule."""
    monkeypatch.delenv("COLUMNS", raising=False)


def cli(*args: str) -> str:
    run = CliRunner().invoke(app, list(args))
    assert run.exit_code == 0, run.stderr
    return run.stdout


def wide_table() -> Table:
    table = Table(title="t")
    for name in ("name", "gradnorm/a=0.12", "value"):
        table.add_column(name)
    table.add_row(LONG, "1.500, 0.500", "0.4000 ± 0.1414")
    return table


def test_off_a_terminal_a_table_takes_the_width_it_needs() -> None:
    out = io.StringIO()
    print_table(wide_table(), Console(file=out, width=80))
    text = out.getvalue()
    assert LONG in text and "gradnorm/a=0.12" in text and "0.4000 ± 0.1414" in text
    assert max(map(len, text.splitlines())) > 80


def test_on_a_terminal_a_table_fits_the_terminal_as_before() -> None:
    out = io.StringIO()
    console = Console(file=out, width=60, force_terminal=True, color_system=None)
    print_table(wide_table(), console)
    assert max(map(len, out.getvalue().splitlines())) <= 60
    assert console.width == 60


def test_status_through_a_pipe_prints_a_long_name_whole(sqlite_url: str) -> None:
    build(sqlite_url, LONG)
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    run = subprocess.run(
        [sys.executable, "-m", "gradsweep.cli", "status", "--db", sqlite_url],
        capture_output=True,  # stdout is a pipe, as in `gradsweep status | less`
        text=True,
        timeout=120,
        env=env,
    )
    assert run.returncode == 0, run.stderr
    assert LONG in run.stdout and "…" not in run.stdout
    assert LONG in cli("status", LONG, "--db", sqlite_url)


def test_query_tables_print_long_names_whole(sqlite_url: str) -> None:
    long_key = "grid/w=" + ",".join(["0.333333333333"] * 6) + "/s0"
    build(sqlite_url, LONG, [*TRIALS, ("grid", long_key, [1.0, 1.0], None, 0, [1.0, 1.0], 1, 1)])
    for kind in ("studies", "trials"):
        out = cli("query", kind, "--db", sqlite_url)
        assert LONG in out and "…" not in out
    assert long_key in cli("query", "trials", "--study", LONG, "--db", sqlite_url)


def test_compare_headers_and_cells_are_whole(sqlite_url: str) -> None:
    build(sqlite_url, "wide", WIDE_TRIALS)
    out = cli("compare", "wide", "--db", sqlite_url)
    for alpha in ALPHAS:
        assert f"gradnorm/a={alpha:g}" in out
    for label in ("time-averaged w (Σ = T)", "retrained static (GradNorm Static)"):
        assert label in out  # a row's label on one line: nothing squeezed
    assert "…" not in out
    assert "0.4000 ± 0.1414" in out  # the static optimum's spread, in one cell


def test_visible_escapes_what_a_terminal_would_act_on() -> None:
    assert visible("plain, unicode: é σ ≤ 中文") == "plain, unicode: é σ ≤ 中文"
    assert visible("a\x1b[2Jb") == "a\\x1b[2Jb"
    assert visible("r\u202el\u200bz") == "r\\u202el\\u200bz"  # RLO, zero-width space
    assert visible("n\nt\tc\rnul\x00del\x7f") == "n\\nt\\tc\\rnul\\x00del\\x7f"


def test_clip_says_how_much_was_cut() -> None:
    assert clip("x" * 10, 10) == "x" * 10
    assert clip("x" * 11, 10) == "x" * 10 + "… (1 more characters)"
    assert clip("y" * 200_000).endswith(f"… ({200_000 - LONG_TEXT:,} more characters)")


def test_a_table_prints_user_text_escaped_and_literal() -> None:
    table = Table(title="study \x1b[2J [/x]", caption="c\u202e")
    table.add_column("task\nname")
    table.add_column("value")
    table.add_row("t\x1b]0;title\x07", Text("[bold]x\x1b[31m", style="red"))
    table.add_row("[/red] [link=http://x]y", None)
    table.add_row("C:\\dir\\", "\\[b]")  # backslashes as written (rich's escape doubled one)
    for terminal in (False, True):
        out = io.StringIO()
        print_table(table, Console(file=out, width=200, force_terminal=terminal, color_system=None))
        text = out.getvalue()
        assert "\x1b" not in text and "\u202e" not in text and "\x07" not in text
        assert "study \\x1b[2J [/x]" in text and "c\\u202e" in text and "task\\nname" in text
        assert "t\\x1b]0;title\\x07" in text and "[bold]x\\x1b[31m" in text
        assert "[/red] [link=http://x]y" in text
        assert "C:\\dir\\ " in text and "\\\\" not in text and "\\[b]" in text
    assert table.title == "study \x1b[2J [/x]"  # the table given is left as it was
