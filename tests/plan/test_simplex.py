from __future__ import annotations

import math
import warnings
from collections.abc import Callable

import numpy as np
import optuna
import pytest

from gradsweep.arms import grid_size, weights_in_key
from gradsweep.plan.simplex import (
    U_LOW,
    dirichlet_points,
    grid_points,
    optuna_point,
    weights_from_optuna_params,
    weights_from_uniforms,
)


@pytest.mark.parametrize(("tasks", "resolution"), [(2, 10), (3, 4), (5, 3), (2, 1), (4, 1)])
def test_grid_is_every_point_of_the_lattice(tasks: int, resolution: int) -> None:
    with_vertices = grid_points(tasks, resolution, include_vertices=True)
    without = grid_points(tasks, resolution)
    assert len(with_vertices) == math.comb(resolution + tasks - 1, tasks - 1)
    assert len(with_vertices) == grid_size(tasks, resolution, True)
    assert len(without) == len(with_vertices) - tasks == grid_size(tasks, resolution)
    assert len(set(with_vertices)) == len(with_vertices)
    assert len({weights_in_key(w) for w in with_vertices}) == len(with_vertices)
    for point in with_vertices:
        assert len(point) == tasks and sum(point) == pytest.approx(tasks) and min(point) >= 0
        steps = [w * resolution / tasks for w in point]
        assert all(abs(k - round(k)) < 1e-9 for k in steps)
    vertices = [p for p in with_vertices if max(p) == pytest.approx(tasks)]
    assert len(vertices) == tasks and not set(vertices) & set(without)
    assert grid_points(tasks, resolution) == without  # deterministic order


@pytest.mark.parametrize(("tasks", "resolution"), [(2, 10), (3, 3), (3, 6), (4, 8), (5, 4)])
@pytest.mark.parametrize("least", [1, 2])
def test_a_least_count_keeps_the_lattice_points_with_every_task_on(
    tasks: int, resolution: int, least: int
) -> None:
    kept = grid_points(tasks, resolution, min_count=least)
    assert len(kept) == grid_size(tasks, resolution, min_count=least)
    expected = [p for p in grid_points(tasks, resolution) if min(p) >= least * tasks / resolution]
    assert kept == expected  # a filter: the same points, keys and order
    if least == 1:
        assert len(kept) == math.comb(resolution - 1, tasks - 1)


def test_a_coarse_grid_mostly_switches_tasks_off() -> None:
    """T = 3, R = 3: 6 of the 7 points without vertices give some task weight 0."""
    points = grid_points(3, 3)
    assert len(points) == 7 and sum(min(p) == 0 for p in points) == 6
    assert grid_points(3, 3, min_count=1) == [(1.0, 1.0, 1.0)]


def test_grid_order_and_values() -> None:
    assert grid_points(2, 4, include_vertices=True) == [
        (2.0, 0.0),
        (1.5, 0.5),
        (1.0, 1.0),
        (0.5, 1.5),
        (0.0, 2.0),
    ]
    assert grid_points(3, 2) == [(1.5, 1.5, 0.0), (1.5, 0.0, 1.5), (0.0, 1.5, 1.5)]
    assert (0.75, 0.75, 1.5) in grid_points(3, 4)
    with pytest.raises(ValueError, match="resolution >= 1"):
        grid_points(3, 0)


def test_dirichlet_points_are_deterministic_and_uniform() -> None:
    assert dirichlet_points(3, 5, seed=7) == dirichlet_points(3, 5, seed=7)
    assert dirichlet_points(3, 5, seed=7) != dirichlet_points(3, 5, seed=8)
    assert all(isinstance(x, float) for x in dirichlet_points(3, 2, seed=0)[0])
    points = np.array(dirichlet_points(4, 20000, seed=0))
    assert np.allclose(points.sum(axis=1), 4.0) and points.min() >= 0
    assert np.allclose(points.mean(axis=0), 1.0, atol=0.03)
    assert_uniform_on_simplex(points / 4)


def assert_uniform_on_simplex(points: np.ndarray) -> None:
    """Each coordinate of a uniform point on the unit simplex is Beta(1, T−1)."""
    tasks = points.shape[1]
    assert np.allclose(points.mean(axis=0), 1 / tasks, atol=0.01)
    assert np.allclose(points.var(axis=0), (tasks - 1) / (tasks**2 * (tasks + 1)), rtol=0.06)
    # P(x_i > 1/2) = (1/2)^(T−1) for Beta(1, T−1)
    assert np.allclose((points > 0.5).mean(axis=0), 0.5 ** (tasks - 1), atol=0.015)


def test_the_optuna_parametrisation_maps_uniforms_to_uniform_points() -> None:
    uniforms = np.random.default_rng(1).uniform(U_LOW, 1.0, size=(20000, 3))
    points = np.array([weights_from_uniforms(list(u)) for u in uniforms])
    assert np.allclose(points.sum(axis=1), 3.0) and points.min() > 0
    assert_uniform_on_simplex(points / 3)


def test_the_optuna_parametrisation_is_valid_at_its_bounds() -> None:
    for uniforms in ([1.0, 1.0, 1.0], [1.0, U_LOW, 0.5], [U_LOW, U_LOW], [0.0, 1.0]):
        point = weights_from_uniforms(uniforms)
        assert sum(point) == pytest.approx(len(uniforms)) and min(point) > 0
    assert weights_from_uniforms([1.0, 1.0, 1.0]) == pytest.approx((1.0, 1.0, 1.0))


SAMPLERS: dict[str, Callable[[], optuna.samplers.BaseSampler]] = {
    "tpe": lambda: optuna.samplers.TPESampler(seed=0, n_startup_trials=5),
    "random": lambda: optuna.samplers.RandomSampler(seed=0),
    "qmc": lambda: optuna.samplers.QMCSampler(seed=0),
    "cmaes": lambda: optuna.samplers.CmaEsSampler(seed=0, n_startup_trials=3),
}


@pytest.mark.parametrize("tasks", [2, 3, 5])
@pytest.mark.parametrize("sampler", list(SAMPLERS))
def test_optuna_points_are_always_valid(tasks: int, sampler: str) -> None:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        study = optuna.create_study(sampler=SAMPLERS[sampler]())
    points: list[tuple[float, ...]] = []

    def objective(trial: optuna.Trial) -> float:
        point = optuna_point(trial, tasks)
        points.append(point)
        return (point[0] - 0.5) ** 2  # pulls samplers towards an edge of the simplex

    study.optimize(objective, n_trials=15)
    assert len(points) == 15
    for trial, point in zip(study.trials, points, strict=True):
        assert len(point) == tasks and sum(point) == pytest.approx(tasks) and min(point) > 0
        assert weights_from_optuna_params(trial.params, tasks) == point  # resume rebuilds it


def test_weights_in_a_key_have_six_significant_digits() -> None:
    assert weights_in_key((0.75, 0.75, 1.5)) == "0.75,0.75,1.5"
    assert weights_in_key([1 / 3, 2 / 3]) == "0.333333,0.666667"
    assert weights_in_key((1.0, 1.0, 1.0)) == "1,1,1"
    assert weights_in_key((1e-7, 2.0)) == "1e-07,2"
