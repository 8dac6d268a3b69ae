"""MultiMNIST (Sener & Koltun 2018) scaled to scikit-learn's bundled 8×8 digits.

Two digits are overlaid on a small canvas, one near the top-left and one near the
bottom-right, each shifted by up to one pixel, overlapping by pixelwise max. Three tasks of
different kinds and loss scales: classify the left digit, classify the right digit (10-class
cross-entropy) and reconstruct the clean left digit (MSE on the 0–16 intensity scale of
``load_digits`` by default, so that its loss starts some 25× above the ``log 10`` of the
classifications). No download: ``load_digits`` ships with scikit-learn.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from sklearn.datasets import load_digits
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
DIGIT_SIZE = 8
DIGIT_MAX = 16.0  # load_digits' pixel intensities are integers 0..16
MAX_SHIFT = 1  # each digit moves by 0..MAX_SHIFT pixels along each axis
MAX_CANVAS = 32
SPLIT_SEED = 20180  # fixed: every data_seed keeps the same source digits out of training
TEST_SOURCE_FRACTION = 0.25
# of the training sources: 225 digits (15 or more of each class), half as many as test's 449
VAL_SOURCE_FRACTION = 1 / 6
HEAD_INIT_SCALE = 0.01  # near-zero outputs at init: cross-entropy starts at log 10


@dataclass(frozen=True)
class DigitSources:
    """``load_digits`` as float images in [0, 16] with their labels."""

    images: np.ndarray
    labels: np.ndarray

    @classmethod
    def load(cls) -> DigitSources:
        digits = load_digits()
        return cls(digits.images.astype(np.float32), digits.target.astype(np.int64))


def split_off(
    pool: np.ndarray, fraction: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """``(kept, held)``: ``fraction`` of ``pool`` drawn by ``rng``, each sorted."""
    order = rng.permutation(pool)
    held = int(round(len(pool) * fraction))
    return np.sort(order[held:]), np.sort(order[:held])


def split_sources(count: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Indices of the source images for training, validation and testing: disjoint, fixed.

    The split does not depend on ``data_seed``: validation and test canvases are always
    made of digits (writers' samples) never seen in training, the same ones whatever the
    seed. Validation's come out of the training digits, so the test digits stay the ones
    they were before there was a validation split.
    """
    rng = np.random.default_rng(SPLIT_SEED)
    rest, test = split_off(np.arange(count), TEST_SOURCE_FRACTION, rng)
    train, val = split_off(rest, VAL_SOURCE_FRACTION, rng)
    return train, val, test


def overlay(images: np.ndarray, pairs: np.ndarray, shifts: np.ndarray, canvas: int) -> np.ndarray:
    """Canvases with ``images[pairs[:, 0]]`` top-left and ``images[pairs[:, 1]]`` bottom-right.

    ``shifts`` (n×4, in 0..MAX_SHIFT) move the left digit right/down and the right digit
    left/up, towards the centre; overlapping pixels take the maximum, as in MultiMNIST.
    """
    n = len(pairs)
    out = np.zeros((n, canvas, canvas), dtype=np.float32)
    grid = np.arange(DIGIT_SIZE)
    far = canvas - DIGIT_SIZE
    corners = ((shifts[:, 0], shifts[:, 1]), (far - shifts[:, 2], far - shifts[:, 3]))
    sample = np.arange(n)[:, None, None]
    for side, (top, left) in enumerate(corners):
        rows = top[:, None, None] + grid[None, :, None]
        cols = left[:, None, None] + grid[None, None, :]
        out[sample, rows, cols] = np.maximum(out[sample, rows, cols], images[pairs[:, side]])
    return out


