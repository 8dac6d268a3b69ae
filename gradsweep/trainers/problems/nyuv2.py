"""NYUv2: 13-class segmentation, depth and surface normals from one SegNet (GradNorm Sec. 5).

Losses and metrics count valid pixels only: labels of −1, depths of 0 and all-zero
normals carry no ground truth. Metrics are computed over the whole test split at once
(a confusion matrix, sums and a histogram of angles), not averaged per batch.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Protocol

import torch
from torch.nn import functional

from gradsweep.errors import ProblemError
from gradsweep.trainers.problems.base import (
    Batch,
    MetricAccumulator,
    MultitaskModel,
    MultitaskProblem,
    TaskInfo,
)
from gradsweep.trainers.problems.nyuv2_data import CLASSES, IGNORE_LABEL, NYUv2Split
from gradsweep.trainers.problems.segnet import build_segnet

ANGLE_BIN_DEGREES = 0.01
ANGLE_THRESHOLDS = (11.25, 22.5, 30.0)


def _masked_mean(values: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Mean over valid entries; 0 (not NaN) when a batch has none, so a trial goes on."""
    return (values * valid).sum() / valid.sum().clamp(min=1)


def normal_valid(normal: torch.Tensor) -> torch.Tensor:
    """N×H×W mask of pixels whose ground-truth normal is not all zero."""
    return normal.abs().sum(dim=1) > 0


