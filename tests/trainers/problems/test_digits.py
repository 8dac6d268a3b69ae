from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from gradsweep.errors import ProblemError
from gradsweep.trainers import Budget, GradNorm, StaticBalancer, make_problem, train
from gradsweep.trainers.problems.digits import (
    DIGIT_MAX,
    DIGIT_SIZE,
    DigitSources,
    MultiDigits,
    overlay,
    split_sources,
)

SMALL = {
    "train_samples": 600,
    "test_samples": 200,
    "val_samples": 100,
    "hidden": 32,
    "batch_size": 50,
}


def test_it_is_a_builtin_problem_with_three_kinds_of_task() -> None:
    problem = make_problem("digits", SMALL)
    assert isinstance(problem, MultiDigits)
    assert [(t.name, t.metric, t.direction) for t in problem.tasks] == [
        ("left", "accuracy", "max"),
        ("right", "accuracy", "max"),
        ("reconstruct", "mse", "min"),
    ]
    batch = problem.train_data.batch(torch.arange(5), torch.device("cpu"))
    assert batch.inputs.shape == (5, 12 * 12)
    assert float(batch.inputs.min()) >= 0 and float(batch.inputs.max()) <= 1
    left, right, clean = batch.targets
    assert left.dtype == right.dtype == torch.long and clean.shape == (5, DIGIT_SIZE**2)
    outputs = problem.build_model()(batch.inputs)
    assert [tuple(o.shape) for o in outputs] == [(5, 10), (5, 10), (5, 64)]


def test_canvases_are_the_pixelwise_max_of_two_shifted_digits() -> None:
    images = np.zeros((2, DIGIT_SIZE, DIGIT_SIZE), dtype=np.float32)
    images[0, :, :] = 3.0
    images[1, :, :] = 5.0
    canvas = overlay(images, np.array([[0, 1]]), np.array([[1, 0, 0, 1]]), canvas=12)[0]
    # left digit at rows 1..8, cols 0..7; right digit at rows 4..11, cols 3..10
    assert canvas[1, 0] == 3 and canvas[0, 0] == 0 and canvas[8, 0] == 3
    assert canvas[4, 3] == 5 and canvas[11, 10] == 5 and canvas[11, 11] == 0
    assert canvas[5, 5] == 5  # the overlap takes the brighter digit
    assert int((canvas > 0).sum()) == 2 * 64 - 5 * 5


def test_the_three_source_pools_are_disjoint_and_fixed_whatever_the_data_seed() -> None:
    sources = DigitSources.load()
    assert sources.images.shape == (1797, 8, 8) and float(sources.images.max()) == DIGIT_MAX
    train_pool, val_pool, test_pool = split_sources(len(sources.labels))
    assert (len(train_pool), len(val_pool), len(test_pool)) == (1123, 225, 449)
    assert len(set(train_pool) | set(val_pool) | set(test_pool)) == 1797  # disjoint
    assert np.bincount(sources.labels[val_pool], minlength=10).min() >= 15  # every class
    # the test digits are the ones they were before there was a validation split
    assert test_pool[:6].tolist() == [6, 9, 12, 14, 15, 22] and int(test_pool.sum()) == 407444
    for seed in (0, 7):
        problem = MultiDigits(**{**SMALL, "data_seed": seed})
        assert set(problem.train_pairs.ravel()) <= set(train_pool)
        assert set(problem.val_pairs.ravel()) <= set(val_pool)
        assert set(problem.test_pairs.ravel()) <= set(test_pool)


def test_validation_is_val_samples_canvases_of_validation_digits_only() -> None:
    sources = DigitSources.load()
    _, val_pool, _ = split_sources(len(sources.labels))
    problem = make_problem("digits", {**SMALL, "val_samples": 150})
    assert isinstance(problem, MultiDigits) and problem.val_data is not None
    assert len(problem.val_data) == len(problem.val_pairs) == 150
    assert len(problem.train_data) == 600  # its own validation: no training canvas held out
    assert set(problem.val_pairs.ravel()) <= set(val_pool)
    batch = problem.val_data.batch(torch.arange(150), torch.device("cpu"))
    assert batch.inputs.shape == (150, 12 * 12)
    np.testing.assert_array_equal(batch.targets[0].numpy(), sources.labels[problem.val_pairs[:, 0]])
    assert problem.describe()["val_samples"] == 150


