"""Shared by the benchmark scripts: describe the machine and update one section of RESULTS.md."""

from __future__ import annotations

import os
import platform
import re
import shlex
import sys
from pathlib import Path

RESULTS = Path(__file__).with_name("RESULTS.md")
HEADER = "# Benchmark results\n\nEach section is rewritten by the script it names.\n"


def machine() -> str:
    """One line: CPU model, cores, memory, Python."""
    cpu = platform.processor() or "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        mem_kb = int(Path("/proc/meminfo").read_text().split()[1])
        memory = f"{mem_kb / 2**20:.0f} GiB"
    except OSError:
        memory = "unknown memory"
    return f"{cpu}, {os.cpu_count()} cores, {memory}, Python {platform.python_version()}"


def command_line(module: str) -> str:
    """How this benchmark was run, for RESULTS.md: ``python -m MODULE`` and its arguments."""
    return " ".join(["python -m", module, *(shlex.quote(a) for a in sys.argv[1:])])


def update_section(title: str, body: str) -> None:
    """Replace (or append) the ``## title`` section of RESULTS.md with ``body``."""
    text = RESULTS.read_text() if RESULTS.exists() else HEADER
    section = f"## {title}\n\n{body.strip()}\n"
    pattern = re.compile(rf"^## {re.escape(title)}\n.*?(?=^## |\Z)", re.S | re.M)
    if pattern.search(text):
        text = pattern.sub(lambda _: section + "\n", text).rstrip() + "\n"
    else:
        text = text.rstrip() + "\n\n" + section
    RESULTS.write_text(text)


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def start_local_ray(cpus: int) -> None:
    """A fresh local Ray with ``cpus`` CPUs, quiet, whose workers import from here."""
    import logging

    import ray

    from gradsweep.search.launch import worker_python_path

    ray.init(
        address="local",
        num_cpus=cpus,
        include_dashboard=False,
        log_to_driver=False,
        logging_level=logging.ERROR,
        runtime_env={"env_vars": {"PYTHONPATH": worker_python_path()}},
    )


def verdict(what: str, figure: float, target: float, higher_is_better: bool, unit: str = "") -> str:
    """``what: figure against the target — met / not met``, the verdict computed from the
    figure (never written by hand)."""
    met = figure >= target if higher_is_better else figure <= target
    sign = "≥" if higher_is_better else "≤"
    return (
        f"{what}: target {sign} {_number(target)}{unit}, measured {_number(figure)}{unit} — "
        f"**{'met' if met else 'not met'}**"
    )


def _number(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.3g}"


def targets(lines: list[str]) -> str:
    """The targets block of a section: one verdict per line."""
    return "Targets:\n\n" + "\n".join(f"- {line}" for line in lines)
