"""Torch, imported on first use.

A balancer's file holds its declaration and its code. The spec, the plan and the read
commands need the declaration only, and must not pay for importing torch (about a second),
so a balancer module names torch through this proxy: ``torch.zeros(...)`` imports torch the
first time it runs, never when the module is imported. Type checkers see the real module
(``if TYPE_CHECKING: import torch``).
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any


class LazyModule:
    """A module imported at its first attribute access."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._module: ModuleType | None = None

    def __getattr__(self, attribute: str) -> Any:
        if self._module is None:
            self._module = importlib.import_module(self._name)
        return getattr(self._module, attribute)


torch: Any = LazyModule("torch")
