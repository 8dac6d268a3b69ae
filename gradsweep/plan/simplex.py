"""Points on the weight simplex ``{w : w_i ≥ 0, Σ w_i = T}``: grids, uniform samples, Optuna.

Every function is deterministic for its arguments, so a resumed study rebuilds the same
points and the same trial keys.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import optuna

# Optuna samples u_i in [U_LOW, 1]; the ends are clipped so that every w_i is positive.
U_LOW = 1e-6
U_HIGH = 1.0 - 1e-12


def _compositions(total: int, parts: int) -> Iterator[tuple[int, ...]]:
    """All tuples of ``parts`` non-negative integers summing to ``total``, first part largest
    first (so the grid starts at the first task's vertex)."""
    if parts == 1:
        yield (total,)
        return
    for first in range(total, -1, -1):
        for rest in _compositions(total - first, parts - 1):
            yield (first, *rest)


def grid_points(
    tasks: int, resolution: int, include_vertices: bool = False, min_count: int = 0
) -> list[tuple[float, ...]]:
    """Every ``w_i = T·k_i/R`` with ``Σ k_i = R``: the exhaustive search at resolution R.

    Vertices (all weight on one task, i.e. single-task training) are left out unless asked.
    ``min_count``: only the points with every ``k_i ≥ min_count`` (1: the interior, every
    task on); a filter of the same lattice, so the points keep their trial keys.
    """
    _check(tasks >= 1 and resolution >= 1, f"need tasks, resolution >= 1: {tasks}, {resolution}")
    points = []
    for counts in _compositions(resolution, tasks):
        if not include_vertices and max(counts) == resolution:
            continue
        if min(counts) < min_count:
            continue
        points.append(tuple(tasks * k / resolution for k in counts))
    return points


def dirichlet_points(tasks: int, n: int, seed: int) -> list[tuple[float, ...]]:
    """``n`` points uniform on the simplex (Dirichlet(1, …, 1)), scaled to ``Σ = T``."""
    _check(tasks >= 1 and n >= 0, f"need tasks >= 1 and n >= 0: {tasks}, {n}")
    draws = np.random.default_rng(seed).dirichlet(np.ones(tasks), size=n) * tasks
    return [tuple(float(x) for x in row) for row in draws]


def weights_from_uniforms(uniforms: Sequence[float]) -> tuple[float, ...]:
    """``w_i = T·(−log u_i)/Σ_j(−log u_j)``: positive, sums to T, and uniform on the simplex
    when the ``u_i`` are independent uniforms (normalised exponentials are Dirichlet(1)).

    Unlike sampling T−1 free weights and taking the rest, no region is invalid, and unlike
    normalising raw ``u_i`` the induced distribution is uniform, so samplers start unbiased.
    """
    logs = [-math.log(min(max(float(u), U_LOW), U_HIGH)) for u in uniforms]
    total = sum(logs)
    return tuple(len(logs) * x / total for x in logs)


def optuna_point(trial: optuna.Trial, tasks: int) -> tuple[float, ...]:
    """Sample one valid weighting in an Optuna trial (define-by-run: ``u0 … u{T-1}``)."""
    return weights_from_uniforms([trial.suggest_float(f"u{i}", U_LOW, 1.0) for i in range(tasks)])


def weights_from_optuna_params(params: Mapping[str, Any], tasks: int) -> tuple[float, ...]:
    """The same weighting from an Optuna trial's stored parameters (for a resumed study)."""
    return weights_from_uniforms([float(params[f"u{i}"]) for i in range(tasks)])


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(message)
