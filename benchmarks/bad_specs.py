"""How fast and how lean `gradsweep spec check` refuses each pathological spec file.

Each case of the catalogue in tests/test_yaml_reader.py is written to a file and checked
by the real command in its own process: exit code, wall seconds (the process's start
included) and peak memory (max RSS of the process).

    python -m benchmarks.bad_specs [--no-write]
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks._results import (
    command_line,
    machine,
    markdown_table,
    targets,
    update_section,
    verdict,
)
from tests.test_yaml_reader import CASES

SECONDS = 2.0
MEGABYTES = 256


def measure(path: Path) -> tuple[int, float, float]:
    """Exit code, wall seconds, peak memory in MiB of one `spec check`."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "gradsweep.cli", "spec", "check", str(path)],
        capture_output=True,
        timeout=120,
    )
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return done.returncode, seconds, max(peak, before) / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    rows, worst_seconds, worst_memory, codes = [], 0.0, 0.0, set()
    with tempfile.TemporaryDirectory() as folder:
        for name, (content, _) in sorted(CASES.items()):
            path = Path(folder) / "spec.yaml"
            if isinstance(content, bytes):
                path.write_bytes(content)
            else:
                path.write_text(content, encoding="utf-8")
            code, seconds, memory = measure(path)
            codes.add(code)
            worst_seconds, worst_memory = max(worst_seconds, seconds), max(worst_memory, memory)
            rows.append([name, str(code), f"{seconds:.2f}", f"{memory:.0f}"])
            print(rows[-1], flush=True)
    table = markdown_table(["case", "exit", "seconds", "peak MiB (so far)"], rows)
    print(table)
    if args.no_write:
        return
    checks = [
        verdict("slowest refusal", worst_seconds, SECONDS, False, " s"),
        verdict("largest peak memory", worst_memory, MEGABYTES, False, " MiB"),
        verdict("cases answered with exit 2", float(codes == {2}), 1.0, True),
    ]
    update_section(
        "Pathological spec files",
        f"`gradsweep spec check` on each of the {len(CASES)} cases of "
        "tests/test_yaml_reader.py, one process each (Python's start and the package's "
        "imports included). Peak memory is the largest max RSS of the processes so far.\n\n"
        f"Machine: {machine()}\n\nCommand: `{command_line('benchmarks.bad_specs')}`\n\n"
        f"{table}\n\n{targets(checks)}",
    )


if __name__ == "__main__":
    main()
