"""The contract every multitask problem meets, so one training loop serves them all."""

from __future__ import annotations

import warnings
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, Protocol

import torch
from torch import nn

from gradsweep.errors import PluginWarning

Direction = Literal["min", "max"]


@dataclass(frozen=True)
class TaskInfo:
    """One task: its name and its primary test metric (with the direction that is better)."""

    name: str
    metric: str
    direction: Direction = "min"


@dataclass(frozen=True)
class Batch:
    """Inputs and one target tensor per task, already on the training device."""

    inputs: torch.Tensor
    targets: tuple[torch.Tensor, ...]


class MultitaskData(Protocol):
    """A data split the loop can sample: its length and a batch for given indices."""

    def __len__(self) -> int: ...

    def batch(self, indices: torch.Tensor, device: torch.device) -> Batch: ...


@dataclass(frozen=True)
class TensorData:
    """A split held in memory as tensors (the default for small problems).

    ``prefetch``: batches may be read on a background thread (indexing draws nothing
    random), see pipeline.py.
    """

    inputs: torch.Tensor
    targets: tuple[torch.Tensor, ...]
    prefetch: ClassVar[bool] = True

    def __len__(self) -> int:
        return int(self.inputs.shape[0])

    def batch(self, indices: torch.Tensor, device: torch.device) -> Batch:
        idx = indices.to(self.inputs.device)
        return Batch(
            self.inputs[idx].to(device),
            tuple(target[idx].to(device) for target in self.targets),
        )


class MultitaskModel(nn.Module):
    """A shared trunk producing features ``z`` and one head per task.

    ``shared_layer`` is GradNorm's ``W``: the weight of the last shared layer, a parameter
    of the trunk. When the trunk's output ``z`` is the output of the ``nn.Linear`` or
    convolution owning ``W``, GradNorm's per-task gradients at ``W`` come from that layer
    alone and cost about nothing in time or memory; put parameter-free activations and
    normalisations at the start of the heads to get this. Any other trunk works too, but
    keeps the step's whole graph until the norms are taken (more memory, see step.py).
    ``linear_tail`` (an ``nn.Sequential`` ending in ``W``'s ``nn.Linear``) is what packed
    GradNorm needs for its fast path. A module given for ``W`` is refused naming its
    weight; the trunk's first layer is taken with a ``PluginWarning`` (the graph path).
    """

    def __init__(self, trunk: nn.Module, heads: Sequence[nn.Module], shared_layer: torch.Tensor):
        super().__init__()
        self.trunk = trunk
        self.heads = nn.ModuleList(heads)
        names = [n for n, p in trunk.named_parameters() if p is shared_layer]
        if not names:
            raise ValueError(
                f"shared_layer must be a parameter of the trunk{_got(trunk, shared_layer)}"
            )
        if _is_first_layer(trunk, shared_layer):
            warnings.warn(FIRST_LAYER, PluginWarning, stacklevel=2)
        self._shared_layer_name = names[0]
        self._shared_module_name = self._shared_layer_name.rpartition(".")[0]
        last = trunk[-1] if isinstance(trunk, nn.Sequential) and len(trunk) else None
        self.linear_tail = isinstance(last, nn.Linear) and last.weight is shared_layer

    @property
    def shared_layer(self) -> nn.Parameter:
        return self.trunk.get_parameter(self._shared_layer_name)

    @property
    def shared_module(self) -> nn.Module:
        """The trunk's module that owns ``W`` (the trunk itself if ``W`` is its own)."""
        return self.trunk.get_submodule(self._shared_module_name)

    @property
    def shared_layer_name(self) -> str:
        """``W``'s name among the model's parameters (``trunk.…``)."""
        return f"trunk.{self._shared_layer_name}"

    def shared_features(self, inputs: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor]:
        """``(h, z)``: ``z`` the trunk's output and ``h`` the input of ``W``'s linear layer
        when the trunk ends in it (else None)."""
        if not self.linear_tail:
            return None, self.trunk(inputs)
        hidden = inputs
        for module in list(self.trunk)[:-1]:  # type: ignore[call-overload]
            hidden = module(hidden)
        return hidden, self.trunk[-1](hidden)  # type: ignore[index]

    def forward(self, inputs: torch.Tensor) -> list[torch.Tensor]:
        z = self.trunk(inputs)
        return [head(z) for head in self.heads]


FIRST_LAYER = (
    "shared_layer is the trunk's first layer: GradNorm's per-task gradient norms then take "
    "the slower graph path (the trunk's output z is not that layer's output, so each step "
    "keeps its whole graph and differentiates z back through the trunk to W for every "
    "task: more time and memory); the paper uses the last shared layer, e.g. "
    "trunk[-1].weight"
)


