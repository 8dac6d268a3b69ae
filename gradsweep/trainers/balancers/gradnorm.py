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

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, get_args

from gradsweep.errors import BalancerError
from gradsweep.trainers.balancers.base import (
    Balancer,
    BalancerContext,
    NotPackable,
    PackWeights,
)
from gradsweep.trainers.balancers.declaration import (
    BalancerDeclaration,
    Configuration,
    Need,
    ParamError,
    number,
    param,
)

if TYPE_CHECKING:
    import torch

    from gradsweep.trainers.engine.step import TrainingStep
else:
    from gradsweep.trainers.lazy import torch

InitialLoss = Literal["first_batch", "theoretical", "first_epoch_mean"]
MIN_WEIGHT = 1e-6


@dataclass(frozen=True)
class GradNormParams:
    """The gradnorm arm: each α × every seed."""

    alphas: list[float] = param(description="GradNorm α values (each ≥ 0)", min_length=1)
    lr: float = param(0.025, description="learning rate of the weights' Adam", gt=0)
    initial_loss: InitialLoss = param(
        "first_batch",
        description="how L_i(0) is set: first_batch, theoretical or first_epoch_mean",
    )

    def check(self) -> None:
        seen: set[str] = set()
        for i, alpha in enumerate(self.alphas):
            if alpha < 0:
                raise ParamError(("alphas", i), f"alpha must be >= 0 (got {alpha})")
            if number(alpha) in seen:
                raise ParamError(("alphas", i), f"alpha {alpha:g} is listed twice")
            seen.add(number(alpha))


def alpha_label(alpha: float) -> str:
    """A GradNorm configuration's key label (``gradnorm/a=0.12/s0``), retrain's too."""
    return f"a={number(alpha)}"


def _configurations(params: GradNormParams) -> list[Configuration]:
    return [
        Configuration(
            alpha_label(alpha),
            {"alpha": alpha, "lr": params.lr, "initial_loss": params.initial_loss},
            alpha=alpha,
        )
        for alpha in params.alphas
    ]


class PackedGradNorm(PackWeights):
    """GradNorm (Algorithm 1) for K members at once, with one α per member."""

    needs_task_gradients = True

    def __init__(self, balancers: Sequence[GradNorm]) -> None:
        first = balancers[0]
        rules = {(b.lr, b.initial_loss_mode) for b in balancers}
        if len(rules) > 1:
            raise NotPackable("GradNorm members of one pack share lr and initial_loss")
        self.lr = first.lr
        self.initial_loss_mode = first.initial_loss_mode
        self.alphas = [b.alpha for b in balancers]
        self.initial_losses: torch.Tensor | None = None
        self._missing: torch.Tensor | None = None
        self._w = torch.nn.Parameter(torch.empty(0))
        self._optimizer: torch.optim.Adam | None = None
        self._alpha = torch.empty(0)

    def start(self, context: BalancerContext) -> None:
        shape = (len(self.alphas), context.task_count)
        self._w = torch.nn.Parameter(torch.ones(shape, device=context.device))
        self._optimizer = torch.optim.Adam([self._w], lr=self.lr)
        self._alpha = torch.tensor(self.alphas, device=context.device).unsqueeze(1)
        self.initial_losses, self._missing = initial_losses(self.initial_loss_mode, context)

    @property
    def weights(self) -> torch.Tensor:
        return self._w.detach()

    def update(self, losses: torch.Tensor, norms: torch.Tensor | None, live: torch.Tensor) -> None:
        assert self._optimizer is not None and norms is not None, "start() must be called first"
        self.initial_losses, self._missing = fill_initial_losses(
            self.initial_losses, self._missing, losses
        )
        w = self._w.detach()
        grad = weight_gradient(norms, losses, self.initial_losses, w, self._alpha)
        self._w.grad = torch.where(live.unsqueeze(1), grad, 0.0)
        self._optimizer.step()
        renormalise(self._w)

    def freeze(self, members: torch.Tensor) -> None:
        # zero gradient and zero moments: Adam then moves these rows by exactly 0
        if self._optimizer is None:
            return
        for state in self._optimizer.state.values():
            for name in ("exp_avg", "exp_avg_sq"):
                if name in state:
                    state[name][members] = 0.0


