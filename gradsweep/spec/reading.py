"""Reading a spec's YAML: size, depth, aliases and duplicate keys checked first."""

from __future__ import annotations

from typing import Any

import yaml

from gradsweep.spec.base import SpecError
from gradsweep.spec.messages import location
from gradsweep.yaml_reader import UnreadableYaml, read_yaml


def check_duplicate_keys(node: yaml.Node, path: tuple[int | str, ...], source: str) -> None:
    """PyYAML keeps the last of two equal keys silently; a spec names each key once."""
    if isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            check_duplicate_keys(item, (*path, i), source)
    elif isinstance(node, yaml.MappingNode):
        lines: dict[str, int] = {}
        for key, value in node.value:
            name = str(key.value)
            if name in lines:
                raise SpecError(
                    f"{source}: {location((*path, name))}: listed twice "
                    f"(lines {lines[name]} and {key.start_mark.line + 1})"
                )
            lines[name] = key.start_mark.line + 1
            check_duplicate_keys(value, (*path, name), source)


def read_spec_yaml(text: str, source: str) -> Any:
    """The document's data; size, depth, aliases and duplicate keys checked first."""
    try:
        data, root = read_yaml(text)
    except UnreadableYaml as exc:
        raise SpecError(f"{source}: {exc}") from None
    if root is not None:
        check_duplicate_keys(root, (), source)
    return data
