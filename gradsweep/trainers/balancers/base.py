"""The balancer interface: who owns the task weights and how a step's gradient is formed."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from gradsweep.trainers.balancers.declaration import BalancerDeclaration, Need

if TYPE_CHECKING:  # a balancer's module imports without torch (trainers/lazy.py)
    import torch

    from gradsweep.trainers.engine.step import GradientSite, TrainingStep


@dataclass(frozen=True)
class BalancerContext:
    """What a balancer may need to know before the first step.

    ``seed`` is the trial's seed (for a balancer's own random draws); ``steps_per_epoch``
    the optimisation steps in one pass over the training split (for epoch-based rules).
    ``theoretical_initial_losses`` may hold None for a task without a closed form.
    """

    task_count: int
    device: torch.device
    theoretical_initial_losses: list[float | None] | None
    first_epoch_mean_losses: Callable[[], torch.Tensor]
    seed: int = 0
    steps_per_epoch: int = 1


class Balancer(ABC):
    """Turns a step's task losses into network gradients and keeps ``w(t)``.

    Each concrete balancer carries its ``declaration`` (name, spec parameters, needs…, see
    ``declaration.py``). The loop builds each step to serve ``declaration.needs``:
    ``SHARED_LAYER_GRADIENTS`` captures each task's gradient at the shared features during
    ``backward(w)``; ``TASK_GRADIENTS`` lets ``step`` read every task's gradient (and their
    Gramian) before it chooses ``w``; ``AFTER_OPTIMIZER_STEP`` calls ``after_step`` once the
    network's optimiser has stepped, on the same batch.
    """

    declaration: ClassVar[BalancerDeclaration]

    @property
    def name(self) -> str:
        return self.declaration.name

    @property
    def needs(self) -> frozenset[Need]:
        return self.declaration.needs

    @property
    def needs_task_gradients(self) -> bool:
        """Whether the step must capture per-task gradients at the shared features."""
        return Need.SHARED_LAYER_GRADIENTS in self.declaration.needs

    @abstractmethod
    def start(self, context: BalancerContext) -> None:
        """Called once before training, on the training device; resets every state."""

    @property
    @abstractmethod
    def weights(self) -> torch.Tensor:
        """The weights the next step will use, shape (T,), detached."""

    @property
    def raw_weights(self) -> torch.Tensor:
        """The weights the step applies, before any rescaling to ``Σ = T`` (a method whose
        own weights sum to something else, e.g. MGDA's convex combination, says so here)."""
        return self.weights

    @abstractmethod
    def step(self, training_step: TrainingStep) -> None:
        """Accumulate the network's gradient for this step (``training_step.backward(w)``,
        once) and update ``w`` for the next."""

    def after_step(self, training_step: TrainingStep) -> None:  # noqa: B027 (optional hook)
        """After the optimiser's step, on the same batch (``AFTER_OPTIMIZER_STEP`` only)."""

    def describe(self) -> dict[str, object]:
        """The name and hyperparameters, for records and JSON output."""
        return {"name": self.name, **self.hyperparameters()}

    def hyperparameters(self) -> dict[str, object]:
        return {}


class NotPackable(ValueError):
    """These balancers cannot train in one pack (mixed families, or not a packable family)."""


class PackWeights(ABC):
    """Owns ``w`` of every member of a pack. A packing balancer's declaration builds one from
    the members (``packed``); the packed loop serves the needs it states:

    - ``needs_task_gradients``: as for a single balancer (``Need.SHARED_LAYER_GRADIENTS``),
      the norms ``‖∇_W w_i L_i‖`` handed to ``update`` after the backward;
    - ``task_gradient_sites`` (``Need.TASK_GRADIENTS``): where each member's task gradients
      are taken, one ``GradientSite`` a member. The loop then takes them before the
      backward, hands the members' ``(K, T, T)`` Gramians to ``choose``, and gives the
      shared parameters ``Σ w_i ∇L_i`` of ``raw_weights`` and each head its own task's
      gradient (Jacobian descent's update, as ``TrainingStep.backward_aggregated``).
    """

    needs_task_gradients: bool = False
    task_gradient_sites: tuple[GradientSite, ...] = ()

    @abstractmethod
    def start(self, context: BalancerContext) -> None:
        """Called once before training; ``context`` is one member's (they share it)."""

    @property
    @abstractmethod
    def weights(self) -> torch.Tensor:
        """``(K, T)``: the weights the next step uses, detached."""

    @property
    def raw_weights(self) -> torch.Tensor:
        """``(K, T)``: the weights the step applies, when they sum to something else than T
        (as a balancer's ``raw_weights``); by default ``weights``."""
        return self.weights

    def choose(self, gramians: torch.Tensor) -> None:
        """``task_gradient_sites`` only: this step's weights from the members' ``(K, T, T)``
        Gramians, before the backward (``weights`` and ``raw_weights`` then give them)."""
        raise NotImplementedError(f"{type(self).__name__} chooses no weights from Gramians")

    @abstractmethod
    def update(self, losses: torch.Tensor, norms: torch.Tensor | None, live: torch.Tensor) -> None:
        """After the network's backward: move ``w`` of the ``live`` members."""

    @abstractmethod
    def freeze(self, members: torch.Tensor) -> None:
        """Stop ``members`` (a ``(K,)`` mask) for good: they failed."""
