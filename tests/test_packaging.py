"""The floors pyproject declares are the versions `make test-min` tests.

`constraints/lowest.txt` pins each dependency at its floor; a floor raised or lowered in one
place and not the other would declare a version nobody tested.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from packaging.version import Version

ROOT = Path(__file__).resolve().parent.parent
REQUIREMENT = re.compile(r"^([A-Za-z0-9_.-]+)(?:\[[^\]]*\])?\s*(.*)$")


def _name(text: str) -> str:
    return re.sub(r"[-_.]+", "-", text).lower()


def _floors(requirements: list[str]) -> dict[str, str | None]:
    """Each requirement's lowest version (its ``>=``), None where it declares none."""
    floors: dict[str, str | None] = {}
    for requirement in requirements:
        match = REQUIREMENT.match(requirement.split(";")[0].strip())
        assert match, requirement
        name, specifiers = match.groups()
        lowest = re.search(r">=\s*([0-9][^,\s]*)", specifiers)
        floors[_name(name)] = lowest.group(1) if lowest else None
    return floors


def _same(pin: str | None, floor: str | None) -> bool:
    """2.13 and 2.13.0 are one version."""
    return pin is not None and floor is not None and Version(pin) == Version(floor)


def _pins() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "constraints" / "lowest.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            name, version = line.split("==")
            pins[_name(name)] = version.strip()
    return pins


def test_every_dependency_has_a_floor_and_the_constraints_pin_it() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    floors = _floors(project["dependencies"])
    assert all(floors.values()), [name for name, floor in floors.items() if floor is None]
    pins = _pins()
    for name, floor in floors.items():
        assert _same(pins.get(name), floor), f"{name}: >={floor}, lowest.txt {pins.get(name)}"


def test_the_extras_floors_are_pinned_too() -> None:
    """The optional problems' and the canon's floors are tested like the core's."""
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    pins = _pins()
    for extra in ("multimnist", "canon"):
        for name, floor in _floors(extras[extra]).items():
            assert _same(pins.get(name), floor), f"[{extra}] {name}: >={floor}, {pins.get(name)}"


def test_no_pin_names_a_package_pyproject_does_not_declare() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = set(_floors(project["dependencies"]))
    for extra in ("multimnist", "canon"):
        declared |= set(_floors(project["optional-dependencies"][extra]))
    assert set(_pins()) <= declared, set(_pins()) - declared
