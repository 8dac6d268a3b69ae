"""Training precision: fp32, or bf16 autocast for the forward pass and the losses.

Under ``bf16`` the network's matrix products and convolutions run in bfloat16 (torch's
autocast policy decides op by op; losses and reductions stay fp32), while the parameters,
their gradients and Adam's moments stay fp32. GradNorm's gradient norms, its weights and
their Adam are computed in fp32 from the captured bf16 task gradients. Evaluation runs
under the same autocast, so a trial's test figures are those of the network as trained.
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from enum import Enum

import torch

from gradsweep.errors import GradsweepError


class PrecisionError(GradsweepError, ValueError):
    """A precision name that is not one of ``Precision``."""


class Precision(str, Enum):
    """How a trial's forward pass runs."""

    FP32 = "fp32"
    BF16 = "bf16"

    def __str__(self) -> str:
        return self.value


def parse_precision(value: str | Precision) -> Precision:
    """``value`` as a Precision, or a GradsweepError (a ValueError) listing the choices."""
    try:
        return Precision(value)
    except ValueError:
        choices = ", ".join(p.value for p in Precision)
        raise PrecisionError(f"precision must be one of {choices}, got {value!r}") from None


def autocast(precision: Precision, device: torch.device) -> AbstractContextManager[object]:
    """The context a forward pass and its losses run in (nothing for fp32)."""
    if precision is Precision.FP32:
        return nullcontext()
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16)


def widened(tensor: torch.Tensor) -> torch.Tensor:
    """``tensor`` in fp32 when autocast left it in a half type, else unchanged (fp64 stays)."""
    return tensor.float() if tensor.dtype in (torch.bfloat16, torch.float16) else tensor
