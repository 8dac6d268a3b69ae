"""A problem or balancer named by import path is called only when it was written to be:
a MultitaskProblem subclass, a ``@problem_factory``, a ``gradsweep.problems`` entry point,
a Balancer subclass. Everything else is refused before it is called."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator
from pathlib import Path
from unittest import mock

import pytest

import gradsweep
from gradsweep.errors import BalancerError, ProblemError
from gradsweep.spec import parse_spec, validate_spec
from gradsweep.trainers import MultitaskProblem, ToyRegression, make_problem
from gradsweep.trainers.balancers.catalog import resolve
from gradsweep.trainers.plugins import (
    PROBLEM_GROUP,
    ImportPathError,
    import_attribute,
    is_marked_factory,
    problem_factory,
    registered_problems,
)
from gradsweep.trainers.registry import resolve_problem
from tests.trainers import user_problem

ENTRY_MODULE = "gradsweep_entry_point_fixture"
FACTORY_SOURCE = """
from gradsweep.trainers import ToyRegression

CALLS = []

def make(tasks=2):
    CALLS.append(tasks)
    return ToyRegression(tasks=tasks, train_samples=40, test_samples=10, batch_size=10)

def other():
    raise AssertionError("an unregistered function of the same module was called")
"""


@pytest.fixture
def installed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A real installed distribution on sys.path whose metadata registers one problem in
    the ``gradsweep.problems`` group, as ``pip install`` of a package declaring
    ``[project.entry-points."gradsweep.problems"]`` would leave it."""
    (tmp_path / f"{ENTRY_MODULE}.py").write_text(FACTORY_SOURCE)
    info = tmp_path / "gradsweep_entry_point_fixture-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: gradsweep-entry-point-fixture\nVersion: 0.1\n"
    )
    (info / "entry_points.txt").write_text(
        f"[{PROBLEM_GROUP}]\nfixture-toy = {ENTRY_MODULE}:make\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, ENTRY_MODULE, raising=False)
    yield ENTRY_MODULE
    sys.modules.pop(ENTRY_MODULE, None)


def test_an_entry_point_names_a_problem(installed: str) -> None:
    assert registered_problems()["fixture-toy"] == f"{installed}:make"
    problem = make_problem("fixture-toy", {"tasks": 10})
    assert len(problem.tasks) == 10 and importlib.import_module(installed).CALLS == [10]
    assert resolve_problem(f"{installed}:make") is importlib.import_module(installed).make
    with pytest.raises(ProblemError, match=r"other is a function, not a problem factory"):
        resolve_problem(f"{installed}:other")
    with pytest.raises(ProblemError, match=r"use one of digits, multimnist, nyuv2, toy, fixture"):
        resolve_problem("fixture-nope")
    spec = parse_spec("study: s\nproblem: fixture-toy\nbudget: {steps: 5}\narms: {random: {n: 2}}")
    assert validate_spec(spec, "s.yaml") == 2


def test_a_marked_factory_and_a_subclass_are_accepted() -> None:
    assert resolve_problem("tests.trainers.user_problem:make_problem") is user_problem.make_problem
    assert resolve_problem("tests.trainers.user_problem:Nameless") is user_problem.Nameless
    assert gradsweep.problem_factory is problem_factory  # `from gradsweep import …`
    assert is_marked_factory(user_problem.make_problem)


@pytest.mark.parametrize(
    ("name", "said"),
    [
        ("shutil:rmtree", "shutil.rmtree is a function, not a problem factory"),
        ("os:system", "os.system is a built-in function, not a problem factory"),
        ("subprocess:run", "subprocess.run is a function, not a problem factory"),
        ("builtins:exec", "builtins.exec is a built-in function"),
        ("pathlib:Path", "pathlib.Path is a class, not a MultitaskProblem subclass"),
        ("tests.trainers.user_problem:unmarked_factory", "unmarked_factory is a function"),
        ("tests.trainers.user_problem:ExplodingToy.__init__", "not an import path"),
        ("gradsweep.trainers.problems.base:MultitaskProblem", "is abstract"),
        ("os:environ", "os.environ is a _Environ, not callable"),
        ("os.path:sep", "os.path.sep is a str, not callable"),
        ("../etc:passwd", "not an import path"),
        ("a b:c", "not an import path"),
        ("tests.trainers.broken_balancer_module:X", "importing tests.trainers.broken_balancer_"),
        ("tests.trainers.user_problem:nope", "has no attribute 'nope'"),
    ],
)
def test_anything_else_is_refused_before_it_is_called(name: str, said: str) -> None:
    with pytest.raises(ProblemError) as error:
        resolve_problem(name)
    text = str(error.value)
    assert text.startswith(f"problem {name!r}: ") and said in text and "\n" not in text


def test_a_look_alike_mark_is_no_mark() -> None:
    """An object answering every attribute (a mock, a module's __getattr__) carries no mark,
    and reading it runs none of its code."""
    anything = mock.MagicMock()
    assert not is_marked_factory(anything) and anything.mock_calls == []

    def spelt_alike() -> ToyRegression:
        raise AssertionError("called")

    spelt_alike.__gradsweep_problem_factory__ = True  # type: ignore[attr-defined]
    assert not is_marked_factory(spelt_alike)
    with pytest.raises(TypeError, match="marks a callable"):
        problem_factory(3)  # type: ignore[type-var]


def test_an_import_path_is_checked_before_anything_is_imported() -> None:
    assert issubclass(user_problem.Nameless, MultitaskProblem)
    for malformed in ("no colon", "mod:", ":attr", "a:b:c", "a..b:c", "-m:x", ".x:y"):
        with pytest.raises(ImportPathError, match="not an import path"):
            import_attribute(malformed)


@pytest.mark.parametrize(
    "name", ["os:system", "shutil:rmtree", "builtins:exec", "tests.trainers.user_problem:Nameless"]
)
def test_a_balancer_must_be_a_balancer_subclass(name: str) -> None:
    with pytest.raises(BalancerError) as error:
        resolve(name)
    assert "not a subclass of gradsweep.trainers.Balancer, so it was not called" in str(error.value)
