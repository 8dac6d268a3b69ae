"""A pack's task weights: built by the members' balancers (their declarations' ``packed``).

A pack holds the members of one packing family: static weightings (``static.PackedStatic``),
GradNorm runs that differ only in α (``gradnorm.PackedGradNorm``: the single-run update
applied to every row of the ``(K, T)`` weights at once), or Gramian-based balancers of any
kind (``gramian.PackedGramian``: each member's own rule on its own Gramian). A balancer's
family is its declaration's ``pack_family`` when it names one (members of several
balancers then share packs), else the balancer alone.
"""

from __future__ import annotations

from collections.abc import Sequence

from gradsweep.trainers.balancers.base import Balancer, NotPackable, PackWeights
from gradsweep.trainers.balancers.catalog import declarations
from gradsweep.trainers.balancers.declaration import BalancerDeclaration


def _family(declaration: BalancerDeclaration) -> str:
    return declaration.pack_family or declaration.name


def packing_families() -> str:
    """The built-in packing families, with their balancers where a family has several."""
    members: dict[str, list[str]] = {}
    for declaration in declarations():
        if declaration.packed is not None:
            members.setdefault(_family(declaration), []).append(declaration.name)
    return ", ".join(
        family if names == [family] else f"{family} ({', '.join(names)})"
        for family, names in members.items()
    )


def pack_weights(balancers: Sequence[Balancer]) -> PackWeights:
    """The pack's weights for members of one packing family, from their declarations'
    ``packed``; NotPackable for mixed families or a balancer that does not pack."""
    if not balancers:
        raise NotPackable("a pack needs at least one member")
    first = balancers[0].declaration
    if first.pack_family is None:
        same = all(type(b) is type(balancers[0]) for b in balancers)
    else:
        same = all(b.declaration.pack_family == first.pack_family for b in balancers)
    if first.packed is None or not same:
        names = sorted({b.name for b in balancers})
        raise NotPackable(
            f"only members of one packing family ({packing_families()}) pack together (got {names})"
        )
    if any(b.declaration.packed is not first.packed for b in balancers):
        raise NotPackable(
            f"the {first.pack_family} family's declarations name different packed weights"
        )
    weights = first.packed(balancers)
    assert isinstance(weights, PackWeights)
    return weights
