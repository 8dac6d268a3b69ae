"""K copies of one initialised model as stacked tensors, run through ``torch.func.vmap``.

The copies share the batch (``vmap`` over parameters, not data), so member ``k`` of every
output is exactly what the plain model with the ``k``-th parameters computes. Parameters
and buffers are stacked along a new first dimension; the module itself lives on the meta
device and only lends its code to ``functional_call``.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn
from torch.func import functional_call, vmap

from gradsweep.trainers.problems.base import Batch, MultitaskModel, MultitaskProblem

Tensors = dict[str, torch.Tensor]


def _stack(tensor: torch.Tensor, copies: int, trainable: bool) -> torch.Tensor:
    stacked = tensor.detach().unsqueeze(0).repeat(copies, *([1] * tensor.dim()))
    if trainable and tensor.dim() == 2:
        # A linear layer's batched backward yields its weight gradient transposed; laid out
        # alike, the gradient is accumulated as it comes instead of copied across (a strided
        # copy that cost a tenth of a packed toy step). Values and element order are unchanged.
        stacked = stacked.transpose(1, 2).contiguous().transpose(1, 2)
    return stacked.requires_grad_(trainable)


def _below(tensors: Tensors, prefix: str, names: frozenset[str]) -> Tensors:
    """The entries of one submodule (its own ``names`` under ``prefix``), renamed to them."""
    return {name: tensors[prefix + name] for name in names if prefix + name in tensors}


def _own_names(module: nn.Module) -> frozenset[str]:
    return frozenset(n for n, _ in module.named_parameters()) | frozenset(
        n for n, _ in module.named_buffers()
    )


class StackedModel:
    """``copies`` members of one ``MultitaskModel``, all starting from its current parameters.

    ``params`` are leaf tensors of shape ``(K, *p.shape)`` for one optimizer; ``buffers``
    (BatchNorm statistics, …) are stacked too, so each member keeps its own.
    """

    def __init__(self, model: MultitaskModel, copies: int) -> None:
        self.copies = copies
        self.base = copy.deepcopy(model).to("meta")
        self.params = {n: _stack(p, copies, True) for n, p in model.named_parameters()}
        self.buffers = {n: _stack(b, copies, False) for n, b in model.named_buffers()}
        self.shared_layer_name = model.shared_layer_name
        self.linear_tail = model.linear_tail
        trunk = self.base.trunk
        # with a linear tail, W's layer runs apart from the rest of the trunk (GradNorm's h)
        self._body: nn.Module | None = None
        self._tail_prefix = ""
        if self.linear_tail:
            assert isinstance(trunk, nn.Sequential)
            self._body = trunk[:-1]
            self._tail_prefix = f"trunk.{list(trunk._modules)[-1]}."
        self._names: dict[int, frozenset[str]] = {}

    @property
    def shared_layer(self) -> torch.Tensor:
        """GradNorm's ``W`` of every member, shape ``(K, *W.shape)``."""
        return self.params[self.shared_layer_name]

    def train(self, mode: bool = True) -> None:
        self.base.train(mode)

    def _call(self, module: nn.Module, prefix: str, p: Tensors, b: Tensors, *args: object) -> Any:
        """``module(*args)`` with one member's tensors (``p``, ``b``: that member's slices)."""
        names = self._names.get(id(module))
        if names is None:
            names = self._names[id(module)] = _own_names(module)
        return functional_call(module, (_below(p, prefix, names), _below(b, prefix, names)), args)

    def forward(self, inputs: torch.Tensor) -> list[torch.Tensor]:
        """Every member's outputs, one ``(K, …)`` tensor per task, via the model's forward."""

        def one(p: Tensors, b: Tensors) -> list[torch.Tensor]:
            return functional_call(self.base, (p, b), (inputs,))  # type: ignore[no-any-return]

        return vmap(one)(self.params, self.buffers)  # type: ignore[no-any-return]

    def losses(self, problem: MultitaskProblem, batch: Batch) -> torch.Tensor:
        """``(K, T)`` task losses through trunk and heads (as a plain training step runs)."""

        def one(p: Tensors, b: Tensors) -> torch.Tensor:
            z = self._call(self.base.trunk, "trunk.", p, b, batch.inputs)
            outputs = [
                self._call(head, f"heads.{i}.", p, b, z) for i, head in enumerate(self.base.heads)
            ]
            return torch.stack(problem.task_losses(outputs, batch))

        return vmap(one)(self.params, self.buffers)  # type: ignore[no-any-return]

    def trunk_parameters(self) -> list[torch.Tensor]:
        """The stacked trunk parameters a plain step trains (``requires_grad``), in the
        trunk's order: the shared parameters of Jacobian descent's update."""
        trunk = self.base.trunk.named_parameters()
        return [self.params[f"trunk.{n}"] for n, p in trunk if p.requires_grad]

    def head_parameters(self) -> list[torch.Tensor]:
        """The stacked head parameters a plain step trains, in the heads' order."""
        heads = self.base.heads.named_parameters()
        return [self.params[f"heads.{n}"] for n, p in heads if p.requires_grad]

    def trunk_output(self, inputs: torch.Tensor) -> torch.Tensor:
        """``z`` per member, ``(K, …)``: the whole trunk's output."""
        trunk = self.base.trunk

        def features(p: Tensors, b: Tensors) -> torch.Tensor:
            return self._call(trunk, "trunk.", p, b, inputs)  # type: ignore[no-any-return]

        return vmap(features)(self.params, self.buffers)  # type: ignore[no-any-return]

    def shared_features(self, inputs: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor]:
        """``(h, z)`` per member, ``(K, …)``: ``h`` the input of ``W``'s linear layer when
        the trunk ends in it (else None), ``z`` the trunk's output."""
        trunk, body = self.base.trunk, self._body
        if body is None:
            return None, self.trunk_output(inputs)
        tail = trunk[-1]  # type: ignore[index]

        def split(p: Tensors, b: Tensors) -> tuple[torch.Tensor, torch.Tensor]:
            hidden = self._call(body, "trunk.", p, b, inputs)
            return hidden, self._call(tail, self._tail_prefix, p, b, hidden)

        hidden, z = vmap(split)(self.params, self.buffers)
        return hidden, z

    def head_losses(
        self, problem: MultitaskProblem, batch: Batch, features: Sequence[torch.Tensor]
    ) -> torch.Tensor:
        """``(K, T)`` task losses with head ``i`` reading ``features[i]`` (each ``(K, …)``)."""

        def one(p: Tensors, b: Tensors, zs: list[torch.Tensor]) -> torch.Tensor:
            outputs = [
                self._call(head, f"heads.{i}.", p, b, zs[i])
                for i, head in enumerate(self.base.heads)
            ]
            return torch.stack(problem.task_losses(outputs, batch))

        return vmap(one)(self.params, self.buffers, list(features))  # type: ignore[no-any-return]

    def member_state(self, member: int) -> dict[str, torch.Tensor]:
        """One member's parameters and buffers as a plain model's state dict."""
        state = {name: t[member].detach() for name, t in self.params.items()}
        state.update({name: t[member] for name, t in self.buffers.items()})
        return state