def _got(trunk: nn.Module, shared_layer: object) -> str:
    """What was given instead of a parameter of the trunk, and what to give instead (for a
    module: its weight)."""
    if not isinstance(shared_layer, nn.Module):
        return f", got {_described(shared_layer)}"
    text = " ".join(repr(shared_layer).split())
    text = text if len(text) <= 80 else f"{type(shared_layer).__name__}(…)"
    where = _expression(trunk, shared_layer)
    if where is not None and isinstance(getattr(shared_layer, "weight", None), nn.Parameter):
        return f", got the module {text}: give its weight, e.g. {where}.weight"
    return (
        f", got the module {text}: give the weight of the trunk's last shared layer, "
        "e.g. trunk[-1].weight"
    )


def _described(value: object) -> str:
    if isinstance(value, torch.Tensor):
        return f"a tensor of shape {tuple(value.shape)} that is not one of its parameters"
    return f"a value of type {type(value).__name__}"


def _expression(trunk: nn.Module, module: nn.Module) -> str | None:
    """How the code names ``module`` from the trunk (``trunk[-1]``, ``trunk[2]``,
    ``trunk.encoder.fc``); None where the trunk does not hold it."""
    if isinstance(trunk, nn.Sequential) and len(trunk) and trunk[-1] is module:
        return "trunk[-1]"
    for name, candidate in trunk.named_modules():
        if candidate is module and name:
            parts = name.split(".")
            return "trunk" + "".join(f"[{p}]" if p.isdigit() else f".{p}" for p in parts)
    return None


def _is_first_layer(trunk: nn.Module, shared_layer: torch.Tensor) -> bool:
    """Whether ``W`` belongs to the first of several modules of the trunk that hold
    parameters (in the order they were registered, the order of a ``Sequential``)."""
    owners = [m for m in trunk.modules() if next(m.parameters(recurse=False), None) is not None]
    if len(owners) < 2:
        return False
    return any(p is shared_layer for p in owners[0].parameters(recurse=False))


class MetricAccumulator(ABC):
    """Collects per-batch test outputs and returns each task's metrics for the whole split."""

    @abstractmethod
    def update(self, outputs: Sequence[torch.Tensor], batch: Batch) -> None: ...

    @abstractmethod
    def compute(self) -> list[dict[str, float]]: ...


class MultitaskProblem(ABC):
    """A multitask learning problem: tasks, data, a model, losses, metrics and an objective.

    Subclasses set ``tasks``, ``train_data`` and ``test_data`` (and may set ``name``,
    else their class name is used, ``val_data``, and change
    ``batch_size``, ``eval_batch_size``, ``learning_rate``) and implement
    ``build_model``, ``task_losses`` and ``metric_accumulator``. ``build_model`` must draw
    its initialisation from torch's global generator, which the loop seeds per trial.

    ``val_data`` is the validation split that selection reads (the static optimum, the
    best α, a checkpoint); test data is only ever reported. A problem that leaves it None
    gets a fixed fraction of its training data held out (``problems/validation.py``).
    """

    name: str  # optional in a subclass: its class name when it sets none
    tasks: tuple[TaskInfo, ...]
    train_data: MultitaskData
    test_data: MultitaskData
    val_data: MultitaskData | None = None
    batch_size: int = 100
    eval_batch_size: int = 1000
    learning_rate: float = 1e-3

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if not isinstance(getattr(cls, "name", None), str):
            cls.name = cls.__name__  # messages and progress name a problem by it

    @property
    def task_names(self) -> list[str]:
        return [task.name for task in self.tasks]

    @abstractmethod
    def build_model(self) -> MultitaskModel: ...

    @abstractmethod
    def task_losses(self, outputs: Sequence[torch.Tensor], batch: Batch) -> list[torch.Tensor]:
        """One scalar loss per task, in task order, differentiable."""

    @abstractmethod
    def metric_accumulator(self) -> MetricAccumulator: ...

    def theoretical_initial_losses(self) -> list[float | None] | None:
        """``L_i(0)`` known in closed form (``log C`` for C-class cross-entropy), one entry
        per task, None for a task without one (GradNorm then takes its first batch)."""
        return None

    def normalized_loss(
        self, test_losses: Sequence[float], initial_test_losses: Sequence[float]
    ) -> float:
        """The paper's task-normalised loss: mean over tasks of test L_i / L_i at init.

        Lower is better; the untrained network scores 1.
        """
        ratios = [
            loss / initial for loss, initial in zip(test_losses, initial_test_losses, strict=True)
        ]
        return float(sum(ratios) / len(ratios))

    def describe(self) -> dict[str, object]:
        """Parameters that identify the problem, for records and JSON output."""
        return {"name": self.name, "tasks": self.task_names}
