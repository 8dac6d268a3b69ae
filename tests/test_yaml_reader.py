"""Pathological spec files: each is refused with one line and exit 2, in bounded memory.

The catalogue: the known attacks on YAML parsers (alias bombs, self-reference, deep
nesting, unconstructable tags, numbers too long to convert, endless or huge files) and
malformed documents (several documents, control characters, other encodings, keys that
are not strings or appear twice, values of the wrong kind).
"""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import pytest

from gradsweep.cli import run
from gradsweep.yaml_reader import MAX_BYTES, MAX_DEPTH, MAX_VALUES

VALID = "study: s\nproblem: toy\nbudget: {steps: 1}\narms: {grid: {resolution: 1}}\n"


def laughs(levels: int) -> str:
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for level in range(1, levels):
        aliases = ", ".join([f"*a{level - 1}"] * 9)
        lines.append(f"a{level}: &a{level} [{aliases}]")
    return VALID + "extra:\n" + "".join(f"  {line}\n" for line in lines)


def nested_params(depth: int) -> str:
    return VALID.replace(
        "problem: toy", "problem: {name: toy, params: {x: " + "[" * depth + "]" * depth + "}}"
    )


CASES: dict[str, tuple[str | bytes, str]] = {
    "billion laughs": (laughs(9), f"expands to more than {MAX_VALUES:,} values"),
    "quadratic alias fan-out": (
        VALID + "big: &big " + "x" * 50_000 + "\nmany: [" + ", ".join(["*big"] * 2_000) + "]\n",
        "big: unknown key",
    ),
    "self-referential anchor": (VALID + "loop: &a [*a]\n", "an anchor refers to itself"),
    "deep flow nesting": ("x: " + "[" * 5_000 + "]" * 5_000 + "\n", "nest"),
    "deep block nesting": (
        "".join(f"{'  ' * i}k{i}:\n" for i in range(200)) + "  " * 200 + "v: 1\n",
        "nested too deeply",
    ),
    "deep problem params": (nested_params(MAX_DEPTH + 1), "nested too deeply"),
    "integer of 10,000 digits": (VALID + "seeds: [" + "9" * 10_000 + "]\n", "cannot be read"),
    "python object tag": ("study: !!python/object/apply:os.system ['true']\n", "invalid YAML"),
    "python module tag": ("study: !!python/module:os\n", "invalid YAML"),
    "python name tag": ("study: !!python/name:os.system\n", "invalid YAML"),
    "unknown local tag": ("study: !custom x\n", "invalid YAML"),
    "binary tag with garbage": ("study: !!binary '%%%'\n", "study: must be a string"),
    "several documents": ("study: a\n---\nstudy: b\n", "but found another document"),
    "NUL byte": (b"study: a\x00\n", "control characters are not allowed"),
    "escape sequence in a key": ("\x1b[31mred: 1\n", "invalid YAML"),
    "UTF-16": ("study: s\n".encode("utf-16"), "not UTF-8 text"),
    "Latin-1": ("study: caf\xe9\n".encode("latin-1"), "not UTF-8 text"),
    "larger than a spec": ("# " + "x" * MAX_BYTES + "\n" + VALID, "larger than a spec can be"),
    "empty": ("", "the spec is empty"),
    "only comments": ("# nothing\n# here\n", "the spec is empty"),
    "a list at the top": ("- study: s\n", "a spec is a mapping"),
    "a scalar at the top": ("just text\n", "a spec is a mapping"),
    "integer keys": ("1: 2\n3: 4\n", "required"),
    "unhashable key": ("? [1, 2]\n: 3\n", "found unhashable key"),
    "key written twice": (VALID + "study: t\n", "study: listed twice"),
    "tab indentation": ("study: s\narms:\n\tgrid: {resolution: 1}\n", "invalid YAML"),
    "unclosed bracket": ("study: s\nseeds: [0, 1\n", "invalid YAML"),
    "unclosed quote": ('study: "s\n', "invalid YAML"),
    "infinite float": (VALID + "seeds: [0]\nmax_concurrent: .inf\n", "max_concurrent"),
    "not a number": (VALID.replace("steps: 1", "steps: .nan"), "budget.steps"),
    "a date for a name": (VALID.replace("study: s", "study: 2024-01-01"), "must be a string"),
    "a set for the seeds": (VALID + "seeds: !!set {1, 2}\n", "seeds: must be a list"),
    "a 10,000-character key": (VALID + "k" * 10_000 + ": 1\n", "invalid YAML"),
    "a 500-character key": (VALID + "k" * 500 + ": 1\n", "unknown key"),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_a_pathological_spec_is_one_line_and_exit_2(
    name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    content, message = CASES[name]
    path = tmp_path / "spec.yaml"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    tracemalloc.start()
    try:
        code = run(["spec", "check", str(path)])
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    err = capsys.readouterr().err
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {path}: "), err
    assert message in lines[0]
    assert len(lines[0]) < 400 and "\x1b" not in lines[0]  # no runaway or terminal codes
    assert peak < 64 * 2**20  # bounded memory: the file's size, not its expansion


@pytest.mark.parametrize("target", ["/dev/zero", "directory"])
def test_what_is_not_a_spec_file(
    target: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = str(tmp_path) if target == "directory" else target
    assert run(["spec", "check", path]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith(f"error: {path}: ")


def test_anchors_and_merge_keys_that_stay_small_are_fine(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "spec.yaml"
    path.write_text(
        "study: s\nproblem: toy\nbudget: &b {steps: 1}\n"
        "arms:\n  grid: &g {resolution: 1}\n  static: {weights: [[1, 1]]}\n"
        "resources: {<<: {cpus_per_trial: 1}, gpus_per_trial: 0}\n"
    )
    assert run(["spec", "check", str(path)]) == 0, capsys.readouterr().err
