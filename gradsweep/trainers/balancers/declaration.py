"""What a balancer declares once, and every layer derives from.

A balancer's file holds a ``BalancerDeclaration`` as its class's ``declaration``: the
spec's arm (its parameters, checked and documented), the trial keys, the ``train``
command's options, the packing family, the figures and the comparison all read it, so a
new balancer is one file. Declarations import neither torch nor pydantic: the spec layer
turns ``params`` (a frozen dataclass whose fields carry their bounds) into a pydantic model.
"""

from __future__ import annotations

import dataclasses
import importlib.util
from collections.abc import Callable, Mapping, Sequence
from dataclasses import MISSING, dataclass, field
from enum import Enum
from typing import Any

from gradsweep.arms import weights_in_key


class Need(str, Enum):
    """What a balancer needs from a training step; the loops serve each without naming it."""

    LOSSES = "losses"  # the task losses, and ``backward(w)``
    SHARED_LAYER_GRADIENTS = "shared_layer_gradients"  # ‖∇_W w_i L_i‖ after backward (GradNorm)
    TASK_GRADIENTS = "task_gradients"  # each task's gradient before w is chosen, and the Gramian
    AFTER_OPTIMIZER_STEP = "after_optimizer_step"  # ``after_step``, on the same batch


class ParamError(ValueError):
    """A balancer's parameters that do not go together; ``path`` is below the arm
    (``("alphas", 1)``), so the spec's error names the field."""

    def __init__(self, path: tuple[int | str, ...], message: str) -> None:
        super().__init__(message)
        self.path = path


BOUNDS = ("gt", "ge", "lt", "le", "min_length")


def param(default: Any = MISSING, *, description: str, **bounds: float) -> Any:
    """A spec parameter of a balancer: its default (none: required), what it means, and
    its bounds (``gt``, ``ge``, ``lt``, ``le``, ``min_length``), checked by the spec."""
    unknown = set(bounds) - set(BOUNDS)
    if unknown:
        raise TypeError(f"unknown bounds {sorted(unknown)}: use {', '.join(BOUNDS)}")
    return field(default=default, metadata={"description": description, **bounds})


def number(value: float) -> str:
    """A number as trial keys spell it (6 significant digits)."""
    return weights_in_key((value,))


@dataclass(frozen=True)
class Configuration:
    """One balancer configuration an arm runs on every seed: the label in its trial key
    (``gradnorm/<label>/s0``) and the balancer's constructor arguments. ``alpha`` is
    GradNorm's α, kept typed for the ``alpha`` column and for retrain."""

    label: str
    arguments: dict[str, Any]
    alpha: float | None = None


@dataclass(frozen=True)
class NoParams:
    """A balancer without spec parameters."""


@dataclass(frozen=True, eq=False)  # one object per balancer: compared and hashed by identity
class BalancerDeclaration:
    """Everything about a balancer that is not its arithmetic.

    - ``name``: the spec arm, the ``balancer`` column, ``train --balancer``;
    - ``display``, ``summary``: its label in tables and pages, and one line with the source;
    - ``weights_meaning``: what its recorded ``w(t)`` are (all sum to T);
    - ``params``: a frozen dataclass of its arm's fields (``param(...)`` each), with an
      optional ``check()`` raising ``ParamError``;
    - ``label``: params → the key label of the arm's one configuration, whose arguments
      are the params (default: ``k=v,…``);
    - ``configurations``: params → the configurations the arm runs, for an arm of several
      (GradNorm's αs); it replaces ``label``;
    - ``needs``: what it needs from a step (``Need``);
    - ``resampled``: its weights are drawn afresh each step (figures show a running mean);
    - ``adaptive``: an arm of its own compared against the static optimum (only the static
      balancer, which every static arm trains with, is not);
    - ``packed``: members of one pack → the pack's weights object; None: runs alone;
    - ``pack_family``: the pack family it joins, when members of other balancers may share
      its packs (``"gramian"``: every Gramian-based balancer, weighting itself from its own
      Gramian); all of a family's declarations name the same ``packed``. None: its packs
      hold its own members alone;
    - ``train_defaults``: constructor arguments ``gradsweep train`` uses when not told;
    - ``order``: where its arm sits in plans and tables (then by name);
    - ``reads_host``: its weight rule reads the step's values back on the host (a CPU
      solver, a branch on a value), so a GPU step waits for it every step;
    - ``requires``: modules it imports beyond torch, and ``extra`` the pip extra that
      installs them (a spec naming it without them is refused in one line);
    - ``from_batch``: its weights are chosen within ``step`` from the batch's losses
      (implied by ``TASK_GRADIENTS``), so the recorded ``w(t)`` are read after the step;
    - ``first_release``: stored spec hashes list this arm even when absent (the balancers
      of the first release), so those studies still resume; every later one is False.
    """

    name: str
    display: str
    summary: str
    weights_meaning: str
    params: type = NoParams
    label: Callable[[Any], str] | None = None
    configurations: Callable[[Any], list[Configuration]] | None = None
    needs: frozenset[Need] = frozenset({Need.LOSSES})
    resampled: bool = False
    adaptive: bool = True
    packed: Callable[[Sequence[Any]], Any] | None = None
    pack_family: str | None = None
    train_defaults: Mapping[str, Any] = field(default_factory=dict)
    order: int = 100
    first_release: bool = False
    reads_host: bool = False
    requires: tuple[str, ...] = ()
    extra: str | None = None
    from_batch: bool = False

    @property
    def chooses_in_step(self) -> bool:
        """Whether ``w`` is chosen within ``step`` from the step's batch (so the loop records
        it after the step): every ``TASK_GRADIENTS`` balancer, and one declaring
        ``from_batch`` (FAMO's weights are its logits over the batch's losses)."""
        return self.from_batch or Need.TASK_GRADIENTS in self.needs

    def missing_requirement(self) -> str | None:
        """One line naming the extra to install when a required module is absent, else None
        (looked up without importing it, so spec check stays fast)."""
        missing = [name for name in self.requires if importlib.util.find_spec(name) is None]
        if not missing:
            return None
        install = f"pip install 'gradsweep[{self.extra}]'" if self.extra else "install them"
        return f"{self.name} needs {', '.join(missing)}, not installed here: {install}"

    def configurations_of(self, params: Any) -> list[Configuration]:
        """The configurations an arm with these (validated) params runs."""
        if self.configurations is not None:
            return self.configurations(params)
        arguments = dataclasses.asdict(params)
        label = default_label(arguments) if self.label is None else self.label(params)
        return [Configuration(label, arguments)]

    def parameter_fields(self) -> tuple[dataclasses.Field[Any], ...]:
        return dataclasses.fields(self.params)


def default_label(arguments: Mapping[str, Any]) -> str:
    """``k=v,k2=v2`` of the arguments (numbers as keys spell them), or ``default``."""
    parts = [
        f"{key}={number(value) if isinstance(value, int | float) else value}"
        for key, value in arguments.items()
    ]
    return ",".join(parts) or "default"
