"""One training step's forward graph, cut at the shared features so balancers can look inside.

A balancer that needs each task's gradient at the last shared layer ``W`` (GradNorm)
asks for a *split* step: every head runs on its own detached copy of ``z``. One backward
of the weighted loss through the heads then yields ``∂(w_i L_i)/∂z`` per task, which is
pushed through ``W`` alone for the per-task norms and summed for the trunk's backward.
Nothing is differentiated twice.
"""

from __future__ import annotations

import torch

from gradsweep.trainers.problem import Batch, MultitaskModel, MultitaskProblem


class TrainingStep:
    """The losses of one batch and the means to back-propagate a weighted sum of them."""

    def __init__(
        self, model: MultitaskModel, problem: MultitaskProblem, batch: Batch, split: bool
    ) -> None:
        self.model = model
        self.z = model.trunk(batch.inputs)
        self.split = split
        if split:
            self.task_features = [self.z.detach().requires_grad_() for _ in model.heads]
        else:
            self.task_features = [self.z for _ in model.heads]
        outputs = [head(z) for head, z in zip(model.heads, self.task_features)]
        self.losses = torch.stack(problem.task_losses(outputs, batch))

    def backward(self, weights: torch.Tensor) -> None:
        """Accumulate ``∇ Σ w_i L_i`` into every network parameter (weights held constant)."""
        if self.split:
            self.backward_trunk(self.backward_heads(weights))
        else:
            (self.losses * weights.detach()).sum().backward()

    def backward_heads(self, weights: torch.Tensor) -> torch.Tensor:
        """Backward through the heads only; returns ``∂(w_i L_i)/∂z`` stacked over tasks."""
        if not self.split:
            raise RuntimeError("backward_heads needs a split step")
        (self.losses * weights.detach()).sum().backward()
        return torch.stack([z.grad for z in self.task_features])  # type: ignore[misc]

    def shared_layer_gradients(self, task_feature_grads: torch.Tensor) -> torch.Tensor:
        """``∇_W (w_i L_i)`` for every task at once, through the last shared layer alone."""
        (grads,) = torch.autograd.grad(
            self.z,
            self.model.shared_layer,
            grad_outputs=task_feature_grads,
            retain_graph=True,
            is_grads_batched=True,
        )
        return grads

    def backward_trunk(self, task_feature_grads: torch.Tensor) -> None:
        """Backward ``Σ_i ∂(w_i L_i)/∂z`` through the trunk."""
        self.z.backward(task_feature_grads.sum(dim=0))
