"""A user-defined problem, written as docs/problems.md explains: scikit-learn's wine data.

Three tasks on the 13 chemical measurements of scikit-learn's bundled wine dataset (no
download): the cultivar (3 classes, cross-entropy, accuracy), the colour intensity and the
proline content (two regressions, MSE, on scales that differ by orders of magnitude, like
the paper's toy). Use it from a spec as ``problem: examples.wine_quality:make_problem``
(marked ``@problem_factory``; naming ``examples.wine_quality:WineTasks``, the class, works
too).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from sklearn.datasets import load_wine
from torch import nn
from torch.nn import functional as F

from gradsweep import problem_factory
from gradsweep.errors import ProblemError
from gradsweep.trainers import (
    Batch,
    MetricAccumulator,
    MultitaskModel,
    MultitaskProblem,
    TaskInfo,
    TensorData,
)
from gradsweep.trainers.problems.metrics import MeanMetrics

COLOUR, PROLINE = 9, 12  # the columns predicted (and so removed from the inputs)


def _split(seed: int, test_fraction: float) -> tuple[TensorData, TensorData]:
    """Standardised inputs; targets: cultivar, colour intensity, proline / 100."""
    data = load_wine()
    x = torch.tensor(data.data, dtype=torch.float32)
    y = torch.tensor(data.target, dtype=torch.long)
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))
    x, y = x[order], y[order]
    inputs = x[:, [i for i in range(x.shape[1]) if i not in (COLOUR, PROLINE)]]
    targets = (y, x[:, COLOUR : COLOUR + 1], x[:, PROLINE : PROLINE + 1] / 100.0)
    test = int(len(x) * test_fraction)
    mean, std = inputs[test:].mean(0), inputs[test:].std(0)  # from the training part only
    inputs = (inputs - mean) / std
    return (
        TensorData(inputs[test:], tuple(t[test:] for t in targets)),
        TensorData(inputs[:test], tuple(t[:test] for t in targets)),
    )


class WineTasks(MultitaskProblem):
    """Cultivar, colour intensity and proline from the other measurements."""

    name = "wine"
    tasks = (
        TaskInfo("cultivar", "accuracy", "max"),
        TaskInfo("colour", "mse", "min"),
        TaskInfo("proline", "mse", "min"),
    )

    def __init__(self, hidden: int = 32, seed: int = 0, test_fraction: float = 0.3) -> None:
        if hidden < 1:
            raise ProblemError(f"wine: hidden must be >= 1, got {hidden}")
        if not 0.1 <= test_fraction <= 0.5:
            raise ProblemError(f"wine: test_fraction must be in [0.1, 0.5], got {test_fraction}")
        self.hidden, self.seed = hidden, seed
        self.train_data, self.test_data = _split(seed, test_fraction)
        self.batch_size = 16
        self.learning_rate = 3e-3

    def build_model(self) -> MultitaskModel:
        # The trunk ends in the Linear whose weight is GradNorm's W; activations open the heads.
        trunk = nn.Sequential(nn.Linear(11, self.hidden), nn.ReLU(), nn.Linear(self.hidden, 16))
        heads = [nn.Sequential(nn.ReLU(), nn.Linear(16, out)) for out in (3, 1, 1)]
        return MultitaskModel(trunk, heads, shared_layer=trunk[-1].weight)

    def task_losses(self, outputs: Sequence[torch.Tensor], batch: Batch) -> list[torch.Tensor]:
        cultivar, colour, proline = batch.targets
        return [
            F.cross_entropy(outputs[0], cultivar),
            F.mse_loss(outputs[1], colour),
            F.mse_loss(outputs[2], proline),
        ]

    def metric_accumulator(self) -> MetricAccumulator:
        def batch_metrics(outputs: Sequence[torch.Tensor], batch: Batch) -> list[dict[str, float]]:
            accuracy = (outputs[0].argmax(1) == batch.targets[0]).float().mean()
            return [
                {"accuracy": float(accuracy)},
                {"mse": float(F.mse_loss(outputs[1], batch.targets[1]))},
                {"mse": float(F.mse_loss(outputs[2], batch.targets[2]))},
            ]

        return MeanMetrics(batch_metrics)

    def theoretical_initial_losses(self) -> list[float | None]:
        return [math.log(3), None, None]  # log C for the 3-class cross-entropy

    def describe(self) -> dict[str, object]:
        return {**super().describe(), "hidden": self.hidden, "seed": self.seed}


@problem_factory
def make_problem(hidden: int = 32, seed: int = 0, test_fraction: float = 0.3) -> WineTasks:
    """The factory a spec names; its keyword arguments are the spec's ``problem.params``.
    ``@problem_factory`` marks it as one a spec may name (unmarked, it would be refused)."""
    return WineTasks(hidden=hidden, seed=seed, test_fraction=test_fraction)