def segmentation_loss(logits: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
    """Cross-entropy over labelled pixels (label −1 is ignored)."""
    per_pixel = functional.cross_entropy(logits, label, ignore_index=IGNORE_LABEL, reduction="none")
    return _masked_mean(per_pixel, label != IGNORE_LABEL)


def depth_loss(prediction: torch.Tensor, depth: torch.Tensor) -> torch.Tensor:
    """L1 over pixels with a measured depth (depth > 0)."""
    return _masked_mean((prediction - depth).abs(), depth > 0)


def normal_loss(prediction: torch.Tensor, normal: torch.Tensor) -> torch.Tensor:
    """1 − cosine similarity over pixels with a ground-truth normal."""
    cosine = functional.cosine_similarity(prediction, normal, dim=1)
    return _masked_mean(1 - cosine, normal_valid(normal))


class TaskStats(Protocol):
    """One task's running metric state over a split."""

    def update(self, output: torch.Tensor, target: torch.Tensor) -> None: ...

    def compute(self) -> dict[str, float]: ...


class SegmentationStats:
    """A confusion matrix over the split: mIoU (classes present in prediction or truth) and
    pixel accuracy."""

    def __init__(self, classes: int = CLASSES) -> None:
        self.classes = classes
        self.confusion = torch.zeros(classes * classes, dtype=torch.long)

    def update(self, logits: torch.Tensor, label: torch.Tensor) -> None:
        valid = label != IGNORE_LABEL
        cells = label[valid] * self.classes + logits.argmax(dim=1)[valid]
        counts = torch.bincount(cells, minlength=self.classes**2)
        self.confusion = self.confusion.to(counts.device) + counts

    def compute(self) -> dict[str, float]:
        matrix = self.confusion.view(self.classes, self.classes).double()  # truth × prediction
        hits = matrix.diagonal()
        union = matrix.sum(dim=0) + matrix.sum(dim=1) - hits
        present = union > 0
        return {
            "miou": float((hits[present] / union[present]).mean()) if present.any() else 0.0,
            "pixel_acc": float(hits.sum() / matrix.sum().clamp(min=1)),
        }


class DepthStats:
    """Absolute and relative depth error, averaged over every valid pixel of the split."""

    def __init__(self) -> None:
        self.sums = torch.zeros(3, dtype=torch.float64)  # |error|, |error| / depth, count

    def update(self, prediction: torch.Tensor, depth: torch.Tensor) -> None:
        valid = depth > 0
        target = depth[valid].double()
        error = (prediction[valid].double() - target).abs()
        batch = torch.stack([error.sum(), (error / target).sum(), target.new_tensor(error.numel())])
        self.sums = self.sums.to(batch.device) + batch

    def compute(self) -> dict[str, float]:
        absolute, relative, count = self.sums.tolist()
        count = max(count, 1.0)
        return {"abs_err": absolute / count, "rel_err": relative / count}


class NormalStats:
    """Angle errors in degrees over every valid pixel: mean, sums per threshold, and a
    histogram of 0.01° bins for the median, so memory stays bounded on any split size."""

    def __init__(self) -> None:
        self.bins = round(180 / ANGLE_BIN_DEGREES)
        self.histogram = torch.zeros(self.bins, dtype=torch.long)
        self.sums = torch.zeros(1 + len(ANGLE_THRESHOLDS), dtype=torch.float64)
        self.count = 0

    def update(self, prediction: torch.Tensor, normal: torch.Tensor) -> None:
        cosine = functional.cosine_similarity(prediction, normal, dim=1)[normal_valid(normal)]
        angle = torch.rad2deg(torch.acos(cosine.double().clamp(-1, 1)))
        within = [(angle < t).sum().double() for t in ANGLE_THRESHOLDS]
        batch = torch.stack([angle.sum(), *within])
        self.sums = self.sums.to(batch.device) + batch
        index = (angle / ANGLE_BIN_DEGREES).long().clamp(0, self.bins - 1)  # NaN must not crash
        counts = torch.bincount(index, minlength=self.bins)
        self.histogram = self.histogram.to(counts.device) + counts
        self.count += int(angle.numel())

    def median(self) -> float:
        """The median to within one bin: the mean of the centres of the bins holding the
        middle value(s)."""
        ranks = torch.tensor([(self.count + 1) // 2, self.count // 2 + 1], dtype=torch.long)
        cumulative = self.histogram.cumsum(0).cpu()
        bins = torch.searchsorted(cumulative, ranks).double()
        return float(((bins + 0.5) * ANGLE_BIN_DEGREES).mean())

    def compute(self) -> dict[str, float]:
        if self.count == 0:
            return {"mean_angle": 0.0, "median_angle": 0.0} | {
                f"within_{t:g}": 0.0 for t in ANGLE_THRESHOLDS
            }
        total, *within = self.sums.tolist()
        metrics = {"mean_angle": total / self.count, "median_angle": self.median()}
        for threshold, hits in zip(ANGLE_THRESHOLDS, within, strict=True):
            metrics[f"within_{threshold:g}"] = 100 * hits / self.count
        return metrics


class NYUv2Metrics(MetricAccumulator):
    """Segmentation, depth and normal metrics over the whole test split."""

    def __init__(self) -> None:
        self.stats: tuple[TaskStats, ...] = (SegmentationStats(), DepthStats(), NormalStats())

    @torch.no_grad()
    def update(self, outputs: Sequence[torch.Tensor], batch: Batch) -> None:
        for stats, output, target in zip(self.stats, outputs, batch.targets, strict=True):
            stats.update(output, target)

    def compute(self) -> list[dict[str, float]]:
        return [stats.compute() for stats in self.stats]


def _check_params(**values: int | float | None) -> None:
    for name, value in values.items():
        if value is not None and not value > 0:
            raise ProblemError(f"nyuv2: {name} must be > 0, got {value}")


class NYUv2(MultitaskProblem):
    """The preprocessed NYUv2 at ``root`` (``val`` is the test split) with a SegNet trunk.

    ``width`` is the first level's channels (64 is SegNet's), ``levels`` the number of
    pooling levels (5 is SegNet's); ``max_train``/``max_test`` keep the first samples of
    each split for quick runs. Adam at 1e-4 is what the public NYUv2 SegNet baselines use.
    """

    name = "nyuv2"
    tasks = (
        TaskInfo("segmentation", "miou", "max"),
        TaskInfo("depth", "abs_err", "min"),
        TaskInfo("normal", "mean_angle", "min"),
    )
    train_data: NYUv2Split
    test_data: NYUv2Split

    def __init__(
        self,
        root: str,
        width: int = 32,
        levels: int = 5,
        batch_size: int = 8,
        eval_batch_size: int = 8,
        learning_rate: float = 1e-4,
        max_train: int | None = None,
        max_test: int | None = None,
    ) -> None:
        _check_params(
            width=width,
            levels=levels,
            batch_size=batch_size,
            eval_batch_size=eval_batch_size,
            learning_rate=learning_rate,
            max_train=max_train,
            max_test=max_test,
        )
        self.root, self.width, self.levels = str(root), width, levels
        self.batch_size, self.eval_batch_size = batch_size, eval_batch_size
        self.learning_rate = learning_rate
        self.train_data = NYUv2Split(root, "train", max_train)
        self.test_data = NYUv2Split(root, "val", max_test)
        self._check_sizes()

    def _check_sizes(self) -> None:
        if len(self.train_data) < self.batch_size:
            raise ProblemError(
                f"nyuv2: {len(self.train_data)} training samples, fewer than batch_size "
                f"{self.batch_size}"
            )
        for split in (self.train_data, self.test_data):
            if min(split.image_size) < 2**self.levels:
                raise ProblemError(
                    f"nyuv2: images of {split.path} are {split.image_size}, too small for "
                    f"{self.levels} pooling levels (need at least {2**self.levels} pixels a side)"
                )

    def build_model(self) -> MultitaskModel:
        return build_segnet(self.width, self.levels, CLASSES)

    def task_losses(self, outputs: Sequence[torch.Tensor], batch: Batch) -> list[torch.Tensor]:
        label, depth, normal = batch.targets
        return [
            segmentation_loss(outputs[0], label),
            depth_loss(outputs[1], depth),
            normal_loss(outputs[2], normal),
        ]

    def metric_accumulator(self) -> MetricAccumulator:
        return NYUv2Metrics()

    def theoretical_initial_losses(self) -> list[float | None]:
        return [math.log(CLASSES), None, None]

    def describe(self) -> dict[str, object]:
        return {
            **super().describe(),
            "root": self.root,
            "width": self.width,
            "levels": self.levels,
            "train_samples": len(self.train_data),
            "test_samples": len(self.test_data),
            "image_size": list(self.train_data.image_size),
        }
