"""Peak memory of one call, on a GPU (torch's allocator) or on the CPU (the process's pages).

On the CPU, torch allocates through glibc's malloc. With a fixed, low mmap threshold set
before the process starts (``MALLOC_ENV``: glibc reads it at start-up, and a threshold
set later would not apply to the heap that earlier allocations grew), every tensor
above 64 KiB is its own mapping, returned to the system when freed, so the process's
resident size follows the bytes alive; Linux's peak-RSS counter (VmHWM), reset
just before the call, then gives the call's peak above what was alive before it. Linux
only; small tensors (below the threshold) are not seen, which is noise of a few MiB.
"""

from __future__ import annotations

import gc
from collections.abc import Callable
from pathlib import Path

import torch

MALLOC_ENV = {"MALLOC_MMAP_THRESHOLD_": str(64 * 1024), "MALLOC_TRIM_THRESHOLD_": str(64 * 1024)}


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise RuntimeError(f"/proc/self/status has no {field}")


def cpu_peak_bytes(call: Callable[[], object]) -> int:
    """Bytes above the resident size before ``call`` at its peak (Linux, glibc; meaningful
    in a process started with ``MALLOC_ENV``)."""
    gc.collect()
    Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM to the current RSS
    before = _status_kib("VmRSS")
    call()
    return (_status_kib("VmHWM") - before) * 1024


def cuda_peak_bytes(call: Callable[[], object], device: torch.device) -> int:
    """Bytes above what torch had allocated before ``call``, at its peak."""
    gc.collect()
    torch.cuda.synchronize(device)
    torch.cuda.reset_peak_memory_stats(device)
    before = torch.cuda.memory_allocated(device)
    call()
    torch.cuda.synchronize(device)
    return torch.cuda.max_memory_allocated(device) - before


def peak_bytes(call: Callable[[], object], device: torch.device) -> int:
    """The peak memory ``call`` adds on ``device``."""
    if device.type == "cuda":
        return cuda_peak_bytes(call, device)
    return cpu_peak_bytes(call)
