"""``make demo``: a real study on the embedded defaults (local Ray, SQLite).

Runs ``configs/toy-demo.yaml`` (the paper's toy with three tasks, every arm) into
``demo.db`` and ends with where the results are and how to look at them.
"""

from __future__ import annotations

import sys
from pathlib import Path

from gradsweep.console import output_console
from gradsweep.errors import GradsweepError
from gradsweep.search.launch import LaunchOptions, launch
from gradsweep.spec import load_spec
from gradsweep.status import print_status, study_statuses
from gradsweep.storage.engine import open_engine
from gradsweep.storage.errors import StorageError

SPEC = Path(__file__).resolve().parents[1] / "configs" / "toy-demo.yaml"
DB_URL = "sqlite:///demo.db"


def main() -> int:
    console = output_console()
    console.print(f"[bold]gradsweep demo[/bold]: {SPEC.name} on local Ray, results in {DB_URL}")
    try:
        spec = load_spec(SPEC)
        engine = open_engine(DB_URL)
        outcome = launch(spec, engine, LaunchOptions())
    except (GradsweepError, StorageError) as exc:
        console.print(f"[red]error:[/red] {exc}")
        return 2
    print_status(study_statuses(engine, outcome.study), console)
    console.print(
        f"\nResults are in [bold]demo.db[/bold] (SQLite). Look at them with "
        "(after `source .venv/bin/activate`):\n"
        f"  gradsweep status {outcome.study} --db {DB_URL}\n"
        f"  gradsweep compare {outcome.study} --db {DB_URL}\n"
        f"  gradsweep dashboard --db {DB_URL}   (then open http://127.0.0.1:8050)\n"
        f"  gradsweep report {outcome.study} --db {DB_URL} --out report.html\n"
        "  sqlite3 demo.db 'SELECT key, normalized_loss FROM gs_trials ORDER BY normalized_loss'\n"
        "Run `make demo` again and nothing is re-run (every trial is complete); "
        "delete demo.db to start afresh.",
        soft_wrap=True,  # whole command lines, to copy and paste
    )
    return 130 if outcome.interrupted else 0


if __name__ == "__main__":
    sys.exit(main())
