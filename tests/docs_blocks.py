"""The code blocks of README.md and docs/*.md, each with what the docs test does with it.

Every fenced block is preceded by a marker line ``<!-- docs: KIND -->`` (invisible when the
Markdown is rendered); a block without one fails the suite, so a new block cannot drift
unchecked. The kinds:

- ``run`` — shell commands run for real, in a folder holding a small real ``demo.db``
  (exit 0 expected, or ``run exit=N``);
- ``parse`` — commands too long or too remote to run here (whole studies, clusters, GPUs):
  each ``gradsweep`` command is parsed by the real command line (commands, options and
  their values must exist and type-check), every other line by ``bash -n``;
- ``usage`` — command synopses: every command and ``--option`` shown must exist;
- ``spec`` — a whole spec, validated by ``load_spec`` (problem built); ``yaml`` — YAML that
  must parse;
- ``python`` — run in the same folder as ``run``; ``fragment`` — Python that must compile;
- ``sql`` — run against ``demo.db``;
- ``errors`` — error lines, each reproduced from its input (tests/test_docs.py holds them);
- ``diagram`` — every module or folder it names must exist in the package;
- ``verdicts`` — ``$ gradsweep launch SPEC …`` and ``$ gradsweep compare STUDY --format
  verdicts …`` and the verdict lines they printed: the study is run again and its verdicts
  must be those lines (the compute claim's line, which measures wall time, by its outcome);
- ``text`` — shown as is (data layouts, outputs of studies too long for the suite).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
KINDS = ("run", "parse", "usage", "spec", "yaml", "python", "fragment", "sql", "errors",
         "diagram", "verdicts", "text")  # fmt: skip
MARKER = re.compile(r"^<!-- docs: (?P<kind>\w+)(?: exit=(?P<exit>\d+))? -->$")
FENCE = re.compile(r"^```(?P<lang>\w*)\s*$")


@dataclass(frozen=True)
class Block:
    path: str  # relative to the repository
    line: int  # of the opening fence
    lang: str
    kind: str | None  # None: no marker (a failure)
    exit_code: int
    text: str

    @property
    def where(self) -> str:
        return f"{self.path}:{self.line}"


def doc_files() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def blocks(path: Path) -> list[Block]:
    lines = path.read_text(encoding="utf-8").splitlines()
    found, i = [], 0
    while i < len(lines):
        fence = FENCE.match(lines[i])
        if fence is None:
            i += 1
            continue
        end = next(j for j in range(i + 1, len(lines)) if lines[j].startswith("```"))
        marker = MARKER.match(lines[i - 1].strip()) if i > 0 else None
        found.append(
            Block(
                path=str(path.relative_to(ROOT)),
                line=i + 1,
                lang=fence["lang"],
                kind=marker["kind"] if marker else None,
                exit_code=int(marker["exit"] or 0) if marker else 0,
                text="\n".join(lines[i + 1 : end]),
            )
        )
        i = end + 1
    return found


def all_blocks() -> list[Block]:
    return [block for path in doc_files() for block in blocks(path)]


def commands(text: str) -> list[str]:
    """Shell command lines: continuations joined, comments and blank lines dropped."""
    joined, current = [], ""
    for raw in text.splitlines():
        line = raw.rstrip()
        if line.endswith("\\"):
            current += line[:-1] + " "
            continue
        current += line
        stripped = strip_comment(current).strip()
        if stripped:
            joined.append(stripped)
        current = ""
    return joined


def strip_comment(line: str) -> str:
    """A line without its trailing ``# comment`` (a ``#`` inside quotes is kept)."""
    quote = None
    for i, char in enumerate(line):
        if char in "'\"" and quote in (None, char):
            quote = None if quote == char else char
        elif char == "#" and quote is None and (i == 0 or line[i - 1].isspace()):
            return line[:i]
    return line
