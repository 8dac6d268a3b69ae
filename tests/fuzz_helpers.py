"""Running the command line in-process and checking its promise: exit 0 or a known code,
and on failure one line on stderr, never a traceback."""

from __future__ import annotations

import contextlib
import io
from collections.abc import Sequence
from dataclasses import dataclass

from gradsweep.cli import run


@dataclass(frozen=True)
class Ran:
    code: int
    out: str
    err: str


def run_cli(argv: Sequence[str]) -> Ran:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = run(list(argv))
    return Ran(code, out.getvalue(), err.getvalue())


def assert_kept_its_promise(ran: Ran, argv: Sequence[str], allowed: Sequence[int] = (0, 2)) -> None:
    assert ran.code in allowed, (argv, ran.code, ran.err)
    assert "Traceback" not in ran.out + ran.err, (argv, ran.err)
    if ran.code != 0:
        lines = ran.err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), (argv, ran.err)
