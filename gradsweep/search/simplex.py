"""Points on the weight simplex ``{w : w_i ≥ 0, Σ w_i = T}``: grids, uniform samples, Optuna."""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np

U_LOW = 1e-6


def _compositions(total: int, parts: int) -> Iterator[tuple[int, ...]]:
    """All tuples of ``parts`` non-negative integers summing to ``total``, lexicographic."""
    if parts == 1:
        yield (total,)
        return
    for first in range(total, -1, -1):
        for rest in _compositions(total - first, parts - 1):
            yield (first, *rest)


def grid_points(
    tasks: int, resolution: int, include_vertices: bool = False
) -> list[tuple[float, ...]]:
    """Every ``w_i = T·k_i/R`` with ``Σ k_i = R``: the exhaustive search at resolution R.

    Vertices (all weight on one task, i.e. single-task training) are left out unless asked.
    """
    points = []
    for counts in _compositions(resolution, tasks):
        if not include_vertices and max(counts) == resolution:
            continue
        points.append(tuple(tasks * k / resolution for k in counts))
    return points


def grid_size(tasks: int, resolution: int, include_vertices: bool = False) -> int:
    total = math.comb(resolution + tasks - 1, tasks - 1)
    return total if include_vertices else total - tasks


def dirichlet_points(tasks: int, n: int, seed: int) -> list[tuple[float, ...]]:
    """``n`` points uniform on the simplex (Dirichlet(1, …, 1)), scaled to ``Σ = T``."""
    draws = np.random.default_rng(seed).dirichlet(np.ones(tasks), size=n) * tasks
    return [tuple(float(x) for x in row) for row in draws]


def weights_from_uniforms(uniforms: list[float]) -> tuple[float, ...]:
    """``w_i = T·(−log u_i)/Σ_j(−log u_j)``: positive, sums to T, and uniform on the simplex
    when the ``u_i`` are independent uniforms (normalised exponentials are Dirichlet(1))."""
    logs = [-math.log(u) for u in uniforms]
    total = sum(logs)
    tasks = len(uniforms)
    if total <= 0:
        return tuple(1.0 for _ in uniforms)
    return tuple(tasks * x / total for x in logs)


def optuna_point(trial: Any, tasks: int) -> tuple[float, ...]:
    """Sample one valid weighting in an Optuna trial (define-by-run)."""
    return weights_from_uniforms([trial.suggest_float(f"u{i}", U_LOW, 1.0) for i in range(tasks)])


def weights_from_optuna_params(params: Mapping[str, Any], tasks: int) -> tuple[float, ...]:
    """The same weighting from an Optuna trial's stored parameters."""
    return weights_from_uniforms([float(params[f"u{i}"]) for i in range(tasks)])


def format_weights(weights: tuple[float, ...] | list[float]) -> str:
    """Six significant digits, comma-separated: the weights part of a trial key."""
    return ",".join(f"{w:.6g}" for w in weights)
