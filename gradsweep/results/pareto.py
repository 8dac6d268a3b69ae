"""The static Pareto front, and where each adaptive configuration lands against it.

Every static weighting (mean over its seeds) is a point of per-task values, lower better:
the normalised test loss ``L_i / L_i(0)`` of each task, or for a Δm% study each task's
primary metric relative to the equal-weight baseline, ``100·s_i·(M_i − B_i)/B_i`` (so the
mean over tasks is Δm%). The front is the non-dominated set (a point dominates another
when it is no worse on every task and better on one). For an adaptive configuration ``p``:
``on_front`` (no static weighting dominates it), ``dominated_by`` (how many do) and
``epsilon = max(0, max_f min_i (p_i − f_i))`` over front points ``f``: the largest margin
by which one static weighting beats it on every task at once.

Fronts: T = 1 a minimum, T = 2 a sort and a running minimum, T = 3 Kung's sweep with a
staircase (O(n log n)), beyond that a block-vectorised check against the front so far.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field

import numpy as np

from gradsweep.arms import config_of
from gradsweep.results.study import StudyResults, unique_rows

BLOCK = 1024


def _front_2(points: np.ndarray) -> np.ndarray:
    """Rows sorted lexicographically and distinct: on the front iff its second value is below
    every earlier row's (an earlier row is no worse on the first value)."""
    earlier_best = np.minimum.accumulate(np.r_[np.inf, points[:-1, 1]])
    return points[:, 1] < earlier_best


def _front_3(points: np.ndarray) -> np.ndarray:
    """Kung's sweep: rows sorted and distinct, so an earlier row with values 2 and 3 no
    worse dominates. The staircase holds the front's (v1, v2) with v1 rising, v2 falling."""
    keep = np.zeros(len(points), dtype=bool)
    xs: list[float] = []  # v1 of the staircase, increasing
    ys: list[float] = []  # v2 of the staircase, decreasing
    for index, (x, y) in enumerate(points[:, 1:].tolist()):
        at = bisect.bisect_right(xs, x)
        if at and ys[at - 1] <= y:
            continue  # an earlier row is no worse on every task
        keep[index] = True
        begin = at - 1 if at and xs[at - 1] == x else at  # same v1, larger v2: replaced
        end = at
        while end < len(xs) and ys[end] >= y:
            end += 1
        xs[begin:end] = [x]
        ys[begin:end] = [y]
    return keep


def _dominates(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``[i, j]``: row ``a[i]`` dominates row ``b[j]`` (one task at a time: no a×b×T array)."""
    no_worse = np.ones((len(a), len(b)), dtype=bool)
    better = np.zeros((len(a), len(b)), dtype=bool)
    for task in range(a.shape[1]):
        column, row = a[:, task, None], b[None, :, task]
        no_worse &= column <= row
        better |= column < row
    return no_worse & better


def _front_general(points: np.ndarray) -> np.ndarray:
    """Rows in order of their sum (a dominating row has a smaller sum): each block is checked
    against the front found so far and against itself."""
    order = np.argsort(points.sum(axis=1), kind="stable")
    keep = np.zeros(len(points), dtype=bool)
    front = np.empty((0, points.shape[1]))
    for start in range(0, len(order), BLOCK):
        block = order[start : start + BLOCK]
        candidates = points[block]
        alive = np.ones(len(block), dtype=bool)
        for first in range(0, len(front), BLOCK):
            alive &= ~_dominates(front[first : first + BLOCK], candidates).any(axis=0)
        alive &= ~_dominates(candidates, candidates).any(axis=0)
        keep[block[alive]] = True
        front = np.vstack([front, candidates[alive]])
    return keep


def pareto_mask(points: np.ndarray) -> np.ndarray:
    """Which rows of ``points`` (n × T, lower better, finite) are non-dominated. Equal rows
    share their fate: neither dominates the other."""
    points = np.asarray(points, dtype=float)
    if len(points) == 0:
        return np.zeros(0, dtype=bool)
    unique, inverse = unique_rows(points)
    tasks = unique.shape[1]
    if tasks == 1:
        mask = unique[:, 0] == unique[:, 0].min()
    elif tasks == 2:
        mask = _front_2(unique)
    elif tasks == 3:
        mask = _front_3(unique)
    else:
        mask = _front_general(unique)
    return mask[inverse]  # type: ignore[no-any-return]


@dataclass(frozen=True)
class FrontPoint:
    """A static weighting on the front: its weights and its per-task values."""

    weights: list[float]
    task_values: list[float]


@dataclass(frozen=True)
class Placement:
    """Where one adaptive configuration lands against the static weightings."""

    task_values: list[float]
    on_front: bool
    dominated_by: int
    epsilon: float


@dataclass(frozen=True)
class ParetoView:
    """The static front (sorted by the first task's value) and every adaptive placement,
    keyed by configuration (``gradnorm/a=0.12``)."""

    value_name: str
    front: list[FrontPoint]
    adaptive: dict[str, Placement] = field(default_factory=dict)
    static_points: int = 0


def place(point: np.ndarray, static: np.ndarray, front: np.ndarray) -> Placement:
    """An adaptive configuration's values against all static points and the front."""
    dominated_by = int(_dominates(static, point[None, :])[:, 0].sum()) if len(static) else 0
    margin = float(np.max(np.min(point[None, :] - front, axis=1))) if len(front) else 0.0
    return Placement(
        task_values=[float(v) for v in point],
        on_front=dominated_by == 0,
        dominated_by=dominated_by,
        epsilon=max(0.0, margin),
    )


def pareto_view(
    value_name: str,
    static_weights: np.ndarray,
    static_values: np.ndarray,
    adaptive: dict[str, np.ndarray],
) -> ParetoView:
    """The view from per-weighting values (rows aligned with ``static_weights``) and each
    adaptive configuration's values; rows with a missing value take no part."""
    finite = np.all(np.isfinite(static_values), axis=1)
    weights, values = static_weights[finite], static_values[finite]
    mask = pareto_mask(values)
    front_values, front_weights = values[mask], weights[mask]
    order = np.lexsort(front_values.T[::-1])
    pairs = zip(front_weights[order].tolist(), front_values[order].tolist(), strict=True)
    front = [FrontPoint(w, v) for w, v in pairs]
    placements = {
        config: place(point, values, front_values)
        for config, point in adaptive.items()
        if np.all(np.isfinite(point))
    }
    return ParetoView(value_name, front, placements, int(len(values)))


def _mean_by(labels: list[object], values: np.ndarray) -> tuple[list[object], np.ndarray]:
    """Rows averaged per label, labels in first-seen order."""
    order = list(dict.fromkeys(labels))
    index = {label: i for i, label in enumerate(order)}
    rows = np.array([index[label] for label in labels])
    sums = np.zeros((len(order), values.shape[1]))
    np.add.at(sums, rows, values)
    counts = np.bincount(rows, minlength=len(order))[:, None]
    return order, sums / counts


def study_pareto(results: StudyResults) -> ParetoView | None:
    """The Pareto view of a study (None without scored static trials)."""
    weights, means = results.static_weighting_values
    if len(weights) == 0:
        return None
    values = results.task_values
    adaptive = results.adaptive()
    adaptive = adaptive[adaptive["key"].isin(values.index)]
    configs: dict[str, np.ndarray] = {}
    if len(adaptive):
        names, config_means = _mean_by(
            [config_of(k) for k in adaptive["key"]],
            values.loc[adaptive["key"]].to_numpy(dtype=float),
        )
        configs = {str(name): row for name, row in zip(names, config_means, strict=True)}
    return pareto_view(results.task_value_name, weights, means, configs)
