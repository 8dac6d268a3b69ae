"""A pack's task weights: built by the members' balancer (its declaration's ``packed``).

A pack holds the members of one balancer: static weightings (``static.PackedStatic``), or
GradNorm runs that differ only in α (``gradnorm.PackedGradNorm``: the single-run update
applied to every row of the ``(K, T)`` weights at once).
"""

from __future__ import annotations

from collections.abc import Sequence

from gradsweep.trainers.balancers.base import Balancer, NotPackable, PackWeights
from gradsweep.trainers.balancers.catalog import declarations


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
