"""The storage layer's user-facing error: one clear line, turned into exit code 2 by the CLI."""

from __future__ import annotations

import re

# SQLAlchemy appends the statement and a link to its error reference to every message it
# wraps; a user reading one line needs neither (GRADSWEEP_DEBUG=1 shows the traceback).
_SQL_ECHO = re.compile(r"\[SQL: .*?\](\s*\[parameters: .*?\])?", re.DOTALL)
_BACKGROUND = re.compile(r"\(Background on this error at: [^)]*\)")
_WRAPPER = re.compile(r"^\(([\w.]+)\)\s*")  # "(sqlite3.OperationalError) no such table: x"


class StorageError(Exception):
    """A bad URL, an unreachable server, a schema newer than the code, an unknown study."""


def reason(exc: BaseException) -> str:
    """What the database (or SQLAlchemy) said, as one clean line: the driver's own message
    where there is one, without the SQL it ran, its parameters or SQLAlchemy's link."""
    original = getattr(exc, "orig", None)
    text = str(original if original is not None else exc)
    text = _BACKGROUND.sub("", _SQL_ECHO.sub("", text))
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    first = _WRAPPER.sub("", lines[0]) if lines else ""
    # PostgreSQL's DETAIL and HINT say which object is in the way, and what to do
    said = [first, *(line for line in lines[1:] if line.startswith(("DETAIL:", "HINT:")))]
    return "; ".join(said) if first else type(original if original is not None else exc).__name__
