"""Random task Jacobians for the Gramian weightings' tests, from easy to ill-conditioned.

A balancer that computes a torchjd weighting its own way is held against torchjd on these:
tasks of very different scales (gradient norms 1 to 100), Gramians of condition number
1 (orthogonal-ish rows) up to about 1e12, and a rank-deficient one (fewer directions than
tasks), at T = 2, 3 and 10, in float64.
"""

from __future__ import annotations

import math

import torch

TASK_COUNTS = (2, 3, 10)
#: the condition numbers of the Gramians drawn (of the Jacobian's singular values squared)
CONDITIONS = (1.0, 1e3, 1e6, 1e9, 1e12)
WIDTH = 30  # the Jacobian's columns: the parameters, or the features z


def jacobian(tasks: int, condition: float, generator: torch.Generator) -> torch.Tensor:
    """``(tasks, WIDTH)`` rows of norms spread over 1…100 whose Gramian has about this
    condition number (its singular values spread geometrically, then the rows scaled)."""
    drawn = torch.randn(tasks, WIDTH, generator=generator, dtype=torch.float64)
    left, _, right = torch.linalg.svd(drawn, full_matrices=False)
    spread = torch.logspace(0, -0.5 * math.log10(condition), tasks, dtype=torch.float64)
    order = torch.randperm(tasks, generator=generator)
    scales = torch.logspace(0, 2, tasks, dtype=torch.float64)[order]
    return scales[:, None] * (left @ torch.diag(spread) @ right)


def rank_deficient(tasks: int, generator: torch.Generator) -> torch.Tensor:
    """``tasks`` rows in a ``tasks − 1``-dimensional subspace (one row for one task)."""
    rank = max(tasks - 1, 1)
    basis = torch.randn(rank, WIDTH, generator=generator, dtype=torch.float64)
    return torch.randn(tasks, rank, generator=generator, dtype=torch.float64) @ basis


def jacobians(tasks: int, seed: int = 0) -> list[tuple[str, torch.Tensor]]:
    """Every case for ``tasks`` tasks, named (``cond=1e+06``, ``rank-deficient``)."""
    generator = torch.Generator().manual_seed(seed)
    cases = [
        (f"cond={condition:.0e}", jacobian(tasks, condition, generator)) for condition in CONDITIONS
    ]
    return [*cases, ("rank-deficient", rank_deficient(tasks, generator))]