def draw_pairs(
    pool: np.ndarray, count: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """``count`` (left, right) source indices from ``pool`` and their shifts.

    Drawn sample by sample, so a larger ``count`` extends the same canvases.
    """
    highs = np.array([len(pool)] * 2 + [MAX_SHIFT + 1] * 4)
    draws = rng.integers(0, highs, size=(count, len(highs)))
    return pool[draws[:, :2]], draws[:, 2:]


def make_split(
    sources: DigitSources,
    pairs: np.ndarray,
    shifts: np.ndarray,
    canvas: int,
    reconstruction_scale: float,
) -> TensorData:
    """Inputs in [0, 1] (flattened canvases); targets: left label, right label, clean left
    digit flattened, on ``[0, reconstruction_scale]``."""
    canvases = overlay(sources.images, pairs, shifts, canvas) / DIGIT_MAX
    clean_left = sources.images[pairs[:, 0]].reshape(len(pairs), -1)
    return TensorData(
        torch.from_numpy(canvases.reshape(len(pairs), -1)).to(torch.get_default_dtype()),
        (
            torch.from_numpy(sources.labels[pairs[:, 0]]),
            torch.from_numpy(sources.labels[pairs[:, 1]]),
            torch.from_numpy(clean_left * (reconstruction_scale / DIGIT_MAX)).to(
                torch.get_default_dtype()
            ),
        ),
    )


def _check_params(
    train_samples: int,
    test_samples: int,
    val_samples: int,
    batch_size: int,
    hidden: int,
    canvas: int,
    learning_rate: float,
    reconstruction_scale: float,
) -> None:
    if not train_samples >= batch_size >= 1 or min(test_samples, val_samples) < 1:
        raise ProblemError(
            "digits: need train_samples >= batch_size >= 1, test_samples >= 1 and "
            f"val_samples >= 1, got {train_samples}, {batch_size}, {test_samples}, "
            f"{val_samples}"
        )
    if hidden < 1:
        raise ProblemError(f"digits: hidden must be >= 1, got {hidden}")
    if not DIGIT_SIZE + MAX_SHIFT <= canvas <= MAX_CANVAS:
        raise ProblemError(
            f"digits: canvas must be in [{DIGIT_SIZE + MAX_SHIFT}, {MAX_CANVAS}], got {canvas}"
        )
    if not learning_rate > 0:
        raise ProblemError(f"digits: learning_rate must be > 0, got {learning_rate}")
    if not reconstruction_scale > 0:
        raise ProblemError(f"digits: reconstruction_scale must be > 0, got {reconstruction_scale}")


class MultiDigits(MultitaskProblem):
    """Left digit, right digit and the clean left digit from one canvas of two overlaid digits.

    Canvases and their pairs come from ``data_seed``; the train/validation/test split of
    the 1797 source images is fixed, so validation and test canvases only hold digits never
    seen in training (nor in each other). The network's initialisation comes from the
    trial's seed.
    """

    name = "digits"
    tasks = (
        TaskInfo("left", "accuracy", "max"),
        TaskInfo("right", "accuracy", "max"),
        TaskInfo("reconstruct", "mse", "min"),
    )

    def __init__(
        self,
        train_samples: int = 10000,
        test_samples: int = 2000,
        val_samples: int = 2000,
        hidden: int = 128,
        canvas: int = 12,
        batch_size: int = 100,
        learning_rate: float = 1e-3,
        reconstruction_scale: float = DIGIT_MAX,
        data_seed: int = 0,
    ) -> None:
        _check_params(
            train_samples,
            test_samples,
            val_samples,
            batch_size,
            hidden,
            canvas,
            learning_rate,
            reconstruction_scale,
        )
        self.hidden, self.canvas, self.data_seed = hidden, canvas, data_seed
        self.batch_size, self.learning_rate = batch_size, learning_rate
        self.reconstruction_scale = float(reconstruction_scale)
        sources = DigitSources.load()
        train_pool, val_pool, test_pool = split_sources(len(sources.labels))
        # One stream per split, so no split's canvases depend on another's size; validation's
        # is the last, so the test canvases are those drawn before it existed.
        streams = (np.random.default_rng([data_seed, split]) for split in (0, 1, 2))
        self.train_pairs, train_shifts = draw_pairs(train_pool, train_samples, next(streams))
        self.test_pairs, test_shifts = draw_pairs(test_pool, test_samples, next(streams))
        self.val_pairs, val_shifts = draw_pairs(val_pool, val_samples, next(streams))
        scale = self.reconstruction_scale
        self.train_data = make_split(sources, self.train_pairs, train_shifts, canvas, scale)
        self.test_data = make_split(sources, self.test_pairs, test_shifts, canvas, scale)
        self.val_data = make_split(sources, self.val_pairs, val_shifts, canvas, scale)

    def build_model(self) -> MultitaskModel:
        """An MLP trunk ending in the Linear that owns ``W``; each head opens with its ReLU.

        Heads' last layers start near zero, so logits are near zero and each cross-entropy
        starts at about ``log 10``, the theoretical initial loss.
        """
        trunk = nn.Sequential(
            nn.Linear(self.canvas**2, self.hidden),
            nn.ReLU(),
            nn.Linear(self.hidden, self.hidden),
        )
        heads = [self._head(out) for out in (CLASSES, CLASSES, DIGIT_SIZE**2)]
        last = trunk[-1]
        assert isinstance(last, nn.Linear)
        return MultitaskModel(trunk, heads, last.weight)

    def _head(self, outputs: int) -> nn.Sequential:
        head = nn.Sequential(
            nn.ReLU(),
            nn.Linear(self.hidden, self.hidden),
            nn.ReLU(),
            nn.Linear(self.hidden, outputs),
        )
        last = head[-1]
        assert isinstance(last, nn.Linear)
        with torch.no_grad():
            last.weight.mul_(HEAD_INIT_SCALE)
            last.bias.zero_()
        return head

    def task_losses(self, outputs: Sequence[torch.Tensor], batch: Batch) -> list[torch.Tensor]:
        left, right, clean = batch.targets
        return [
            functional.cross_entropy(outputs[0], left),
            functional.cross_entropy(outputs[1], right),
            functional.mse_loss(outputs[2], clean),
        ]

    def metric_accumulator(self) -> MetricAccumulator:
        return MeanMetrics(self._batch_metrics)

    def _batch_metrics(
        self, outputs: Sequence[torch.Tensor], batch: Batch
    ) -> list[dict[str, float]]:
        losses = self.task_losses(outputs, batch)
        accuracies = [
            float((out.argmax(dim=1) == label).float().mean())
            for out, label in zip(outputs[:2], batch.targets[:2], strict=True)
        ]
        return [
            {"accuracy": accuracies[0], "loss": float(losses[0])},
            {"accuracy": accuracies[1], "loss": float(losses[1])},
            {"mse": float(losses[2])},
        ]

    def theoretical_initial_losses(self) -> list[float | None]:
        return [math.log(CLASSES), math.log(CLASSES), None]  # log C; MSE has no closed form

    def describe(self) -> dict[str, object]:
        return {
            **super().describe(),
            "train_samples": len(self.train_data),
            "test_samples": len(self.test_data),
            "val_samples": len(self.val_pairs),
            "hidden": self.hidden,
            "canvas": self.canvas,
            "reconstruction_scale": self.reconstruction_scale,
            "data_seed": self.data_seed,
        }
