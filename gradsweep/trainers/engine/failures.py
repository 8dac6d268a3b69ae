"""What a failure says: one line with the place in the user's code, and the traceback.

A trial that raises is recorded with ``error_line`` (``Type: message (file:line in
function)``, the innermost frame that is neither gradsweep's, a library's nor Python's
own: the user's code) and ``exception_traceback`` (the whole of it, clipped to its last
``MAX_TRACEBACK`` characters, where the cause is).
"""

from __future__ import annotations

import sysconfig
import traceback
from pathlib import Path

MAX_TRACEBACK = 20_000

_PACKAGE = Path(__file__).resolve().parents[2]  # gradsweep/
_LIBRARIES = {
    Path(p).resolve()
    for p in {
        sysconfig.get_paths()[name] for name in ("stdlib", "platstdlib", "purelib", "platlib")
    }
}


def _is_users(filename: str) -> bool:
    path = Path(filename).resolve()
    if filename.startswith("<") or path.is_relative_to(_PACKAGE):
        return False
    return not any(path.is_relative_to(library) for library in _LIBRARIES)


def user_frame(exc: BaseException) -> traceback.FrameSummary | None:
    """The innermost frame of ``exc``'s traceback in the user's own code, if any."""
    frames = traceback.extract_tb(exc.__traceback__)
    return next((f for f in reversed(frames) if _is_users(f.filename)), None)


def where(frame: traceback.FrameSummary) -> str:
    try:
        shown = str(Path(frame.filename).resolve().relative_to(Path.cwd()))
    except ValueError:
        shown = frame.filename
    return f"{shown}:{frame.lineno} in {frame.name}"


def error_line(exc: BaseException) -> str:
    """``Type: message``, and where in the user's code it was raised, in one line."""
    text = " ".join(traceback.format_exception_only(type(exc), exc)[-1].split())
    frame = user_frame(exc)
    return f"{text} ({where(frame)})" if frame is not None else text


def clipped_traceback(text: str) -> str:
    """``text`` cut to its last ``MAX_TRACEBACK`` characters (the innermost frames)."""
    if len(text) <= MAX_TRACEBACK:
        return text
    cut = len(text) - MAX_TRACEBACK
    return f"… ({cut:,} characters cut)\n{text[cut:]}"


def exception_traceback(exc: BaseException) -> str:
    return clipped_traceback("".join(traceback.format_exception(exc)))
