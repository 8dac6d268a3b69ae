"""One training step's forward graph, with per-task gradients at the shared features on request.

A balancer that needs each task's gradient at the last shared layer ``W`` (GradNorm)
asks for a step that *captures task gradients*: every head reads its own view of the
shared features ``z``, and a hook on each view keeps ``∂(w_i L_i)/∂z`` as the single
ordinary backward pass goes by. Those are then pushed through ``W``'s layer alone for the
per-task norms. Nothing is differentiated twice and the network's backward is the
ordinary one, which frees the graph as it goes.

Three ways to the norms, chosen from how ``W``'s layer produced ``z``:

- ``linear``: ``z`` is the output of the ``nn.Linear`` owning ``W``, so
  ``∇_W (w_i L_i) = (∂(w_i L_i)/∂z)ᵀ h`` with ``h`` the layer's input: one product a task.
- ``layer``: ``z`` is the output of a standard convolution owning ``W``; that one layer is
  recomputed on its (detached) saved input and differentiated per task. Only the layer's
  input is kept, which autograd held for ``W``'s own gradient anyway.
- ``graph``: anything else (``W`` inside the trunk, a custom layer): the step's graph is
  kept through the backward and ``z`` is differentiated again at ``W``, which holds every
  activation until the norms are taken.

A balancer that must see every task's gradient *before* it chooses ``w`` (MGDA-like
methods) asks for ``Need.TASK_GRADIENTS``: ``task_gradients()`` differentiates each task's
loss over the shared parameters (one vmapped backward for all tasks, or one a task where
vmap cannot batch the trunk) or at the shared representation (each head reads its own view
of ``z``, so one backward through the heads separates the tasks), with the graph kept for
the one ``backward(w)`` or ``backward_aggregated`` that follows; ``gramian()`` is their
``T × T`` inner products.
One that needs a look after the optimiser's step (FAMO) reads ``losses_after_update()``:
the same batch through the updated network, without a graph.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import Enum
from typing import Any

import torch
from torch import nn

from gradsweep.trainers.balancers.declaration import Need
from gradsweep.trainers.engine.precision import Precision, autocast, widened
from gradsweep.trainers.problems.base import Batch, MultitaskModel, MultitaskProblem

#: Layers whose forward is a pure function of input and parameters, safe to recompute.
RECOMPUTABLE = (
    nn.Conv1d,
    nn.Conv2d,
    nn.Conv3d,
    nn.ConvTranspose1d,
    nn.ConvTranspose2d,
    nn.ConvTranspose3d,
)


class NormPath(str, Enum):
    """How a capturing step reaches the per-task gradient norms at ``W``."""

    LINEAR = "linear"
    LAYER = "layer"
    GRAPH = "graph"


#: trunk types whose backward vmap cannot batch (found on their first step), by type
_BATCHED_BACKWARD: dict[type, bool] = {}


class GradientSite(str, Enum):
    """Where ``task_gradients`` differentiates each task's loss."""

    SHARED_PARAMETERS = "shared_parameters"  # every parameter of the trunk, flattened
    REPRESENTATION = "representation"  # the shared features z, flattened


class _LayerTap:
    """A forward hook on ``W``'s layer keeping its input and output of this step."""

    def __init__(self, layer: nn.Module) -> None:
        self.calls = 0
        self.input: torch.Tensor | None = None
        self.output: torch.Tensor | None = None
        self.handle = layer.register_forward_hook(self._keep)

    def _keep(self, _: nn.Module, inputs: tuple[Any, ...], output: Any) -> None:
        self.calls += 1
        first = inputs[0] if inputs else None
        self.input = first if isinstance(first, torch.Tensor) else None
        self.output = output if isinstance(output, torch.Tensor) else None


def norm_path(model: MultitaskModel, tap: _LayerTap, z: torch.Tensor) -> NormPath:
    """The cheapest exact path for this step (see the module docstring)."""
    layer = model.shared_module
    if tap.calls != 1 or tap.output is not z or tap.input is None:
        return NormPath.GRAPH
    if isinstance(layer, nn.Linear):
        return NormPath.LINEAR
    if isinstance(layer, RECOMPUTABLE) and not list(layer.buffers()):
        return NormPath.LAYER
    return NormPath.GRAPH


