from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

from gradsweep.trainers import Budget, GradNorm, NYUv2, TensorData, train
from gradsweep.trainers.engine.loop import epoch_batches
from gradsweep.trainers.engine.pipeline import (
    InlineBatches,
    PrefetchedBatches,
    batch_stream,
    on_device,
)
from gradsweep.trainers.problems.base import Batch
from tests.trainers.nyuv2_dataset import write_dataset
from tests.trainers.user_problem import make_problem

CPU = torch.device("cpu")


@dataclass(frozen=True)
class ThreadSafeData:
    """Data kept apart from the device that says it may be read from a thread."""

    tensors: TensorData
    prefetch = True

    def __len__(self) -> int:
        return len(self.tensors)

    def batch(self, indices: torch.Tensor, device: torch.device) -> Batch:
        return self.tensors.batch(indices, device)


class UnsafeData(ThreadSafeData):
    prefetch = False


class BrokenData(ThreadSafeData):
    def batch(self, indices: torch.Tensor, device: torch.device) -> Batch:
        if int(indices[0]) >= 20:
            raise OSError(f"cannot read sample {int(indices[0])}")
        return super().batch(indices, device)


def _tensors(count: int = 100) -> TensorData:
    generator = torch.Generator().manual_seed(0)
    inputs = torch.randn(count, 3, generator=generator)
    return TensorData(inputs, (inputs.sum(dim=1), inputs[:, 0]))


def _indices(size: int, batch: int = 10) -> Iterator[torch.Tensor]:
    return epoch_batches(size, batch, torch.Generator().manual_seed(1))


def test_data_on_the_device_or_unsafe_for_threads_is_read_inline() -> None:
    tensors = _tensors()
    assert isinstance(batch_stream(tensors, _indices(100), CPU), InlineBatches)
    assert isinstance(batch_stream(UnsafeData(tensors), _indices(100), CPU), InlineBatches)
    assert on_device(tensors, CPU) is tensors


def test_prefetched_batches_are_the_inline_batches_in_the_same_order() -> None:
    tensors = _tensors()
    with batch_stream(ThreadSafeData(tensors), _indices(100), CPU) as ahead:
        assert isinstance(ahead, PrefetchedBatches)
        prefetched = list(itertools.islice(ahead, 25))
    inline = list(itertools.islice(InlineBatches(tensors, _indices(100), CPU), 25))
    for a, b in zip(prefetched, inline, strict=True):
        assert torch.equal(a.inputs, b.inputs)
        assert all(torch.equal(x, y) for x, y in zip(a.targets, b.targets, strict=True))


def test_a_reader_error_reaches_the_step_that_needed_the_batch() -> None:
    indices = (torch.arange(start, start + 10) for start in range(0, 100, 10))
    with batch_stream(BrokenData(_tensors()), indices, CPU) as batches:
        assert [int(b.inputs.shape[0]) for b in itertools.islice(batches, 2)] == [10, 10]
        with pytest.raises(OSError, match="cannot read sample 20"):
            next(batches)
        with pytest.raises(OSError, match="cannot read sample 20"):
            next(batches)  # and stays failed


def test_closing_stops_the_reader_of_an_endless_stream() -> None:
    batches = batch_stream(ThreadSafeData(_tensors()), _indices(100), CPU)
    assert isinstance(batches, PrefetchedBatches)
    next(batches)
    batches.close()
    assert not batches.thread.is_alive()
    assert not any(t.name == "gradsweep-batches" for t in threading.enumerate())


def test_a_finite_stream_ends() -> None:
    indices = iter([torch.arange(0, 10), torch.arange(10, 20)])
    with batch_stream(ThreadSafeData(_tensors()), indices, CPU) as batches:
        assert len(list(batches)) == 2
        with pytest.raises(StopIteration):
            next(batches)


def test_a_run_through_the_reader_is_the_run_read_inline() -> None:
    inline_problem = make_problem(3)
    ahead_problem = make_problem(3)
    ahead_problem.train_data = ThreadSafeData(ahead_problem.train_data)  # type: ignore[assignment]
    ahead_problem.test_data = ThreadSafeData(ahead_problem.test_data)  # type: ignore[assignment]
    budget = Budget(30, eval_every=10, trace_every=1)
    inline = train(inline_problem, GradNorm(0.5), budget, seed=3, device="cpu")
    ahead = train(ahead_problem, GradNorm(0.5), budget, seed=3, device="cpu")
    assert ahead.trace == inline.trace and ahead.test_losses == inline.test_losses
    assert [e.tasks for e in ahead.epochs] == [e.tasks for e in inline.epochs]
    assert not any(t.name == "gradsweep-batches" for t in threading.enumerate())


def test_nyuv2_files_are_read_ahead(tmp_path: Path) -> None:
    problem = NYUv2(root=str(write_dataset(tmp_path / "nyuv2")), width=4, levels=2, batch_size=2)
    stream = batch_stream(problem.train_data, _indices(len(problem.train_data), 2), CPU)
    with stream:
        assert isinstance(stream, PrefetchedBatches)
        assert next(stream).inputs.shape == (2, 3, 16, 24)


def test_small_tensor_data_would_live_on_a_gpu() -> None:
    """Without a GPU here, the rule itself: a small TensorData moves, others stay."""
    tensors = _tensors()
    meta = torch.device("meta")
    moved = on_device(tensors, meta)
    assert isinstance(moved, TensorData) and moved.inputs.device == meta
    assert on_device(ThreadSafeData(tensors), meta).tensors is tensors  # type: ignore[union-attr]
