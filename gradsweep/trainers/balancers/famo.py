"""FAMO (Liu, Feng, Stone & Liu, "Fast Adaptive Multitask Optimization", NeurIPS 2023).

FAMO keeps task logits ``ξ`` (zeros at the start), ``z = softmax(ξ)``, and trains the
network on ``Σ_i z_i log(D_i) / c`` with ``D_i = L_i − b_i + ε`` (``b_i = 0``, ``ε = 1e-8``)
and ``c = Σ_i z_i / D_i`` held constant: every task's log-loss falls at about the same rate.
Its gradient is ``Σ_i z_i / (c D_i) ∇L_i``, so the step applies the loss weights
``z / (c D)``, a convex combination (``Σ = 1``), through ``backward``.

After the network's optimiser step, on the same batch, the losses ``L'`` give
``δ_i = log D_i − log D'_i`` (how much each log-loss fell); ``ξ``'s gradient is the
vector-Jacobian product of ``softmax`` at ``ξ`` with ``δ``, and ``ξ`` takes one step of its
own Adam (lr 0.025, weight decay γ = 0.001, the paper's Algorithm 2 and the official
NYU-v2, CelebA and QM9 scripts).

Recorded: ``T · z / (c D)``, the applied weights rescaled to ``Σ = T``; ``raw_weights`` are
``z / (c D)``. They are chosen within the step (they depend on its losses).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from gradsweep.errors import BalancerError
from gradsweep.trainers.balancers.base import Balancer, BalancerContext
from gradsweep.trainers.balancers.declaration import BalancerDeclaration, Need, number, param

if TYPE_CHECKING:
    import torch

    from gradsweep.trainers.engine.step import TrainingStep
else:
    from gradsweep.trainers.lazy import torch

#: FAMO's ε, added to every loss before its logarithm (the official code's).
EPSILON = 1e-8


@dataclass(frozen=True)
class FamoParams:
    """The famo arm: learned task logits, run on every seed."""

    lr: float = param(0.025, description="learning rate of the task logits' Adam", gt=0)
    weight_decay: float = param(
        0.001, description="weight decay γ of the task logits' Adam (the paper's γ)", ge=0
    )


def _label(params: FamoParams) -> str:
    return f"lr={number(params.lr)},wd={number(params.weight_decay)}"


class FamoBalancer(Balancer):
    """Balanced log-loss descent, with task logits learned from each step's loss decrease."""

    declaration = BalancerDeclaration(
        name="famo",
        display="FAMO",
        summary="FAMO (Liu et al., NeurIPS 2023): weights that make every task's log-loss fall "
        "at the same rate, learned from each step's loss decrease",
        weights_meaning="T · z_i / (c D_i), the loss weights FAMO's log-loss objective applies "
        "(z = softmax of the task logits, D = the step's losses, c = Σ z / D), rescaled to Σ = T",
        params=FamoParams,
        label=_label,
        needs=frozenset({Need.LOSSES, Need.AFTER_OPTIMIZER_STEP}),
        from_batch=True,  # w = z / (c·L) of this step's losses
        order=60,
    )

    def __init__(self, lr: float = 0.025, weight_decay: float = 0.001) -> None:
        if not lr > 0:
            raise BalancerError(f"famo: lr must be > 0, got {lr}")
        if not weight_decay >= 0:
            raise BalancerError(f"famo: weight_decay must be >= 0, got {weight_decay}")
        self.lr = float(lr)
        self.weight_decay = float(weight_decay)
        self._logits = torch.nn.Parameter(torch.empty(0))
        self._optimizer: torch.optim.Adam | None = None
        self._applied = torch.empty(0)
        self._log_shifted = torch.empty(0)  # log D of the last step, for its after_step

    def start(self, context: BalancerContext) -> None:
        tasks = context.task_count
        self._logits = torch.nn.Parameter(torch.zeros(tasks, device=context.device))
        self._optimizer = torch.optim.Adam(
            [self._logits], lr=self.lr, weight_decay=self.weight_decay
        )
        self._applied = torch.full((tasks,), 1.0 / tasks, device=context.device)
        self._log_shifted = torch.zeros(tasks, device=context.device)

    @property
    def logits(self) -> torch.Tensor:
        """``ξ``, detached."""
        return self._logits.detach()

    @property
    def raw_weights(self) -> torch.Tensor:
        """``z / (c D)`` of the last step (``1/T`` before the first): they sum to 1."""
        return self._applied

    @property
    def weights(self) -> torch.Tensor:
        return self._applied * self._applied.numel()

    def step(self, training_step: TrainingStep) -> None:
        shifted = training_step.losses.detach() + EPSILON  # D, with FAMO's min losses at 0
        share = torch.softmax(self.logits, dim=0) / shifted  # z_i / D_i
        # ∇ Σ z_i log(D_i) / c = Σ z_i / (c D_i) ∇L_i, with c = Σ z_i / D_i held constant
        self._applied = share / share.sum()
        self._log_shifted = torch.log(shifted)
        training_step.backward(self._applied)

    def after_step(self, training_step: TrainingStep) -> None:
        assert self._optimizer is not None, "start() must be called first"
        decrease = self._log_shifted - torch.log(training_step.losses_after_update() + EPSILON)
        with torch.enable_grad():
            (gradient,) = torch.autograd.grad(
                torch.softmax(self._logits, dim=0), self._logits, grad_outputs=decrease
            )
        self._logits.grad = gradient
        self._optimizer.step()

    def hyperparameters(self) -> dict[str, object]:
        return {"lr": self.lr, "weight_decay": self.weight_decay}