class TrainingStep:
    """The task losses of one batch and the means to back-propagate a weighted sum of them."""

    def __init__(
        self,
        model: MultitaskModel,
        problem: MultitaskProblem,
        batch: Batch,
        capture_task_gradients: bool = False,
        precision: Precision = Precision.FP32,
        needs: frozenset[Need] = frozenset(),
    ) -> None:
        self.model = model
        self.problem, self.batch, self.precision = problem, batch, precision
        self.needs = needs
        self.capture = capture_task_gradients or Need.SHARED_LAYER_GRADIENTS in needs
        self._task_grads: list[torch.Tensor | None] = [None] * len(model.heads)
        self.layer_input: torch.Tensor | None = None
        self.path: NormPath | None = None
        device = batch.inputs.device
        with autocast(precision, device):
            if self.capture:
                tap = _LayerTap(model.shared_module)
                try:
                    self.z = model.trunk(batch.inputs)
                finally:
                    tap.handle.remove()
                self.path = norm_path(model, tap, self.z)
                if self.path is not NormPath.GRAPH:
                    self.layer_input = tap.input
                features = [self._tapped_view(i) for i in range(len(model.heads))]
            else:
                self.z = model.trunk(batch.inputs)
                features = [self.z] * len(model.heads)
            if Need.TASK_GRADIENTS in needs and not self.capture:
                # a view of z per head: one backward through the heads then gives every
                # task's gradient at z apart (each head reads only its own view)
                features = [self.z.view_as(self.z) for _ in model.heads]
            self._views = features
            outputs = [head(feature) for head, feature in zip(model.heads, features, strict=True)]
            losses = problem.task_losses(outputs, batch)
        self.losses = torch.stack([widened(loss) for loss in losses])

    def _tapped_view(self, task: int) -> torch.Tensor:
        view = self.z.view_as(self.z)
        # The hook must not reach back to this step: the graph holds the hook, so a hook
        # holding ``self`` (and through it ``z`` and the losses) is a cycle through C++
        # autograd nodes that Python's collector cannot see, and a retained graph (the
        # graph path) would then leak every step's activations.
        task_grads = self._task_grads

        def keep(grad: torch.Tensor) -> None:
            task_grads[task] = grad

        view.register_hook(keep)
        return view

    def task_gradients(self, at: GradientSite = GradientSite.SHARED_PARAMETERS) -> torch.Tensor:
        """``∇ L_i`` of every task, ``(T, P)`` in fp32, before ``backward``: over the trunk's
        parameters, or at the shared features ``z``. The graph is kept for ``backward``."""
        self._served(Need.TASK_GRADIENTS)
        if at is GradientSite.REPRESENTATION:
            grads = torch.autograd.grad(self.losses.sum(), self._views, retain_graph=True)
            return torch.stack([widened(g).flatten() for g in grads])
        inputs = [p for p in self.model.trunk.parameters() if p.requires_grad]
        if _BATCHED_BACKWARD.get(type(self.model.trunk), True):
            try:  # one vmapped backward for the T tasks
                return self._batched_gradients(inputs)
            except RuntimeError:  # an op vmap cannot batch: one backward a task from now on
                _BATCHED_BACKWARD[type(self.model.trunk)] = False
        rows = []
        for loss in self.losses:
            grads = torch.autograd.grad(loss, inputs, retain_graph=True, allow_unused=True)
            rows.append(
                torch.cat(
                    [
                        widened(torch.zeros_like(x) if g is None else g).flatten()
                        for g, x in zip(grads, inputs, strict=True)
                    ]
                )
            )
        return torch.stack(rows)

    def _batched_gradients(self, inputs: Sequence[torch.Tensor]) -> torch.Tensor:
        tasks = len(self.losses)
        eye = torch.eye(tasks, dtype=self.losses.dtype, device=self.losses.device)
        grads = torch.autograd.grad(
            self.losses,
            inputs,
            grad_outputs=eye,
            retain_graph=True,
            allow_unused=True,
            is_grads_batched=True,
        )
        return torch.cat(
            [
                widened(torch.zeros(tasks, *x.shape, device=x.device) if g is None else g).flatten(
                    start_dim=1
                )
                for g, x in zip(grads, inputs, strict=True)
            ],
            dim=1,
        )

    @staticmethod
    def gramian(gradients: torch.Tensor) -> torch.Tensor:
        """``G Gᵀ``: the ``T × T`` inner products of the task gradients."""
        return gradients @ gradients.T

    def losses_after_update(self) -> torch.Tensor:
        """The task losses of this step's batch through the network as updated, no graph."""
        self._served(Need.AFTER_OPTIMIZER_STEP)
        with torch.no_grad(), autocast(self.precision, self.batch.inputs.device):
            z = self.model.trunk(self.batch.inputs)
            outputs = [head(z) for head in self.model.heads]
            losses = self.problem.task_losses(outputs, self.batch)
        return torch.stack([widened(loss) for loss in losses])

    def _served(self, need: Need) -> None:
        if need not in self.needs:
            raise RuntimeError(f"this step was built without {need.value} (declare it in needs)")

    def backward(self, weights: torch.Tensor) -> None:
        """Accumulate ``∇ Σ w_i L_i`` into every network parameter (weights held constant)."""
        # Only the graph path differentiates z again, so only it keeps the graph.
        keep_graph = self.path is NormPath.GRAPH
        (self.losses * weights.detach()).sum().backward(retain_graph=keep_graph)

    def backward_aggregated(
        self,
        weights: torch.Tensor,
        gradients: torch.Tensor,
        at: GradientSite = GradientSite.SHARED_PARAMETERS,
        head_weights: torch.Tensor | None = None,
    ) -> None:
        """Jacobian descent's update: the shared parameters receive ``Σ w_i g_i`` built from
        ``gradients`` (``task_gradients(at)``'s rows, or any rows of that shape, e.g. a
        running average of them), each head its own task's gradient, unweighted (as
        torchjd's ``mtl_backward``) or scaled by ``head_weights``. With
        ``at=REPRESENTATION`` the combined gradient at ``z`` goes back through the trunk once."""
        self._served(Need.TASK_GRADIENTS)
        combined = weights.detach().to(gradients.dtype) @ gradients
        heads = [p for p in self.model.heads.parameters() if p.requires_grad]
        if heads:
            scaled = self.losses if head_weights is None else self.losses * head_weights.detach()
            torch.autograd.backward(scaled.sum(), inputs=heads, retain_graph=True)
        if at is GradientSite.REPRESENTATION:
            trunk = [p for p in self.model.trunk.parameters() if p.requires_grad]
            torch.autograd.backward(self.z, combined.view_as(self.z).to(self.z.dtype), inputs=trunk)
            return
        offset = 0
        for parameter in self.model.trunk.parameters():
            if not parameter.requires_grad:
                continue
            size = parameter.numel()
            piece = combined[offset : offset + size].view_as(parameter).to(parameter.dtype)
            offset += size
            parameter.grad = piece if parameter.grad is None else parameter.grad + piece

    def task_feature_gradients(self) -> torch.Tensor:
        """``∂(w_i L_i)/∂z`` stacked over tasks, as captured by the last ``backward``."""
        return torch.stack(self._captured())

    def _captured(self) -> list[torch.Tensor]:
        if not self.capture:
            raise RuntimeError("this step was built without capture_task_gradients")
        return [torch.zeros_like(self.z) if g is None else g for g in self._task_grads]

    def shared_layer_gradient_norms(self) -> torch.Tensor:
        """``‖∇_W (w_i L_i)‖`` for every task, in fp32, through ``W``'s layer alone."""
        if self.path is NormPath.LINEAR:
            assert self.layer_input is not None
            # z = h Wᵀ + b, so ∇_W (w_i L_i) = (∂(w_i L_i)/∂z)ᵀ h: one small product per
            # task, without stacking the task gradients into one large buffer first.
            hidden_t = widened(self.layer_input.detach()).flatten(end_dim=-2).T
            return torch.stack(
                [
                    torch.linalg.vector_norm(hidden_t @ widened(grad).flatten(end_dim=-2))
                    for grad in self._captured()
                ]
            )
        if self.path is NormPath.LAYER:
            return self._recomputed_layer_norms()
        (grads,) = torch.autograd.grad(
            self.z,
            self.model.shared_layer,
            grad_outputs=self.task_feature_gradients().to(self.z.dtype),
            is_grads_batched=True,
        )
        return torch.linalg.vector_norm(widened(grads).flatten(start_dim=1), dim=1)

    def _recomputed_layer_norms(self) -> torch.Tensor:
        """``W``'s layer run again, in fp32 and on its detached input, then differentiated
        at ``W`` once per task: the rest of the step's graph is already freed."""
        assert self.layer_input is not None
        weight = self.model.shared_layer
        with torch.enable_grad(), torch.autocast(self.z.device.type, enabled=False):
            z = self.model.shared_module(widened(self.layer_input.detach()))
            grads = self._captured()
            norms = [
                torch.linalg.vector_norm(
                    torch.autograd.grad(
                        z, weight, grad_outputs=widened(grad), retain_graph=i < len(grads) - 1
                    )[0]
                )
                for i, grad in enumerate(grads)
            ]
        return torch.stack(norms)
