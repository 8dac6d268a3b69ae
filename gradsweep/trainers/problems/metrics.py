"""Metric accumulators shared by problems whose metrics are per-sample means."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from gradsweep.trainers.problems.base import Batch, MetricAccumulator

BatchMetrics = Callable[[Sequence[torch.Tensor], Batch], list[dict[str, float]]]


class MeanMetrics(MetricAccumulator):
    """Averages per-batch metric values weighted by batch size (exact for per-sample means)."""

    def __init__(self, batch_metrics: BatchMetrics) -> None:
        self._batch_metrics = batch_metrics
        self._sums: list[dict[str, float]] = []
        self._count = 0

    def update(self, outputs: Sequence[torch.Tensor], batch: Batch) -> None:
        size = int(batch.inputs.shape[0])
        values = self._batch_metrics(outputs, batch)
        if not self._sums:
            self._sums = [{name: 0.0 for name in task} for task in values]
        for sums, task in zip(self._sums, values, strict=True):
            for name, value in task.items():
                sums[name] += value * size
        self._count += size

    def compute(self) -> list[dict[str, float]]:
        if self._count == 0:
            raise ValueError("no batches were given to the metric accumulator")
        return [{name: total / self._count for name, total in sums.items()} for sums in self._sums]
