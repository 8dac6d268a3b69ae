"""Problems that break the contract the way a user's first try does, for the dry run's tests.

Each is importable as ``tests.trainers.broken_problems:make_…`` (marked ``@problem_factory``;
the CLI imports it from the working directory). All are three-task toys, built in ms.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from gradsweep import problem_factory
from gradsweep.trainers import (
    Batch,
    MetricAccumulator,
    MultitaskModel,
    TensorData,
    ToyRegression,
)
from gradsweep.trainers.problems.metrics import MeanMetrics

SMALL = {
    "tasks": 3,
    "sigmas": [1.0, 10.0, 100.0],
    "train_samples": 40,
    "test_samples": 20,
    "batch_size": 20,
}


class TwoLosses(ToyRegression):
    """Returns the losses of the first two tasks only."""

    name = "two-losses"

    def task_losses(self, outputs: Sequence[torch.Tensor], batch: Batch) -> list[torch.Tensor]:
        return super().task_losses(outputs, batch)[:2]


class TwoHeads(ToyRegression):
    """Builds a head for the first two tasks only."""

    name = "two-heads"

    def build_model(self) -> MultitaskModel:
        model = super().build_model()
        return MultitaskModel(model.trunk, list(model.heads)[:2], model.shared_layer)


class UnlabelledTest(ToyRegression):
    """Task 2 has no labels in the test split (its targets are NaN there) and a masked loss,
    so its initial test loss is 0: fine for Δm%, a division by zero for the normalised loss."""

    name = "unlabelled-test"

    def __init__(self) -> None:
        super().__init__(**SMALL)  # type: ignore[arg-type]
        targets = list(self.test_data.targets)
        targets[2] = torch.full_like(targets[2], float("nan"))
        self.test_data = TensorData(self.test_data.inputs, tuple(targets))

    def task_losses(self, outputs: Sequence[torch.Tensor], batch: Batch) -> list[torch.Tensor]:
        losses = [nn.functional.mse_loss(outputs[i], batch.targets[i]) for i in (0, 1)]
        labelled = ~torch.isnan(batch.targets[2])
        error = (outputs[2] - batch.targets[2].nan_to_num()) ** 2 * labelled
        return [*losses, error.sum() / labelled.sum().clamp(min=1)]


class ConstantHead(nn.Module):
    """A head that forgot to read its input: a learned constant."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(width))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.bias.expand(features.shape[0], -1)


class IgnoresSharedFeatures(ToyRegression):
    """Task 1's head never reads the trunk's output, so ``W`` gets no gradient from it."""

    name = "ignores-shared"

    def build_model(self) -> MultitaskModel:
        model = super().build_model()
        heads = list(model.heads)
        heads[1] = ConstantHead(100)
        return MultitaskModel(model.trunk, heads, model.shared_layer)


class WrongSharedLayer(ToyRegression):
    """Names a head's weight as ``W``: MultitaskModel refuses it."""

    name = "wrong-shared-layer"

    def build_model(self) -> MultitaskModel:
        model = super().build_model()
        head = model.heads[0][1]
        assert isinstance(head, nn.Linear)
        return MultitaskModel(model.trunk, list(model.heads), head.weight)


class RaisingLoss(ToyRegression):
    """Task 0's loss multiplies where it meant to subtract: a shape error inside torch."""

    name = "raising-loss"

    def task_losses(self, outputs: Sequence[torch.Tensor], batch: Batch) -> list[torch.Tensor]:
        first = (outputs[0] @ batch.targets[0]).mean()
        return [first, *super().task_losses(outputs, batch)[1:]]


class PerSampleLoss(ToyRegression):
    """Task 2's loss is left per sample (``reduction="none"``), not a scalar."""

    name = "per-sample-loss"

    def task_losses(self, outputs: Sequence[torch.Tensor], batch: Batch) -> list[torch.Tensor]:
        losses = super().task_losses(outputs, batch)
        losses[2] = ((outputs[2] - batch.targets[2]) ** 2).mean(dim=1)
        return losses


class MissingMetric(ToyRegression):
    """Reports ``mae`` where the tasks declare ``mse`` as their primary metric."""

    name = "missing-metric"

    def metric_accumulator(self) -> MetricAccumulator:
        return MeanMetrics(
            lambda outputs, batch: [
                {"mae": float((out - target).abs().mean())}
                for out, target in zip(outputs, batch.targets, strict=True)
            ]
        )


@problem_factory
def make_two_losses() -> TwoLosses:
    return TwoLosses(**SMALL)  # type: ignore[arg-type]


@problem_factory
def make_two_heads() -> TwoHeads:
    return TwoHeads(**SMALL)  # type: ignore[arg-type]


@problem_factory
def make_unlabelled_test() -> UnlabelledTest:
    return UnlabelledTest()


@problem_factory
def make_ignores_shared_features() -> IgnoresSharedFeatures:
    return IgnoresSharedFeatures(**SMALL)  # type: ignore[arg-type]


@problem_factory
def make_wrong_shared_layer() -> WrongSharedLayer:
    return WrongSharedLayer(**SMALL)  # type: ignore[arg-type]


@problem_factory
def make_raising_loss() -> RaisingLoss:
    return RaisingLoss(**SMALL)  # type: ignore[arg-type]


@problem_factory
def make_per_sample_loss() -> PerSampleLoss:
    return PerSampleLoss(**SMALL)  # type: ignore[arg-type]


@problem_factory
def make_missing_metric() -> MissingMetric:
    return MissingMetric(**SMALL)  # type: ignore[arg-type]


@problem_factory
def make_raising_factory() -> ToyRegression:
    raise FileNotFoundError("no data at /data/mine")


class ModuleSharedLayer(ToyRegression):
    """Names the trunk's last module, where its weight is meant."""

    name = "module-shared-layer"

    def build_model(self) -> MultitaskModel:
        model = super().build_model()
        trunk = model.trunk
        assert isinstance(trunk, nn.Sequential)
        return MultitaskModel(trunk, list(model.heads), trunk[-1])  # type: ignore[arg-type]


class FirstLayerShared(ToyRegression):
    """Takes the trunk's first layer for GradNorm's W: it works, on the slower path."""

    name = "first-layer-shared"

    def build_model(self) -> MultitaskModel:
        model = super().build_model()
        trunk = model.trunk
        assert isinstance(trunk, nn.Sequential)
        return MultitaskModel(trunk, list(model.heads), trunk[0].weight)


@problem_factory
def make_module_shared_layer() -> ModuleSharedLayer:
    return ModuleSharedLayer(**SMALL)  # type: ignore[arg-type]


@problem_factory
def make_first_layer_shared() -> FirstLayerShared:
    return FirstLayerShared(**SMALL)  # type: ignore[arg-type]
