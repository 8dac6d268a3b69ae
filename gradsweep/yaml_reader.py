"""Reading a spec's YAML with bounded size, depth and expansion, and one-line errors.

A spec is a few kilobytes. What is far beyond that is a mistake or an attack, and the
known attacks on YAML parsers are refused before anything walks the data:

- alias bombs ("billion laughs": nine anchors of nine aliases each expand to 9⁹ values;
  parsing is instant, walking the result is not) and an anchor used inside itself;
- deep nesting (PyYAML's composer and constructor recurse: a few hundred brackets exhaust
  Python's stack);
- numbers too long to convert (Python refuses integers of over 4,300 digits);
- files too large to be a spec, or that never end (``/dev/zero``);
- several documents in one stream, keys that are not strings, keys written twice.

libyaml's parser is used where PyYAML has it (several times faster), and the document
is composed once: the checks walk the node graph, the data is constructed from it.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

MAX_BYTES = 128 * 1024  # a spec with thousands of explicit weightings still fits
MAX_DEPTH = 32  # the deepest spec field is 5 levels down; problem params get the rest
MAX_VALUES = 100_000  # scalars and collections, counting every alias's expansion

_Base: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class Loader(_Base):  # type: ignore[misc]
    """PyYAML's safe loader that also reads ``1e-08`` as a number (YAML 1.2 and JSON do;
    YAML 1.1 wants ``1.0e-08``): a spec's ``lr: 1e-5``, and the stored canonical JSON of
    any small float, read back as what was written."""


Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)[eE][-+]?[0-9]+$"),
    list("-+0123456789."),
)


class UnreadableYaml(Exception):
    """Why a text is not a usable spec document; the message is one line without a source."""


def read_file(path: Path) -> str:
    """The file's text, refusing more than ``MAX_BYTES`` without reading further."""
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_BYTES + 1)
    except OSError as exc:
        raise UnreadableYaml(f"cannot read: {exc.strerror or exc}") from None
    if len(data) > MAX_BYTES:
        raise UnreadableYaml(f"larger than a spec can be (at most {MAX_BYTES // 1024} KiB)")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        reason = f"cannot read: not UTF-8 text ({exc.reason} at byte {exc.start})"
        raise UnreadableYaml(reason) from None


def _problem(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    return f"invalid YAML{where}: {problem}"


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    return []


def check_shape(root: yaml.Node) -> None:
    """Depth (the longest path) and size (every alias expanded), without recursion and in
    time linear in the document, whatever its aliases."""
    sizes: dict[int, tuple[int, int]] = {}  # id → (expanded values, height)
    visiting: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        key = id(node)
        if children_done:
            visiting.discard(key)
            parts = [sizes[id(child)] for child in _children(node)]
            values = 1 + sum(size for size, _ in parts)
            height = 1 + max((h for _, h in parts), default=0)
            if values > MAX_VALUES:
                raise UnreadableYaml(
                    f"expands to more than {MAX_VALUES:,} values (aliases of aliases?)"
                )
            if height > MAX_DEPTH:
                raise UnreadableYaml(f"nested too deeply (at most {MAX_DEPTH} levels)")
            sizes[key] = (values, height)
            continue
        if key in sizes:
            continue
        if key in visiting:
            raise UnreadableYaml("an anchor refers to itself (&a … *a inside it)")
        visiting.add(key)
        stack.append((node, True))
        if len(visiting) > MAX_DEPTH:
            raise UnreadableYaml(f"nested too deeply (at most {MAX_DEPTH} levels)")
        stack.extend((child, False) for child in _children(node) if id(child) not in sizes)


def read_yaml(text: str) -> tuple[Any, yaml.Node | None]:
    """The document's data and its root node (None for an empty document)."""
    if len(text) > MAX_BYTES:
        raise UnreadableYaml(f"larger than a spec can be (at most {MAX_BYTES // 1024} KiB)")
    loader = Loader(text)
    try:
        root = loader.get_single_node()
        if root is None:
            return None, None
        check_shape(root)
        return loader.construct_document(root), root
    except yaml.YAMLError as exc:
        raise UnreadableYaml(_problem(exc)) from None
    except RecursionError:
        raise UnreadableYaml(f"nested too deeply (at most {MAX_DEPTH} levels)") from None
    except ValueError as exc:  # e.g. an integer of more than 4,300 digits
        raise UnreadableYaml(f"a value cannot be read: {str(exc).split(':')[0]}") from None
    finally:
        loader.dispose()
