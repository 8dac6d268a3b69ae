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
NYU-v2, CelebA and QM9 scripts). That forward pass on the same batch is the method's own
(Algorithm 2, the official code and torchjd's ``FAMO`` all take it): about a fifth of a
toy step, most of FAMO's cost. The rest is kept small: the product is written out,
``z ⊙ (δ − ⟨δ, z⟩)`` (softmax's backward, without building a graph), and the Adam step is
``torch.optim.Adam``'s single-tensor arithmetic op for op (``LogitAdam``: the same values,
bit for bit) without the optimiser's per-call machinery, ~60 µs a step on a CPU.

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
#: the logits' Adam: torch.optim.Adam's defaults, as the official code uses them
BETAS = (0.9, 0.999)
ADAM_EPS = 1e-8


@dataclass(frozen=True)
class FamoParams:
    """The famo arm: learned task logits, run on every seed."""

    lr: float = param(0.025, description="learning rate of the task logits' Adam", gt=0)
    weight_decay: float = param(
        0.001, description="weight decay γ of the task logits' Adam (the paper's γ)", ge=0
    )


class LogitAdam:
    """Adam (with L2 weight decay) on one tensor, updated in place: ``torch.optim.Adam``'s
    single-tensor step op for op, so it moves the logits as that optimiser would, bit for
    bit, but with its step count a Python int (nothing read back from a tensor)."""

    def __init__(self, parameter: torch.Tensor, lr: float, weight_decay: float) -> None:
        self.parameter, self.lr, self.weight_decay = parameter, lr, weight_decay
        self.first = torch.zeros_like(parameter)  # exp_avg
        self.second = torch.zeros_like(parameter)  # exp_avg_sq
        self.steps = 0

    def step(self, gradient: torch.Tensor) -> None:
        beta1, beta2 = BETAS
        self.steps += 1
        gradient = gradient.add(self.parameter, alpha=self.weight_decay)
        self.first.lerp_(gradient, 1 - beta1)
        self.second.mul_(beta2).addcmul_(gradient, gradient, value=1 - beta2)
        correction1 = 1 - beta1 ** float(self.steps)
        correction2 = 1 - beta2 ** float(self.steps)
        denominator = (self.second.sqrt() / correction2**0.5).add_(ADAM_EPS)
        self.parameter.addcdiv_(self.first, denominator, value=-(self.lr / correction1))


def softmax_vjp(logits: torch.Tensor, vector: torch.Tensor) -> torch.Tensor:
    """``J_softmax(ξ)ᵀ v = z ⊙ (v − ⟨v, z⟩)``, ``z = softmax(ξ)``: softmax's backward."""
    z = torch.softmax(logits, dim=0)
    return z * (vector - (vector * z).sum())


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
        self._logits = torch.empty(0)
        self._optimizer: LogitAdam | None = None
        self._applied = torch.empty(0)
        self._log_shifted = torch.empty(0)  # log D of the last step, for its after_step

    def start(self, context: BalancerContext) -> None:
        tasks = context.task_count
        self._logits = torch.zeros(tasks, device=context.device)
        self._optimizer = LogitAdam(self._logits, self.lr, self.weight_decay)
        self._applied = torch.full((tasks,), 1.0 / tasks, device=context.device)
        self._log_shifted = torch.zeros(tasks, device=context.device)

    @property
    def logits(self) -> torch.Tensor:
        """``ξ``, updated in place by its Adam (clone it to keep a value)."""
        return self._logits

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
        self._optimizer.step(softmax_vjp(self._logits, decrease))

    def hyperparameters(self) -> dict[str, object]:
        return {"lr": self.lr, "weight_decay": self.weight_decay}
