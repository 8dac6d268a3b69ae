"""What every Gramian-based balancer shares: the weights from the tasks' ``T × T`` Gramian.

MGDA-like methods look at every task's gradient before they choose the weights. Each step
takes the task gradients (over the shared parameters, exact; or at the shared
representation ``z``, MGDA-UB's cheaper variant), their Gramian ``G Gᵀ``, and a weighting
of torchjd's maps the Gramian to weights ``w``. The shared parameters then receive
``Σ w_i ∇L_i`` (torchjd's aggregation ``Jᵀ w``) and each head its own task's gradient, as
torchjd's ``mtl_backward`` gives them. Recorded: ``w`` rescaled to ``Σ = T`` (the simplex
views); ``raw_weights`` are the ones applied.

This module is no balancer (no declaration): each method's file subclasses
``GramianBalancer`` with its declaration and its weighting.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from gradsweep.errors import BalancerError
from gradsweep.trainers.balancers.base import Balancer, BalancerContext
from gradsweep.trainers.balancers.declaration import default_label, param

if TYPE_CHECKING:
    import torch

    from gradsweep.trainers.engine.step import TrainingStep
else:
    from gradsweep.trainers.lazy import torch

Site = Literal["parameters", "representation"]
SITES: tuple[str, ...] = ("parameters", "representation")


@dataclass(frozen=True)
class GramianParams:
    """The option every Gramian-based arm has: where the task gradients are taken."""

    gradients: Site = param(
        "parameters",
        description="parameters: each task's gradient over the shared parameters (exact); "
        "representation: at the shared features z (MGDA-UB's cheaper variant)",
    )


def gramian_label(params: Any) -> str:
    """The key label: the method's own parameters (``k=v,…``), ``at=z`` for the
    representation variant, ``exact`` for a method without parameters at its default."""
    arguments = {k: v for k, v in vars(params).items() if k != "gradients"}
    parts = [default_label(arguments)] if arguments else []
    if params.gradients == "representation":
        parts.append("at=z")
    return ",".join(parts) or "exact"


class GramianBalancer(Balancer):
    """Weights from the Gramian of the task gradients, through ``make_weighting()``."""

    def __init__(self, gradients: str = "parameters") -> None:
        if gradients not in SITES:
            raise BalancerError(
                f"{self.name}: gradients must be one of {', '.join(SITES)}, got {gradients!r}"
            )
        self.gradients = gradients
        self._raw = torch.empty(0)
        self._weighting: Any = None

    @abstractmethod
    def make_weighting(self) -> Any:
        """A fresh torchjd weighting (``Gramian → weights``); called at every ``start``, so
        a stateful one (GradVac's, Nash-MTL's) begins anew each trial."""

    def options(self) -> Mapping[str, object]:
        """The method's own constructor arguments (besides ``gradients``), for records."""
        return {}

    def start(self, context: BalancerContext) -> None:
        self._weighting = self.make_weighting()
        self._raw = torch.full((context.task_count,), 1.0 / context.task_count).to(context.device)

    @property
    def raw_weights(self) -> torch.Tensor:
        return self._raw

    @property
    def weights(self) -> torch.Tensor:
        return self._raw * (self._raw.numel() / self._raw.sum())

    def weights_of(self, gramian: torch.Tensor) -> torch.Tensor:
        """The method's weights for this Gramian (its dtype and device)."""
        return self._weighting(gramian)

    def step(self, training_step: TrainingStep) -> None:
        from gradsweep.trainers.engine.step import GradientSite

        site = (
            GradientSite.REPRESENTATION
            if self.gradients == "representation"
            else GradientSite.SHARED_PARAMETERS
        )
        gradients = training_step.task_gradients(site)
        self._raw = self.weights_of(training_step.gramian(gradients)).detach()
        training_step.backward_aggregated(self._raw, gradients, site)

    def hyperparameters(self) -> dict[str, object]:
        return {**self.options(), "gradients": self.gradients}
