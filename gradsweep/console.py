"""Where the CLI's rich output goes, with one rule for width and one for safety.

On a terminal, tables fit the terminal as rich lays them out. Anywhere else (a pipe, a
file, a test runner) there is no screen to fit: rich would assume 80 columns and cut or
wrap cells, so each renderable is printed at the width it measures instead.

Text a user supplied (study and task names, failure reasons, keys) reaches the terminal
as it is written nowhere else: an escape sequence in a task name would clear the screen,
a right-to-left mark would reverse what follows it, a newline would break a table's row
and rich markup (``[/x]``) would be read as markup. So every table is printed with its
control and format characters shown escaped (``\\x1b``, ``\\u202e``, ``\\n``) and its
text taken literally; lines printed outside a table go through :func:`visible`.
"""

from __future__ import annotations

import copy
from dataclasses import replace

from rich.console import Console, RenderableType
from rich.measure import Measurement
from rich.style import Style, StyleType
from rich.table import Table
from rich.text import Text

# wide enough for any table we print; only the measured width is used
UNBOUNDED = 1_000_000
# a failure reason or a table cell longer than this is cut (with where to read it whole):
# a 200,000-character reason would otherwise be one line as wide as a book
LONG_TEXT = 500


def output_console(stderr: bool = False) -> Console:
    """The console the CLI prints to (standard output, or standard error)."""
    return Console(stderr=stderr)


def visible(text: str) -> str:
    """The text with every character a terminal would not print as a glyph (ESC, NUL,
    newline, tab, U+202E and the other format characters, non-ASCII spaces) written as
    its Python escape (``\\x1b``, ``\\u202e``); printable text is left as it is."""
    if text.isprintable():  # the common case, at C speed
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def clip(text: str, limit: int = LONG_TEXT) -> str:
    """The text cut to ``limit`` characters, saying how many were left out (the caller says
    where to read them whole); shorter text as it is."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… ({len(text) - limit:,} more characters)"


def is_clipped(text: str, limit: int = LONG_TEXT) -> bool:
    return len(text) > limit


def safe_renderable(renderable: RenderableType) -> RenderableType:
    """A table (title, caption, headers, cells, nested tables) or a text with its
    characters shown as :func:`visible` writes them and no string read as markup; anything
    else as it is. The renderable given is left unchanged."""
    if isinstance(renderable, str):  # Text, not escaped markup: rich's escape doubles a
        return Text(visible(renderable))  # trailing backslash
    if isinstance(renderable, Text):
        if renderable.plain.isprintable():
            return renderable
        return Text(
            visible(renderable.plain),
            style=renderable.style,
            justify=renderable.justify,
            overflow=renderable.overflow,
            no_wrap=renderable.no_wrap,
            end=renderable.end,
        )
    if isinstance(renderable, Table):
        return _safe_table(renderable)
    return renderable


def _safe_table(table: Table) -> Table:
    safe = copy.copy(table)
    safe.title = _annotation(table.title, table.title_style, "table.title")
    safe.caption = _annotation(table.caption, table.caption_style, "table.caption")
    safe.columns = [
        replace(
            column,
            header=safe_renderable(column.header),
            footer=safe_renderable(column.footer),
            _cells=[safe_renderable(cell) for cell in column._cells],
        )
        for column in table.columns
    ]
    return safe


def _annotation(text: str | Text | None, style: StyleType | None, default: str) -> Text | None:
    """A title or caption made safe, styled as rich styles a string one (it leaves a
    Text's style to the Text)."""
    if text is None:
        return None
    if isinstance(text, Text):
        safe = safe_renderable(text)
        return safe if isinstance(safe, Text) else text
    return Text(visible(text), style=Style.pick_first(style, default))


def natural_width(console: Console, renderable: RenderableType) -> int:
    """The width a renderable takes when nothing limits it (a table's widest cells)."""
    options = console.options.update(max_width=UNBOUNDED)
    return Measurement.get(console, options, renderable).maximum


def print_table(renderable: RenderableType, console: Console | None = None) -> None:
    """Print a table (or any renderable), its user-supplied text made safe
    (:func:`safe_renderable`): as rich lays it out on a terminal, and never cut or
    squeezed elsewhere."""
    console = console or output_console()
    renderable = safe_renderable(renderable)
    if console.is_terminal:
        console.print(renderable)
        return
    width = console.width
    console.width = max(width, natural_width(console, renderable))
    try:
        console.print(renderable)
    finally:
        console.width = width
