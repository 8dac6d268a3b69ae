"""Counting a run's reads of tensor values back to Python: each is a host sync on a GPU."""

from __future__ import annotations

import os
import traceback
from typing import Any

import torch
from torch.utils._python_dispatch import TorchDispatchMode


class HostReads(TorchDispatchMode):
    """Counts reads of a tensor's value back to Python (each a host sync on a GPU). Adam's
    are left out: it reads its step counts, which it keeps on the CPU for that reason."""

    READS = {"aten::_local_scalar_dense", "aten::is_nonzero", "aten::nonzero"}

    def __init__(self) -> None:
        super().__init__()
        self.count = 0
        self._numpy = torch.Tensor.numpy

    def __enter__(self) -> HostReads:
        # ``.numpy()`` (a CPU solver's input) is no dispatched op, yet on a GPU the copy to
        # the host before it is a sync: count it too
        original, reads = self._numpy, self

        def counted(tensor: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
            if reads._from_gradsweep():
                reads.count += 1
            return original(tensor, *args, **kwargs)

        torch.Tensor.numpy = counted  # type: ignore[method-assign]
        super().__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        torch.Tensor.numpy = self._numpy  # type: ignore[method-assign]
        super().__exit__(*exc)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
        if func._schema.name in self.READS and self._from_gradsweep():
            self.count += 1
        return func(*args, **(kwargs or {}))

    @staticmethod
    def _from_gradsweep() -> bool:
        """Whether the read is not one of torch.optim's (its step counts live on the CPU)."""
        optim = f"{os.sep}torch{os.sep}optim{os.sep}"
        return not any(optim in frame.filename for frame in traceback.extract_stack())
