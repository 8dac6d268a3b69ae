"""Random loss weighting (Lin et al., "Reasonable effectiveness of random weighting", TMLR 2022).

Every step trains with fresh random weights ``λ`` drawn from a fixed distribution, scaled
to ``Σ = T`` like every other balancer here: ``normal`` (the paper's default) is
``λ = softmax(z)``, ``z ~ N(0, I)``; ``dirichlet`` is ``λ ~ Dirichlet(c·1)``. The draws come
from the balancer's own ``torch.Generator`` seeded by the trial's seed, on the CPU and in
float64, so a trial is reproducible on any device and dtype and its draws do not disturb
the network's random stream. Its time-averaged weights are ≈ 1 per task by symmetry: RLW
is the control that says how much of an adaptive method's result any reweighting noise
would give.

Hyperparameters: ``distribution`` (``normal``), ``concentration`` (1.0, Dirichlet only).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, get_args

from gradsweep.errors import BalancerError
from gradsweep.trainers.balancers.base import Balancer, BalancerContext
from gradsweep.trainers.balancers.declaration import BalancerDeclaration, number, param

if TYPE_CHECKING:
    import torch

    from gradsweep.trainers.engine.step import TrainingStep
else:
    from gradsweep.trainers.lazy import torch

Distribution = Literal["normal", "dirichlet"]


@dataclass(frozen=True)
class RlwParams:
    """The rlw arm: fresh random weights at every step."""

    distribution: Distribution = param(
        "normal", description="normal: softmax of N(0, I); dirichlet: Dirichlet(c·1)"
    )
    concentration: float = param(
        1.0, description="the Dirichlet concentration c (dirichlet only)", gt=0
    )


def _label(params: RlwParams) -> str:
    """``normal``, or ``dirichlet=<c>``: the concentration only where it applies."""
    if params.distribution == "dirichlet":
        return f"dirichlet={number(params.concentration)}"
    return params.distribution


class RandomLossWeighting(Balancer):
    """New random weights at every step."""

    declaration = BalancerDeclaration(
        name="rlw",
        display="RLW",
        summary="Random loss weighting (Lin et al. 2022): fresh random weights at every step",
        weights_meaning="a fresh draw each step (T · softmax(z) or T · Dirichlet(c·1)); their "
        "running mean is ≈ 1 per task",
        params=RlwParams,
        label=_label,
        resampled=True,
        order=40,
        first_release=True,
    )

    def __init__(self, distribution: Distribution = "normal", concentration: float = 1.0) -> None:
        if distribution not in get_args(Distribution):
            raise BalancerError(
                f"rlw: distribution must be one of {', '.join(get_args(Distribution))}, "
                f"got {distribution!r}"
            )
        if not concentration > 0:
            raise BalancerError(f"rlw: concentration must be > 0, got {concentration}")
        self.distribution: Distribution = distribution
        self.concentration = float(concentration)
        self._generator = torch.Generator()
        self._weights = torch.empty(0)
        self._tasks = 0
        self._device = torch.device("cpu")

    def start(self, context: BalancerContext) -> None:
        self._generator = torch.Generator().manual_seed(context.seed)
        self._tasks, self._device = context.task_count, context.device
        self._weights = self._draw()

    def _draw(self) -> torch.Tensor:
        if self.distribution == "normal":
            z = torch.randn(self._tasks, generator=self._generator, dtype=torch.float64)
            share = torch.softmax(z, dim=0)
        else:
            alpha = torch.full((self._tasks,), self.concentration, dtype=torch.float64)
            # torch.distributions.Dirichlet takes no generator; this is what it samples with.
            share = torch._sample_dirichlet(alpha, generator=self._generator)
        weights = (self._tasks * share).to(torch.get_default_dtype())
        if self._device.type == "cuda":  # pinned: the copy does not wait for the GPU
            return weights.pin_memory().to(self._device, non_blocking=True)
        return weights.to(self._device)

    @property
    def weights(self) -> torch.Tensor:
        return self._weights

    def step(self, training_step: TrainingStep) -> None:
        training_step.backward(self._weights)
        self._weights = self._draw()

    def hyperparameters(self) -> dict[str, object]:
        return {"distribution": self.distribution, "concentration": self.concentration}