class GradNorm(Balancer):
    """Adapts ``w`` so each task's gradient norm at ``W`` tracks ``Ḡ · r_i^α``."""

    declaration = BalancerDeclaration(
        name="gradnorm",
        display="GradNorm",
        summary="GradNorm (Chen et al., ICML 2018, Algorithm 1): w adapted so each task's "
        "gradient norm at the last shared layer tracks the mean norm times r_i^α",
        weights_meaning="w_i(t), learned by their own Adam and renormalised to Σ = T each step",
        params=GradNormParams,
        configurations=_configurations,
        needs=frozenset({Need.LOSSES, Need.SHARED_LAYER_GRADIENTS}),
        packed=PackedGradNorm,
        train_defaults={"alpha": 0.12},
        order=10,
        first_release=True,
    )

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
        self.initial_losses, self._missing_initial = initial_losses(self.initial_loss_mode, context)

    @property
    def weights(self) -> torch.Tensor:
        return self._w.detach()

    def step(self, training_step: TrainingStep) -> None:
        assert self._optimizer is not None, "start() must be called first"
        losses = training_step.losses.detach()
        self.initial_losses, self._missing_initial = fill_initial_losses(
            self.initial_losses, self._missing_initial, losses
        )
        w = self._w.detach()
        training_step.backward(w)  # the network's gradient, with w(t)
        norms = training_step.shared_layer_gradient_norms()  # G_i = ‖∇_W w_i L_i‖
        self._w.grad = weight_gradient(norms, losses, self.initial_losses, w, self.alpha)
        self._optimizer.step()
        renormalise(self._w)

    def hyperparameters(self) -> dict[str, object]:
        return {"alpha": self.alpha, "lr": self.lr, "initial_loss": self.initial_loss_mode}


def initial_losses(
    mode: InitialLoss, context: BalancerContext
) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """``L_i(0)`` known before the first step, and which tasks still take their first batch.

    ``first_batch`` knows nothing yet (None); ``theoretical`` takes the problem's closed forms
    and marks the tasks without one; ``first_epoch_mean`` averages the untrained network's
    losses over the training split.
    """
    if mode == "theoretical":
        values = context.theoretical_initial_losses
        if values is None:
            raise BalancerError(
                "gradnorm: initial_loss=theoretical, but this problem has no "
                "theoretical initial losses: use first_batch or first_epoch_mean"
            )
        if len(values) != context.task_count:
            raise BalancerError(
                f"gradnorm: the problem gives {len(values)} theoretical initial losses "
                f"for {context.task_count} tasks"
            )
        missing = torch.tensor([v is None for v in values], device=context.device)
        known = [float("nan") if v is None else v for v in values]
        return torch.tensor(known, device=context.device), missing
    if mode == "first_epoch_mean":
        return context.first_epoch_mean_losses().detach().clone(), None
    return None, None


def fill_initial_losses(
    initial: torch.Tensor | None, missing: torch.Tensor | None, losses: torch.Tensor
) -> tuple[torch.Tensor, None]:
    """At the first step, ``L_i(0)`` of every task not known yet becomes its loss now.

    ``losses`` may carry leading member dimensions (a pack): the result then has them too.
    """
    if initial is None:
        return losses.clone(), None
    if missing is not None:
        return torch.where(missing, losses, initial), None
    return initial, None


def weight_gradient(
    norms: torch.Tensor,
    losses: torch.Tensor,
    initial: torch.Tensor,
    w: torch.Tensor,
    alpha: float | torch.Tensor,
) -> torch.Tensor:
    """``∂L_grad/∂w_i = sign(G_i − Ḡ r_i^α) · G_i / w_i``, over the last dimension (tasks).

    ``alpha`` is a float, or a ``(K, 1)`` tensor when ``K`` members are updated at once.
    """
    inverse_rate = losses / initial
    relative_rate = inverse_rate / inverse_rate.mean(dim=-1, keepdim=True)
    target = norms.mean(dim=-1, keepdim=True) * relative_rate**alpha  # held constant
    return torch.sign(norms - target) * norms / w


def renormalise(w: torch.Tensor) -> None:
    """Keep every ``w_i > 0`` and ``Σ_i w_i = T`` (each row, for a pack)."""
    with torch.no_grad():
        w.clamp_(min=MIN_WEIGHT)
        w.mul_(w.shape[-1] / w.sum(dim=-1, keepdim=True))
