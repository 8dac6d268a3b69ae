from __future__ import annotations

import math

import numpy as np
import optuna
import pytest

from gradsweep.search.simplex import (
    dirichlet_points,
    format_weights,
    grid_points,
    grid_size,
    optuna_point,
    weights_from_optuna_params,
)


@pytest.mark.parametrize(("tasks", "resolution"), [(2, 10), (3, 4), (5, 3)])
def test_grid_is_every_point_of_the_lattice(tasks: int, resolution: int) -> None:
    with_vertices = grid_points(tasks, resolution, include_vertices=True)
    without = grid_points(tasks, resolution)
    assert len(with_vertices) == math.comb(resolution + tasks - 1, tasks - 1)
    assert len(with_vertices) == grid_size(tasks, resolution, True)
    assert len(without) == len(with_vertices) - tasks == grid_size(tasks, resolution)
    assert len(set(with_vertices)) == len(with_vertices)
    for point in with_vertices:
        assert sum(point) == pytest.approx(tasks) and min(point) >= 0
        assert all(
            abs(w * resolution / tasks - round(w * resolution / tasks)) < 1e-9 for w in point
        )
    assert grid_points(tasks, resolution) == without  # deterministic order


def test_dirichlet_points_are_deterministic_and_uniform() -> None:
    assert dirichlet_points(3, 5, seed=7) == dirichlet_points(3, 5, seed=7)
    assert dirichlet_points(3, 5, seed=7) != dirichlet_points(3, 5, seed=8)
    points = np.array(dirichlet_points(4, 20000, seed=0))
    assert np.allclose(points.sum(axis=1), 4.0)
    assert np.allclose(points.mean(axis=0), 1.0, atol=0.03)
    # uniform on the simplex: each coordinate / T is Beta(1, T-1), variance (T-1)/(T²(T+1))
    assert np.allclose((points / 4).var(axis=0), 3 / (16 * 5), rtol=0.05)


@pytest.mark.parametrize("tasks", [2, 3, 5])
@pytest.mark.parametrize(
    "sampler",
    [
        optuna.samplers.TPESampler(seed=0),
        optuna.samplers.RandomSampler(seed=0),
        optuna.samplers.QMCSampler(seed=0),
    ],
    ids=["tpe", "random", "qmc"],
)
def test_optuna_points_are_always_valid(tasks: int, sampler: optuna.samplers.BaseSampler) -> None:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(sampler=sampler)
    points = []

    def objective(trial: optuna.Trial) -> float:
        point = optuna_point(trial, tasks)
        points.append(point)
        assert weights_from_optuna_params(trial.params, tasks) == point
        return point[0]

    study.optimize(objective, n_trials=15)
    for point in points:
        assert len(point) == tasks and sum(point) == pytest.approx(tasks) and min(point) > 0


def test_format_weights() -> None:
    assert format_weights((0.75, 0.75, 1.5)) == "0.75,0.75,1.5"
    assert format_weights([1 / 3, 2 / 3]) == "0.333333,0.666667"
