"""The validation split: what selection reads, so that test data is only ever reported.

A problem that brings its own ``val_data`` keeps it. Any other gets ``fraction`` of its
training examples held out, drawn by a fixed seed (``VALIDATION_SEED``): the same examples
for every trial, seed and arm of a study, and never trained on.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from gradsweep.arms import DEFAULT_VALIDATION_FRACTION
from gradsweep.errors import ProblemError
from gradsweep.trainers.problems.base import Batch, MultitaskData, MultitaskProblem, TensorData

VALIDATION_SEED = 20182  # fixed: the held-out examples never depend on a trial's seed


@dataclass(frozen=True)
class HeldOut:
    """Some examples of another split, by index (for data that is not in-memory tensors)."""

    data: MultitaskData
    indices: torch.Tensor

    @property
    def prefetch(self) -> bool:
        return bool(getattr(self.data, "prefetch", False))

    def __len__(self) -> int:
        return int(self.indices.shape[0])

    def batch(self, indices: torch.Tensor, device: torch.device) -> Batch:
        return self.data.batch(self.indices[indices.to(self.indices.device)], device)


def subset(data: MultitaskData, indices: torch.Tensor) -> MultitaskData:
    """``data`` restricted to ``indices``: copied when it is in-memory tensors (batches stay
    one index away, and a GPU can hold it), else a view."""
    if isinstance(data, TensorData):
        return TensorData(data.inputs[indices], tuple(t[indices] for t in data.targets))
    return HeldOut(data, indices)


def hold_out(
    data: MultitaskData, fraction: float, minimum_train: int, seed: int = VALIDATION_SEED
) -> tuple[MultitaskData, MultitaskData]:
    """``(train, validation)``: ``fraction`` of ``data`` drawn by ``seed`` (at least one
    example), the rest kept for training, each in the original order."""
    if not 0.0 < fraction < 1.0:
        raise ProblemError(f"validation fraction must be in (0, 1), got {fraction}")
    size = len(data)
    held = max(1, round(fraction * size))
    if size - held < minimum_train:
        raise ProblemError(
            f"holding out {fraction:g} of {size} training examples for validation leaves "
            f"{size - held}, fewer than one batch ({minimum_train}): give more training "
            "data, a smaller selection.validation_fraction, or the problem's own val_data"
        )
    order = torch.randperm(size, generator=torch.Generator().manual_seed(seed))
    validation, train = order[:held].sort().values, order[held:].sort().values
    return subset(data, train), subset(data, validation)


def with_validation(
    problem: MultitaskProblem, fraction: float = DEFAULT_VALIDATION_FRACTION
) -> MultitaskProblem:
    """``problem`` with a validation split: its own, or ``fraction`` of its training data
    held out (the problem is changed in place and returned)."""
    if problem.val_data is not None:
        if len(problem.val_data) < 1:
            raise ProblemError(f"problem {problem.name!r}: val_data is empty")
        return problem
    problem.train_data, problem.val_data = hold_out(
        problem.train_data, fraction, problem.batch_size
    )
    return problem


def validation_of(problem: MultitaskProblem) -> MultitaskData:
    """The problem's validation split (after ``with_validation``)."""
    if problem.val_data is None:
        raise ProblemError(f"problem {problem.name!r} has no validation split")
    return problem.val_data
