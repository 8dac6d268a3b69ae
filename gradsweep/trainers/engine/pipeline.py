"""Batches ready before the step asks for them.

Three cases, by where the data lives:

- **On the device already** (a ``TensorData`` on the training device): batches are
  indexed in place, nothing to prepare.
- **Small enough to live there** (a ``TensorData`` of at most ``RESIDENT_BYTES`` on a
  GPU): copied to the device once, then as above.
- **Anything else that says it may be read from a thread** (``prefetch = True`` on the
  data object: ``TensorData``, NYUv2's memory-mapped files): a background thread reads
  the next batches into pinned host memory while the current step runs, and each is sent
  to the device with a non-blocking copy.

Data that does not say so is read on the training thread, because reading it on another
could, for instance, draw augmentation noise from torch's global generator in an order
that differs from run to run. The batches are the same in every case and in the loop's
order, so a trial's result does not depend on the pipeline.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from typing import Any

import torch

from gradsweep.trainers.problems.base import Batch, MultitaskData, TensorData

RESIDENT_BYTES = 512 * 2**20
DEPTH = 3  # batches read ahead
_CPU = torch.device("cpu")


def tensor_bytes(data: TensorData) -> int:
    return sum(t.numel() * t.element_size() for t in (data.inputs, *data.targets))


def on_device(data: MultitaskData, device: torch.device) -> MultitaskData:
    """``data``, moved onto a GPU once when it is a small enough ``TensorData``."""
    if (
        isinstance(data, TensorData)
        and device.type != "cpu"
        and data.inputs.device != device
        and tensor_bytes(data) <= RESIDENT_BYTES
    ):
        return TensorData(data.inputs.to(device), tuple(t.to(device) for t in data.targets))
    return data


def is_resident(data: MultitaskData, device: torch.device) -> bool:
    return isinstance(data, TensorData) and data.inputs.device == device


def batch_stream(
    data: MultitaskData, indices: Iterator[torch.Tensor], device: torch.device
) -> BatchStream:
    """The batches of ``indices`` on ``device``, read ahead when that helps (see above)."""
    if is_resident(data, device) or not getattr(data, "prefetch", False):
        return InlineBatches(data, indices, device)
    return PrefetchedBatches(data, indices, device)


class BatchStream(Iterator[Batch]):
    """An iterator of device batches that must be closed when the run ends."""

    def close(self) -> None:
        """Stop reading ahead (nothing to do for inline reads)."""

    def __enter__(self) -> BatchStream:
        return self

    def __exit__(self, *_: Any) -> None:
        self.close()


class InlineBatches(BatchStream):
    """Each batch read when the step asks for it, on the training thread."""

    def __init__(
        self, data: MultitaskData, indices: Iterator[torch.Tensor], device: torch.device
    ) -> None:
        self.data, self.indices, self.device = data, indices, device
        # data on a GPU is indexed there: send the indices ahead without a host wait
        self.send_indices = device.type == "cuda" and is_resident(data, device)

    def __next__(self) -> Batch:
        indices = next(self.indices)
        if self.send_indices:
            indices = indices.pin_memory().to(self.device, non_blocking=True)
        return self.data.batch(indices, self.device)


_DONE = object()


class PrefetchedBatches(BatchStream):
    """Batches read by a background thread into (pinned) host memory, ``DEPTH`` ahead.

    An exception in the reader reaches the training thread at the batch it concerns.
    """

    def __init__(
        self, data: MultitaskData, indices: Iterator[torch.Tensor], device: torch.device
    ) -> None:
        self.data, self.indices, self.device = data, indices, device
        self.pin = device.type == "cuda"
        self.ready: queue.Queue[object] = queue.Queue(maxsize=DEPTH)
        self.stopping = threading.Event()
        self.ended: BaseException | None = None  # the reader's end: exhausted or an error
        self.thread = threading.Thread(target=self._read, name="gradsweep-batches", daemon=True)
        self.thread.start()

    def _read(self) -> None:
        try:
            for idx in self.indices:
                batch = self.data.batch(idx, _CPU)
                if self.pin:
                    pinned = tuple(t.pin_memory() for t in batch.targets)
                    batch = Batch(batch.inputs.pin_memory(), pinned)
                if not self._put(batch):
                    return
        except BaseException as exc:  # handed to the training thread, raised there
            self._put(exc)
            return
        self._put(_DONE)

    def _put(self, item: object) -> bool:
        while not self.stopping.is_set():
            try:
                self.ready.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def __next__(self) -> Batch:
        if self.ended is not None:
            raise self.ended
        item = self.ready.get()
        if item is _DONE:
            self.ended = StopIteration()
            raise self.ended
        if isinstance(item, BaseException):
            self.ended = item
            raise item
        assert isinstance(item, Batch)
        return Batch(
            item.inputs.to(self.device, non_blocking=self.pin),
            tuple(t.to(self.device, non_blocking=self.pin) for t in item.targets),
        )

    def close(self) -> None:
        self.stopping.set()
        self.thread.join(timeout=5)
