"""The balancer interface: who owns the task weights and how a step's gradient is formed."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass

import torch

from gradsweep.trainers.engine.step import TrainingStep


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

    ``needs_task_gradients`` asks the loop for a step that captures each task's gradient
    at the shared features, so per-task gradients at the last shared layer are available.
    """

    name: str = "balancer"
    needs_task_gradients: bool = False

    @abstractmethod
    def start(self, context: BalancerContext) -> None:
        """Called once before training, on the training device."""

    @property
    @abstractmethod
    def weights(self) -> torch.Tensor:
        """The weights the next step will use, shape (T,), detached."""

    @abstractmethod
    def step(self, training_step: TrainingStep) -> None:
        """Accumulate the network's gradient for this step and update ``w`` for the next."""

    def describe(self) -> dict[str, object]:
        """The name and hyperparameters, for records and JSON output."""
        return {"name": self.name, **self.hyperparameters()}

    def hyperparameters(self) -> dict[str, object]:
        return {}
