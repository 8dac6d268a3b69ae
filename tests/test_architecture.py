"""docs/architecture.md's map, held against the real import graph.

Every import of the package is read from the source (module level and inside functions;
those under ``if TYPE_CHECKING:`` run never and are left out): the layer rules of the
map's table must hold, the diagram's arrows must be real imports, no two modules may
import each other round a circle, and trainers/ must import with torch, numpy and
scikit-learn alone, as it runs on a GPU machine without the rest.
"""

from __future__ import annotations

import ast
import inspect
import re
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

from gradsweep.trainers.balancers.catalog import built_in

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "gradsweep"
MAP = ROOT / "docs" / "architecture.md"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _type_checking_nodes(tree: ast.AST) -> set[int]:
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and ast.unparse(node.test).endswith("TYPE_CHECKING"):
            for child in node.body:
                skipped.update(id(n) for n in ast.walk(child))
    return skipped


def imported_names(path: Path) -> list[str]:
    """Every module an import statement of this file names, or may name (``from a import
    b`` names ``a`` and ``a.b``), at any depth of the file."""
    tree = ast.parse(path.read_text())
    skipped = _type_checking_nodes(tree)
    package = module_name(path) if path.name == "__init__.py" else module_name(path.parent)
    names: list[str] = []
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parts, *([base] if base else [])])
            names.append(base)
            names.extend(f"{base}.{alias.name}" for alias in node.names)
    return names


def import_graph() -> dict[str, set[str]]:
    """Module → the package's modules it imports (migrations are Alembic's scripts)."""
    files = {module_name(p): p for p in PACKAGE.rglob("*.py") if "migrations" not in p.parts}
    return {
        module: {name for name in imported_names(path) if name in files and name != module}
        for module, path in files.items()
    }


def room(module: str) -> str:
    """``gradsweep.results.study`` → ``results/``; ``gradsweep.cli`` → ``cli.py``."""
    parts = module.split(".")
    if len(parts) == 1:
        return "__init__.py"
    return f"{parts[1]}/" if (PACKAGE / parts[1]).is_dir() else f"{parts[1]}.py"


def entry(module: str) -> str:
    """``gradsweep.storage.engine`` → ``storage/engine.py`` (how the map names one file)."""
    return "/".join(module.split(".")[1:]) + ".py"


def layer_rules() -> dict[str, set[str]]:
    """The map's table: each room (or rooms) → what it may import."""
    text = MAP.read_text()
    section = text.split("## Layer rules", 1)[1].split("\n## ", 1)[0]
    rules: dict[str, set[str]] = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 2 or not cells[0].startswith("`"):
            continue
        allowed = set(re.findall(r"`([^`]+)`", cells[1]))
        for name in re.findall(r"`([^`]+)`", cells[0]):
            rules[name] = allowed
    return rules


def test_every_room_has_a_rule() -> None:
    rooms = {room(m) for m in import_graph()} - {"__init__.py"}
    assert sorted(rooms - set(layer_rules())) == []


def test_each_room_imports_only_what_the_map_allows() -> None:
    rules = layer_rules()
    broken = []
    for module, targets in import_graph().items():
        own = room(module)
        for target in targets:
            there = room(target)
            if there == own or own not in rules:
                continue
            if there not in rules[own] and entry(target) not in rules[own]:
                broken.append(f"{module} imports {target}")
    assert sorted(broken) == []


def test_no_module_imports_itself_round_a_circle() -> None:
    graph = import_graph()
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    circles: list[list[str]] = []

    def visit(node: str) -> None:  # Tarjan's strongly connected components
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in sorted(graph[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                circles.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    # a package's __init__ re-exporting its own modules is not a circle of the design
    circles = [c for c in circles if not all(m.startswith(c[0]) for m in c)]
    assert circles == []


def test_the_diagrams_arrows_are_real_imports() -> None:
    block = MAP.read_text().split("<!-- docs: diagram -->", 1)[1].split("```")[1]
    between: dict[str, set[str]] = defaultdict(set)
    for module, targets in import_graph().items():
        for target in targets:
            between[room(module)].add(room(target))
    arrows = []
    for line in block.splitlines():
        if "─►" not in line:
            continue
        named = [re.findall(r"\w+(?:/|\.py)", piece) for piece in line.split("─►")]
        assert all(named), f"each arrow joins two rooms: {line!r}"
        arrows.extend((left[-1], right[0]) for left, right in zip(named, named[1:], strict=False))
    assert arrows, "the diagram draws no arrow"
    missing = [f"{a} ─► {b}" for a, b in arrows if b not in between[a]]
    assert missing == []


BLOCKER = """
import importlib, importlib.abc, pkgutil, sys
from pathlib import Path
OURS = (str(Path("gradsweep").resolve()), str(Path("examples").resolve()))
ALLOWED = {"torch", "numpy", "sklearn", "gradsweep", "examples"}

def importer():
    frame = sys._getframe(2)
    while frame and ("importlib" in frame.f_code.co_filename or
                     frame.f_code.co_filename.startswith("<frozen")):
        frame = frame.f_back
    return frame.f_code.co_filename if frame else ""

class Refuse(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        top = name.split(".")[0]
        if top in sys.stdlib_module_names or top in ALLOWED:
            return None
        if importer().startswith(OURS):  # our code asked for it, not torch's own
            raise ImportError(f"{importer()} imported {name}")
        return None

sys.meta_path.insert(0, Refuse())
import gradsweep.trainers as trainers
for info in pkgutil.walk_packages(trainers.__path__, "gradsweep.trainers."):
    importlib.import_module(info.name)
importlib.import_module("examples.inverse_norm_balancer")
print("ok")
"""


def test_trainers_import_with_torch_numpy_and_scikit_learn_alone() -> None:
    """What the GPU machine has: every module of trainers/ (and the example plug-in)
    imports with every other third-party package refused to the package's own code
    (torch's and scikit-learn's own imports pass)."""
    done = subprocess.run(
        [sys.executable, "-c", BLOCKER], capture_output=True, text=True, timeout=300, cwd=ROOT
    )
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-2000:]


def test_the_map_names_every_file_of_the_package() -> None:
    """Each row names a folder's files (``trainers/balancers/base.py``, then ``static.py``…);
    every module of the package (a package's ``__init__`` when it holds more than
    re-exports) is in some row, and every file a row names exists."""
    text = MAP.read_text().split("## Packages and their files", 1)[1].split("\n## ", 1)[0]
    named: set[str] = set()
    for line in text.splitlines():
        if not line.startswith("| `"):
            continue
        folder = ""
        for name in re.findall(r"`([\w/.]+\.py)`", line.split("|")[1]):
            if "/" in name:
                folder = name.rsplit("/", 1)[0] + "/"
                named.add(name)
            else:
                named.add(folder + name)
    files = {
        str(p.relative_to(PACKAGE)) for p in PACKAGE.rglob("*.py") if "migrations" not in p.parts
    }
    inits = {f for f in files if f.endswith("__init__.py")}  # re-exports: named when they do more
    # one row stands for every balancer the catalogue finds (``trainers/balancers/<name>.py``)
    balancers = {
        str(Path(inspect.getfile(cls)).relative_to(PACKAGE)) for cls in built_in().values()
    }
    assert sorted(files - inits - named - balancers) == []
    assert sorted(named - files) == []
