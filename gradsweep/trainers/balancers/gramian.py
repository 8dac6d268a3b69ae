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

Packed (``PackedGramian``): members of one seed of any Gramian-based balancers share a
pack (their declarations say ``packed=PackedGramian, pack_family=GRAMIAN_FAMILY``). The
packed loop takes every member's task gradients at once (T backward passes for the whole
pack, at each member's own site) and their ``(K, T, T)`` Gramians; ``choose`` runs each
member's own ``weights_of`` on its own Gramian, as it would alone.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from gradsweep.errors import BalancerError
from gradsweep.trainers.balancers.base import Balancer, BalancerContext, NotPackable, PackWeights
from gradsweep.trainers.balancers.declaration import (
    BalancerDeclaration,
    Need,
    default_label,
    param,
)

if TYPE_CHECKING:
    import torch

    from gradsweep.trainers.engine.step import GradientSite, TrainingStep
else:
    from gradsweep.trainers.lazy import torch

Site = Literal["parameters", "representation"]
SITES: tuple[str, ...] = ("parameters", "representation")

#: The pack family of every Gramian-based balancer (its declaration's ``pack_family``).
GRAMIAN_FAMILY = "gramian"


def on_simplex(raw: torch.Tensor) -> torch.Tensor:
    """Raw weights (the last dimension: tasks) rescaled to ``Σ = T``. A step that applies
    no weight at all (torchjd's CAGrad and IMTL-G return zeros on a degenerate Gramian, e.g.
    CAGrad's when ‖G‖ is below its ``norm_eps`` of 1e-4) is recorded as zeros, not NaN."""
    total = raw.sum(dim=-1, keepdim=True)
    scaled = raw * (raw.shape[-1] / torch.where(total == 0, torch.ones_like(total), total))
    return torch.where(total == 0, torch.zeros_like(raw), scaled)


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
        return on_simplex(self._raw)

    def weights_of(self, gramian: torch.Tensor) -> torch.Tensor:
        """The method's weights for this Gramian (its dtype and device)."""
        return self._weighting(gramian)

    @property
    def site(self) -> GradientSite:
        """Where its task gradients are taken, as the training step names it."""
        from gradsweep.trainers.engine.step import GradientSite

        if self.gradients == "representation":
            return GradientSite.REPRESENTATION
        return GradientSite.SHARED_PARAMETERS

    def step(self, training_step: TrainingStep) -> None:
        site = self.site
        gradients = training_step.task_gradients(site)
        self._raw = self.weights_of(training_step.gramian(gradients)).detach()
        training_step.backward_aggregated(self._raw, gradients, site)

    def hyperparameters(self) -> dict[str, object]:
        return {**self.options(), "gradients": self.gradients}


class PackedGramian(PackWeights):
    """Members of any Gramian-based balancers in one pack, each weighting itself by its own
    rule from its own Gramian (``pack_family=GRAMIAN_FAMILY``).

    Each step the loop hands over the members' ``(K, T, T)`` Gramians; ``choose`` reads them
    to the host in one copy (a CPU solver reads values anyway: one wait a step on a GPU, not
    one a solver iteration), runs each member's ``weights_of`` there in member order, and
    sends the ``(K, T)`` weights back in one copy. Each member draws from its own stream of
    torch's CPU generator, forked at ``start``, so a randomised rule (PCGrad's order) draws
    what it would alone. A member that failed, or whose Gramian is not finite (about to be
    found failed), keeps its weights. Members keep their own state (GradVac's, Nash-MTL's):
    each is its own balancer instance.

    Only balancers whose step is ``GramianBalancer.step`` (the weights from the Gramian
    alone) pack: one that changes the step (a running average of the gradients, weighted
    heads) would train otherwise than alone.
    """

    def __init__(self, balancers: Sequence[Balancer]) -> None:
        members: list[GramianBalancer] = []
        for balancer in balancers:
            if (
                not isinstance(balancer, GramianBalancer)
                or type(balancer).step is not GramianBalancer.step
                or balancer.needs - {Need.LOSSES, Need.TASK_GRADIENTS}
            ):
                raise NotPackable(
                    f"{balancer.name}: only Gramian balancers whose weights come from the "
                    "Gramian alone (GramianBalancer's step) pack in the gramian family"
                )
            members.append(balancer)
        if len({id(member) for member in members}) < len(members):
            raise NotPackable("one balancer instance is one member of a pack, not several")
        self.balancers = members
        self.task_gradient_sites = tuple(member.site for member in members)
        self._raw = torch.empty(0)
        self._streams: list[torch.Tensor] = []
        self._frozen = [False] * len(members)

    def start(self, context: BalancerContext) -> None:
        forked = torch.get_rng_state()
        self._streams = []
        for member in self.balancers:  # each starts from the state it would start from alone
            torch.set_rng_state(forked)
            member.start(context)
            self._streams.append(torch.get_rng_state())
        self._raw = torch.stack([member.raw_weights for member in self.balancers])
        self._frozen = [False] * len(self.balancers)

    @property
    def raw_weights(self) -> torch.Tensor:
        return self._raw

    @property
    def weights(self) -> torch.Tensor:
        return on_simplex(self._raw)

    def choose(self, gramians: torch.Tensor) -> None:
        host = gramians.detach().to("cpu")
        finite = torch.isfinite(host).flatten(start_dim=1).all(dim=1).tolist()
        raw = self._raw.to("cpu", copy=True)
        outer = torch.get_rng_state()
        try:
            for k, member in enumerate(self.balancers):
                if self._frozen[k] or not finite[k]:
                    continue
                torch.set_rng_state(self._streams[k])
                raw[k] = member.weights_of(host[k]).detach()
                self._streams[k] = torch.get_rng_state()
        finally:
            torch.set_rng_state(outer)
        self._raw = raw.to(self._raw.device)

    def update(self, losses: torch.Tensor, norms: torch.Tensor | None, live: torch.Tensor) -> None:
        """The weights were chosen before the backward (``choose``)."""

    def freeze(self, members: torch.Tensor) -> None:
        for k, failed in enumerate(members.tolist()):
            self._frozen[k] = self._frozen[k] or bool(failed)


def gramian_declaration(**fields: Any) -> BalancerDeclaration:
    """A Gramian balancer's declaration: its key label, its needs (the losses and every
    task's gradient) and its pack family are the family's; ``fields`` give the rest."""
    return BalancerDeclaration(
        label=gramian_label,
        needs=frozenset({Need.LOSSES, Need.TASK_GRADIENTS}),
        packed=PackedGramian,
        pack_family=GRAMIAN_FAMILY,
        **fields,
    )
