"""Where the CLI's rich output goes, with one rule for width.

On a terminal, tables fit the terminal as rich lays them out. Anywhere else (a pipe, a
file, a test runner) there is no screen to fit: rich would assume 80 columns and cut or
wrap cells, so each renderable is printed at the width it measures instead.
"""

from __future__ import annotations

from rich.console import Console, RenderableType
from rich.measure import Measurement

# wide enough for any table we print; only the measured width is used
UNBOUNDED = 1_000_000


def output_console(stderr: bool = False) -> Console:
    """The console the CLI prints to (standard output, or standard error)."""
    return Console(stderr=stderr)


def natural_width(console: Console, renderable: RenderableType) -> int:
    """The width a renderable takes when nothing limits it (a table's widest cells)."""
    options = console.options.update(max_width=UNBOUNDED)
    return Measurement.get(console, options, renderable).maximum


def print_table(renderable: RenderableType, console: Console | None = None) -> None:
    """Print a table (or any renderable): as rich lays it out on a terminal, and never
    cut or squeezed elsewhere."""
    console = console or output_console()
    if console.is_terminal:
        console.print(renderable)
        return
    width = console.width
    console.width = max(width, natural_width(console, renderable))
    try:
        console.print(renderable)
    finally:
        console.width = width
