"""The task weights of a pack's K members, ``(K, T)``: static rows, or GradNorm vectorised.

A pack holds one balancer family: static weightings, or GradNorm runs that differ only in
α (one lr and one ``initial_loss`` rule). GradNorm's update is the single-run code
(``gradnorm.weight_gradient``) applied to every row at once; one Adam over the ``(K, T)``
tensor is elementwise, hence the same as one Adam per member.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence

import torch

from gradsweep.trainers.balancers.base import Balancer, BalancerContext
from gradsweep.trainers.balancers.catalog import declarations
from gradsweep.trainers.balancers.gradnorm import (
    GradNorm,
    fill_initial_losses,
    initial_losses,
    renormalise,
    weight_gradient,
)
from gradsweep.trainers.balancers.static import StaticBalancer


class NotPackable(ValueError):
    """These balancers cannot train in one pack (mixed families, or not a packable family)."""


class PackWeights(ABC):
    """Owns ``w`` of every member; ``needs_task_gradients`` as for a single balancer."""

    needs_task_gradients: bool = False

    @abstractmethod
    def start(self, context: BalancerContext) -> None:
        """Called once before training; ``context`` is one member's (they share it)."""

    @property
    @abstractmethod
    def weights(self) -> torch.Tensor:
        """``(K, T)``: the weights the next step uses, detached."""

    @abstractmethod
    def update(self, losses: torch.Tensor, norms: torch.Tensor | None, live: torch.Tensor) -> None:
        """After the network's backward: move ``w`` of the ``live`` members."""

    @abstractmethod
    def freeze(self, members: torch.Tensor) -> None:
        """Stop ``members`` (a ``(K,)`` mask) for good: they failed."""


class PackedStatic(PackWeights):
    """Fixed weights per member (equal weights for a member given none)."""

    def __init__(self, balancers: Sequence[StaticBalancer]) -> None:
        self.balancers = list(balancers)
        self._weights = torch.empty(0)

    def start(self, context: BalancerContext) -> None:
        for balancer in self.balancers:  # each checks its own weights against T
            balancer.start(context)
        self._weights = torch.stack([balancer.weights for balancer in self.balancers])

    @property
    def weights(self) -> torch.Tensor:
        return self._weights

    def update(self, losses: torch.Tensor, norms: torch.Tensor | None, live: torch.Tensor) -> None:
        """Static weights never move."""

    def freeze(self, members: torch.Tensor) -> None:
        """Nothing of a static member's ``w`` to stop."""


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


def pack_weights(balancers: Sequence[Balancer]) -> PackWeights:
    """The pack's weights for members of one balancer, from its declaration's ``packed``;
    NotPackable for mixed members or a balancer that does not pack."""
    if not balancers:
        raise NotPackable("a pack needs at least one member")
    kinds = {type(b) for b in balancers}
    packed = balancers[0].declaration.packed
    if len(kinds) > 1 or packed is None:
        packing = ", ".join(d.name for d in declarations() if d.packed is not None)
        names = sorted({b.name for b in balancers})
        raise NotPackable(
            f"only members of one packing balancer ({packing}) pack together (got {names})"
        )
    weights = packed(balancers)
    assert isinstance(weights, PackWeights)
    return weights