def test_the_test_canvases_do_not_depend_on_the_validation_split() -> None:
    a = MultiDigits(**{**SMALL, "val_samples": 1})
    b = MultiDigits(**{**SMALL, "val_samples": 300})
    assert torch.equal(a.test_data.inputs, b.test_data.inputs)
    assert all(map(torch.equal, a.test_data.targets, b.test_data.targets))
    assert torch.equal(a.train_data.inputs, b.train_data.inputs)
    assert torch.equal(a.val_data.inputs, b.val_data.inputs[:1])
    # the same test canvases as before there was a validation split
    assert a.test_pairs[:3].tolist() == [[930, 1620], [445, 1715], [493, 1446]]


def test_data_depends_on_data_seed_and_the_test_split_not_on_train_samples() -> None:
    a = MultiDigits(**SMALL)
    b = MultiDigits(**{**SMALL, "train_samples": 900})
    c = MultiDigits(**{**SMALL, "data_seed": 1})
    assert torch.equal(a.test_data.inputs, b.test_data.inputs)
    assert torch.equal(a.train_data.inputs, b.train_data.inputs[:600])
    assert not torch.equal(a.test_data.inputs, c.test_data.inputs)


def test_the_reconstruction_target_is_the_clean_left_digit() -> None:
    problem = MultiDigits(**{**SMALL, "reconstruction_scale": 1.0})
    sources = DigitSources.load()
    left = problem.train_pairs[:4, 0]
    clean = problem.train_data.targets[2][:4].numpy()
    expected = sources.images[left].reshape(4, -1) / DIGIT_MAX
    np.testing.assert_allclose(clean, expected, rtol=1e-6)
    labels = problem.train_data.targets[0][:4].numpy()
    np.testing.assert_array_equal(labels, sources.labels[left])


def test_initial_cross_entropies_match_log_c() -> None:
    problem = MultiDigits(**SMALL)
    assert problem.theoretical_initial_losses() == [math.log(10), math.log(10), None]
    torch.manual_seed(0)
    model = problem.build_model()
    batch = problem.test_data.batch(torch.arange(200), torch.device("cpu"))
    with torch.no_grad():
        losses = [float(x) for x in problem.task_losses(model(batch.inputs), batch)]
    assert losses[:2] == pytest.approx([math.log(10)] * 2, abs=0.01)
    assert losses[2] > 10 * math.log(10)  # the reconstruction starts on another scale


def test_every_task_learns() -> None:
    problem = MultiDigits(train_samples=3000, test_samples=500, hidden=64)
    result = train(problem, StaticBalancer(), Budget(steps=600), seed=0, device="cpu")
    left, right, reconstruct = result.test_metrics
    # chance is 0.1; equal weights let the MSE (25× the scale) dominate, so learning is slow
    assert left["accuracy"] > 0.3 and right["accuracy"] > 0.3
    assert reconstruct["mse"] < 0.5 * result.initial_test_losses[2]


def test_gradnorm_takes_log_c_for_the_classifications_and_a_batch_for_the_rest() -> None:
    problem = MultiDigits(**SMALL)
    balancer = GradNorm(alpha=1.0, initial_loss="theoretical")
    train(problem, balancer, Budget(steps=2), seed=0, device="cpu")
    assert balancer.initial_losses is not None
    initial = balancer.initial_losses.tolist()
    assert initial[:2] == pytest.approx([math.log(10)] * 2)
    assert initial[2] > 10 and math.isfinite(initial[2])


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"train_samples": 10}, "need train_samples >= batch_size >= 1"),
        ({"test_samples": 0}, "need .* test_samples >= 1 .*, got 600, 50, 0, 100"),
        ({"val_samples": 0}, "need .* and val_samples >= 1, got 600, 50, 200, 0"),
        ({"hidden": 0}, "hidden must be >= 1, got 0"),
        ({"canvas": 8}, r"canvas must be in \[9, 32\], got 8"),
        ({"canvas": 40}, r"canvas must be in \[9, 32\], got 40"),
        ({"learning_rate": 0}, "learning_rate must be > 0"),
        ({"reconstruction_scale": -1}, "reconstruction_scale must be > 0"),
    ],
)
def test_bad_parameters_are_one_line(params: dict[str, object], message: str) -> None:
    with pytest.raises(ProblemError, match=f"^digits: {message}"):
        MultiDigits(**{**SMALL, **params})
