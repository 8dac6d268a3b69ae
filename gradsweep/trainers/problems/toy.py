"""The paper's Sec. 4 toy regression, where task losses differ in scale by orders of magnitude."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

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

INPUT_DIM = 250
OUTPUT_DIM = 100
HIDDEN_DIM = 100
TRUNK_LAYERS = 4
B_STD = 10.0
EPSILON_STD = 3.5

SIGMA_PRESETS: dict[int, tuple[float, ...]] = {
    2: (1.0, 100.0),
    10: (48.0, 3.0, 54.0, 16.0, 9.0, 30.0, 52.0, 26.0, 47.0, 81.0),
}


def _check_sigmas(tasks: int, sigmas: Sequence[float] | None) -> tuple[float, ...]:
    if tasks < 2:
        raise ProblemError(f"toy: tasks must be at least 2, got {tasks}")
    if sigmas is None:
        if tasks not in SIGMA_PRESETS:
            raise ProblemError(
                f"toy: no sigma preset for {tasks} tasks (presets: 2, 10); pass sigmas"
            )
        return SIGMA_PRESETS[tasks]
    if len(sigmas) != tasks:
        raise ProblemError(f"toy: {len(sigmas)} sigmas given for {tasks} tasks")
    if any(not s > 0 for s in sigmas):
        raise ProblemError(f"toy: sigmas must be positive, got {list(sigmas)}")
    return tuple(float(s) for s in sigmas)


def generate_toy_data(
    sigmas: Sequence[float], samples: int, data_seed: int, extra_samples: int = 0
) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
    """Draw ``x`` and ``f_i(x) = σ_i tanh((B + ε_i) x)`` from a generator seeded by ``data_seed``.

    ``extra_samples`` (the validation set) are drawn after the first ``samples``, so adding
    them leaves those (training and test) as they were.

    The paper gives B ~ N(0, 10) and ε_i ~ N(0, 3.5) elementwise without saying whether
    the second number is a standard deviation or a variance; like the public
    implementations we read it as a standard deviation. ``x`` ~ N(0, 1) (unspecified too).
    """
    gen = torch.Generator().manual_seed(data_seed)
    b = torch.randn(OUTPUT_DIM, INPUT_DIM, generator=gen, dtype=torch.float64) * B_STD
    eps = [
        torch.randn(OUTPUT_DIM, INPUT_DIM, generator=gen, dtype=torch.float64) * EPSILON_STD
        for _ in sigmas
    ]
    x = torch.randn(samples, INPUT_DIM, generator=gen, dtype=torch.float64)
    if extra_samples:
        extra = torch.randn(extra_samples, INPUT_DIM, generator=gen, dtype=torch.float64)
        x = torch.cat([x, extra])
    ys = tuple(sigma * torch.tanh(x @ (b + e).T) for sigma, e in zip(sigmas, eps, strict=True))
    dtype = torch.get_default_dtype()
    return x.to(dtype), tuple(y.to(dtype) for y in ys)


class ToyRegression(MultitaskProblem):
    """T regression tasks sharing a 4-layer ReLU trunk, one affine head each (paper Sec. 4).

    Data (and the matrices B, ε_i) come from ``data_seed``; the network's initialisation
    from the trial's seed, so every arm of a study sees the same data and starts alike.
    """

    name = "toy"

    def __init__(
        self,
        tasks: int = 2,
        sigmas: Sequence[float] | None = None,
        train_samples: int = 20000,
        test_samples: int = 2000,
        data_seed: int = 0,
        val_samples: int | None = None,
        batch_size: int = 100,
        learning_rate: float = 1e-3,
    ) -> None:
        self.sigmas = _check_sigmas(tasks, sigmas)
        val_samples = test_samples if val_samples is None else val_samples
        if train_samples < batch_size or min(test_samples, val_samples, batch_size) < 1:
            raise ProblemError(
                "toy: need train_samples >= batch_size >= 1, test_samples >= 1 and "
                f"val_samples >= 1, got {train_samples}, {batch_size}, {test_samples}, "
                f"{val_samples}"
            )
        self.data_seed = data_seed
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.tasks = tuple(TaskInfo(f"task{i}", "mse", "min") for i in range(tasks))
        x, ys = generate_toy_data(
            self.sigmas, train_samples + test_samples, data_seed, extra_samples=val_samples
        )
        test_end = train_samples + test_samples
        self.train_data = TensorData(x[:train_samples], tuple(y[:train_samples] for y in ys))
        self.test_data = TensorData(
            x[train_samples:test_end], tuple(y[train_samples:test_end] for y in ys)
        )
        self.val_data = TensorData(x[test_end:], tuple(y[test_end:] for y in ys))
        self.val_samples = val_samples

    def build_model(self) -> MultitaskModel:
        """Four ReLU layers; the last ReLU opens each head so that ``z = h Wᵀ + b``.

        The function is the paper's (a parameter-free ReLU applied to the shared output
        before each affine head), and GradNorm's per-task gradients at ``W`` become one
        batched matrix product.
        """
        layers: list[nn.Module] = []
        width = INPUT_DIM
        for _ in range(TRUNK_LAYERS):
            layers += [nn.Linear(width, HIDDEN_DIM), nn.ReLU()]
            width = HIDDEN_DIM
        trunk = nn.Sequential(*layers[:-1])
        heads = [nn.Sequential(nn.ReLU(), nn.Linear(HIDDEN_DIM, OUTPUT_DIM)) for _ in self.tasks]
        last_linear = layers[-2]
        assert isinstance(last_linear, nn.Linear)
        return MultitaskModel(trunk, heads, last_linear.weight)

    def task_losses(self, outputs: Sequence[torch.Tensor], batch: Batch) -> list[torch.Tensor]:
        return [
            nn.functional.mse_loss(out, target)
            for out, target in zip(outputs, batch.targets, strict=True)
        ]

    def metric_accumulator(self) -> MetricAccumulator:
        return MeanMetrics(
            lambda outputs, batch: [
                {"mse": float(loss)} for loss in self.task_losses(outputs, batch)
            ]
        )

    def describe(self) -> dict[str, object]:
        return {
            **super().describe(),
            "sigmas": list(self.sigmas),
            "data_seed": self.data_seed,
            "train_samples": len(self.train_data),
            "test_samples": len(self.test_data),
            "val_samples": self.val_samples,
        }
