"""A small convolutional regression problem whose ``W`` is a convolution, for GradNorm's
layer path (and, with a clone after it, the graph path)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from gradsweep.trainers import ToyRegression
from gradsweep.trainers.problems.base import (
    MultitaskModel,
    MultitaskProblem,
    TaskInfo,
    TensorData,
)

SIZE, CHANNELS = 8, 4


class Clone(nn.Module):
    """``x.clone()``: the same values, but not the output of ``W``'s layer any more."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.clone()


def _split(count: int, scales: Sequence[float], generator: torch.Generator) -> TensorData:
    inputs = torch.randn(count, 1, SIZE, SIZE, generator=generator)
    directions = torch.randn(len(scales), SIZE * SIZE, generator=generator)
    flat = inputs.flatten(start_dim=1)
    targets = tuple(
        scale * torch.tanh(flat @ direction / SIZE).unsqueeze(1)
        for scale, direction in zip(scales, directions, strict=True)
    )
    return TensorData(inputs, targets)


class ConvRegression(MultitaskProblem):
    """Regression targets of different scales from 8×8 images; trunk ends in the conv ``W``.

    ``cloned_trunk``: a clone after ``W``'s conv, so the trunk's output is not the layer's
    (GradNorm's graph path).
    """

    name = "conv-regression"
    batch_size = 16
    learning_rate = 1e-3

    def __init__(self, scales: Sequence[float] = (1.0, 10.0), cloned_trunk: bool = False) -> None:
        generator = torch.Generator().manual_seed(7)
        self.tasks = tuple(TaskInfo(f"task{i}", "mse") for i in range(len(scales)))
        self.train_data = _split(160, scales, generator)
        self.test_data = _split(64, scales, generator)
        self.cloned_trunk = cloned_trunk

    def build_model(self) -> MultitaskModel:
        last = nn.Conv2d(CHANNELS, CHANNELS, 3, padding=1)
        layers: list[nn.Module] = [
            nn.Conv2d(1, CHANNELS, 3, padding=1),
            nn.Tanh(),
            nn.Conv2d(CHANNELS, CHANNELS, 3, padding=1),
            nn.Tanh(),
            last,
        ]
        if self.cloned_trunk:
            layers.append(Clone())
        heads = [
            nn.Sequential(nn.Tanh(), nn.Flatten(), nn.Linear(CHANNELS * SIZE * SIZE, 1))
            for _ in self.tasks
        ]
        return MultitaskModel(nn.Sequential(*layers), heads, shared_layer=last.weight)

    # per-task MSE and its metric, as the toy's
    task_losses = ToyRegression.task_losses
    metric_accumulator = ToyRegression.metric_accumulator
