"""GradNorm (Chen et al., ICML 2018, Algorithm 1) at about the cost of one ordinary step.

Hyperparameters: ``alpha`` (restoring force; 0.12 on the paper's toy, 1.5 on NYUv2),
``lr`` for the weights' own Adam (0.025), ``initial_loss`` for ``L_i(0)``:
``first_batch`` (default), ``theoretical`` (from the problem, e.g. ``log C``) or
``first_epoch_mean`` (mean over the training split of the untrained network). With
``theoretical``, a task without a closed form (None from the problem) takes its first
batch's loss.

Why no double backward: ``G_i = ‖∇_W (w_i L_i)‖ = w_i ‖∇_W L_i‖`` with ``w_i > 0``, so
``∂G_i/∂w_i = ‖∇_W L_i‖ = G_i / w_i`` and, the target ``Ḡ r_i^α`` being a constant,
``∂L_grad/∂w_i = sign(G_i − Ḡ r_i^α) · G_i / w_i``. Only ``∇_W`` per task is needed,
taken through ``W`` alone from each task's gradient at the shared features.
"""

from __future__ import annotations

from typing import Literal, get_args

import torch

from gradsweep.errors import BalancerError
from gradsweep.trainers.balancer import Balancer, BalancerContext
from gradsweep.trainers.step import TrainingStep

InitialLoss = Literal["first_batch", "theoretical", "first_epoch_mean"]
MIN_WEIGHT = 1e-6


class GradNorm(Balancer):
    """Adapts ``w`` so each task's gradient norm at ``W`` tracks ``Ḡ · r_i^α``."""

    name = "gradnorm"
    needs_task_gradients = True

    def __init__(
        self, alpha: float, lr: float = 0.025, initial_loss: InitialLoss = "first_batch"
    ) -> None:
        if not alpha >= 0:
            raise BalancerError(f"gradnorm: alpha must be >= 0, got {alpha}")
        if not lr > 0:
            raise BalancerError(f"gradnorm: lr must be > 0, got {lr}")
        if initial_loss not in get_args(InitialLoss):
            raise BalancerError(
                f"gradnorm: initial_loss must be one of {', '.join(get_args(InitialLoss))}, "
                f"got {initial_loss!r}"
            )
        self.alpha = float(alpha)
        self.lr = float(lr)
        self.initial_loss_mode: InitialLoss = initial_loss
        self.initial_losses: torch.Tensor | None = None
        self._missing_initial: torch.Tensor | None = None  # theoretical, without a closed form
        self._w = torch.nn.Parameter(torch.empty(0))
        self._optimizer: torch.optim.Adam | None = None

    def start(self, context: BalancerContext) -> None:
        self._w = torch.nn.Parameter(torch.ones(context.task_count, device=context.device))
        # One optimizer for the whole run: its moments are part of the algorithm's state.
        self._optimizer = torch.optim.Adam([self._w], lr=self.lr)
        self.initial_losses = self._initial_losses(context)

    def _initial_losses(self, context: BalancerContext) -> torch.Tensor | None:
        if self.initial_loss_mode == "theoretical":
            values = context.theoretical_initial_losses
            if values is None:
                raise BalancerError(
                    "gradnorm: initial_loss=theoretical, but this problem has no "
                    "theoretical initial losses"
                )
            if len(values) != context.task_count:
                raise BalancerError(
                    f"gradnorm: the problem gives {len(values)} theoretical initial losses "
                    f"for {context.task_count} tasks"
                )
            self._missing_initial = torch.tensor([v is None for v in values])
            known = [float("nan") if v is None else v for v in values]
            return torch.tensor(known, device=context.device)
        if self.initial_loss_mode == "first_epoch_mean":
            return context.first_epoch_mean_losses().detach().clone()
        return None  # first_batch: taken at the first step

    @property
    def weights(self) -> torch.Tensor:
        return self._w.detach()

    def step(self, training_step: TrainingStep) -> None:
        assert self._optimizer is not None, "start() must be called first"
        losses = training_step.losses.detach()
        if self.initial_losses is None:
            self.initial_losses = losses.clone()
        elif self._missing_initial is not None:
            missing = self._missing_initial.to(losses.device)
            self.initial_losses = torch.where(missing, losses, self.initial_losses)
            self._missing_initial = None
        w = self._w.detach()
        training_step.backward(w)  # the network's gradient, with w(t)
        norms = training_step.shared_layer_gradient_norms()  # G_i = ‖∇_W w_i L_i‖
        inverse_rate = losses / self.initial_losses
        relative_rate = inverse_rate / inverse_rate.mean()
        target = norms.mean() * relative_rate**self.alpha
        self._w.grad = torch.sign(norms - target) * norms / w
        self._optimizer.step()
        self._renormalise()

    def _renormalise(self) -> None:
        with torch.no_grad():
            self._w.clamp_(min=MIN_WEIGHT)
            self._w.mul_(self._w.numel() / self._w.sum())

    def hyperparameters(self) -> dict[str, object]:
        return {"alpha": self.alpha, "lr": self.lr, "initial_loss": self.initial_loss_mode}
