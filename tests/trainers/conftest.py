from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch


@pytest.fixture
def float64() -> Iterator[None]:
    """Double precision, so two correct implementations agree to ~1e-12, not to float32 noise."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        yield
    finally:
        torch.set_default_dtype(previous)


def small_toy_params(tasks: int, sigmas: list[float] | None = None) -> dict[str, object]:
    return {
        "tasks": tasks,
        "sigmas": sigmas,
        "train_samples": 800,
        "test_samples": 200,
        "batch_size": 40,
    }
