"""One training step's forward graph, with per-task gradients at the shared features on request.

A balancer that needs each task's gradient at the last shared layer ``W`` (GradNorm)
asks for a step that *captures task gradients*: every head reads its own view of the
shared features ``z``, and a hook on each view keeps ``∂(w_i L_i)/∂z`` as the single
ordinary backward pass goes by. Those are then pushed through ``W`` alone for the
per-task norms. Nothing is differentiated twice and the network's backward is the
ordinary one.
"""

from __future__ import annotations

import torch

from gradsweep.trainers.problem import Batch, MultitaskModel, MultitaskProblem


class TrainingStep:
    """The task losses of one batch and the means to back-propagate a weighted sum of them."""

    def __init__(
        self,
        model: MultitaskModel,
        problem: MultitaskProblem,
        batch: Batch,
        capture_task_gradients: bool = False,
    ) -> None:
        self.model = model
        self.capture = capture_task_gradients
        self._task_grads: list[torch.Tensor | None] = [None] * len(model.heads)
        if self.capture:
            self.shared_input, self.z = model.shared_features(batch.inputs)
            features = [self._tapped_view(i) for i in range(len(model.heads))]
        else:
            self.shared_input, self.z = None, model.trunk(batch.inputs)
            features = [self.z] * len(model.heads)
        outputs = [head(feature) for head, feature in zip(model.heads, features, strict=True)]
        self.losses = torch.stack(problem.task_losses(outputs, batch))

    def _tapped_view(self, task: int) -> torch.Tensor:
        view = self.z.view_as(self.z)
        # The hook must not reach back to this step: the graph holds the hook, so a hook
        # holding ``self`` (and through it ``z`` and the losses) is a cycle through C++
        # autograd nodes that Python's collector cannot see, and a retained graph (the
        # generic path) would then leak every step's activations.
        task_grads = self._task_grads

        def keep(grad: torch.Tensor) -> None:
            task_grads[task] = grad

        view.register_hook(keep)
        return view

    def backward(self, weights: torch.Tensor) -> None:
        """Accumulate ``∇ Σ w_i L_i`` into every network parameter (weights held constant)."""
        # The generic gradient-norm path differentiates z again, so it needs the graph kept.
        keep_graph = self.capture and self.shared_input is None
        (self.losses * weights.detach()).sum().backward(retain_graph=keep_graph)

    def task_feature_gradients(self) -> torch.Tensor:
        """``∂(w_i L_i)/∂z`` stacked over tasks, as captured by the last ``backward``."""
        return torch.stack(self._captured())

    def _captured(self) -> list[torch.Tensor]:
        if not self.capture:
            raise RuntimeError("this step was built without capture_task_gradients")
        return [torch.zeros_like(self.z) if g is None else g for g in self._task_grads]

    def shared_layer_gradient_norms(self) -> torch.Tensor:
        """``‖∇_W (w_i L_i)‖`` for every task, through the last shared layer alone."""
        if self.shared_input is None:
            (grads,) = torch.autograd.grad(
                self.z,
                self.model.shared_layer,
                grad_outputs=self.task_feature_gradients(),
                is_grads_batched=True,
            )
            return torch.linalg.vector_norm(grads.flatten(start_dim=1), dim=1)
        # z = h Wᵀ + b, so ∇_W (w_i L_i) = (∂(w_i L_i)/∂z)ᵀ h: one small product per task,
        # without stacking the task gradients into one large buffer first.
        hidden_t = self.shared_input.detach().flatten(end_dim=-2).T
        return torch.stack(
            [
                torch.linalg.vector_norm(hidden_t @ grad.flatten(end_dim=-2))
                for grad in self._captured()
            ]
        )
