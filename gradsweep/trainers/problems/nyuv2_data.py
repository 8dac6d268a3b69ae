"""The preprocessed NYUv2 ``.npy`` layout, read lazily one sample at a time.

``root/{train,val}/{image,label,depth,normal}/{i}.npy`` with ``i`` = 0..n−1 in every
folder: image H×W×3 in [0, 1], label H×W (−1 = ignore, 0..12 classes), depth H×W×1
(0 = invalid), normal H×W×3 in [−1, 1] (all zero = invalid). The whole set is about a
gigabyte, so files are memory-mapped per batch instead of loaded up front.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from gradsweep.errors import ProblemError
from gradsweep.trainers.problems.base import Batch

FIELDS = ("image", "label", "depth", "normal")
CLASSES = 13
IGNORE_LABEL = -1


def _numbered_files(folder: Path) -> int:
    """How many ``{i}.npy`` files ``folder`` holds, after checking they are exactly 0..n−1."""
    if not folder.is_dir():
        raise ProblemError(f"nyuv2: missing folder {folder}")
    stems = [path.stem for path in folder.glob("*.npy")]
    if not stems:
        raise ProblemError(f"nyuv2: no .npy files in {folder}")
    numbers = sorted(int(stem) for stem in stems if stem.isdigit())
    if len(numbers) != len(stems) or numbers != list(range(len(numbers))):
        raise ProblemError(f"nyuv2: files in {folder} are not numbered 0.npy..{len(stems) - 1}.npy")
    return len(numbers)


def _split_size(split_dir: Path) -> int:
    """The sample count of a split, the same in its four folders."""
    counts = {field: _numbered_files(split_dir / field) for field in FIELDS}
    if len(set(counts.values())) > 1:
        listed = ", ".join(f"{field}={count}" for field, count in counts.items())
        raise ProblemError(f"nyuv2: {split_dir} has different file counts per folder ({listed})")
    return counts["image"]


def _expected_shapes(height: int, width: int) -> dict[str, tuple[int, ...]]:
    return {
        "image": (height, width, 3),
        "label": (height, width),
        "depth": (height, width, 1),
        "normal": (height, width, 3),
    }


def _check_first_sample(split_dir: Path) -> tuple[int, int]:
    """Check ``0.npy`` of every folder against the layout; returns the image size (H, W)."""
    arrays = {field: _open(split_dir / field / "0.npy") for field in FIELDS}
    image = arrays["image"]
    if image.ndim != 3 or image.shape[2] != 3:
        raise ProblemError(
            f"nyuv2: {split_dir / 'image' / '0.npy'} has shape {image.shape}, expected H×W×3"
        )
    expected = _expected_shapes(image.shape[0], image.shape[1])
    for field, array in arrays.items():
        if array.shape != expected[field]:
            raise ProblemError(
                f"nyuv2: {split_dir / field / '0.npy'} has shape {array.shape}, expected "
                f"{expected[field]} to match its image"
            )
    _check_labels(split_dir / "label" / "0.npy", arrays["label"])
    return int(image.shape[0]), int(image.shape[1])


def _check_labels(path: Path, label: np.ndarray) -> None:
    """Labels outside −1..12 would crash the loss on a GPU with an obscure device assert."""
    low, high = float(label.min()), float(label.max())
    if low < IGNORE_LABEL or high > CLASSES - 1:
        raise ProblemError(
            f"nyuv2: {path} has labels in [{low:g}, {high:g}], expected {IGNORE_LABEL} (ignore) "
            f"or 0..{CLASSES - 1}"
        )


def _open(path: Path) -> np.ndarray:
    try:
        return np.load(path, mmap_mode="r")
    except (OSError, ValueError) as exc:
        raise ProblemError(f"nyuv2: cannot read {path}: {exc}") from exc


class NYUv2Split:
    """One split (``train`` or ``val``) of the layout, optionally cut to its first samples.

    The constructor checks the folders and the first sample, so a wrong ``root`` fails
    when the problem is built, not in the middle of a trial. Reading draws nothing
    random, so batches may be read ahead on a thread (``prefetch``).
    """

    prefetch = True

    def __init__(self, root: str | Path, split: str, max_samples: int | None = None) -> None:
        root_dir = Path(root)
        if not root_dir.is_dir():
            raise ProblemError(
                f"nyuv2: root {root_dir} is not a directory (set problem.params.root to the "
                "preprocessed NYUv2 folder, {train,val}/{image,label,depth,normal}/N.npy; "
                "see docs/nyuv2.md)"
            )
        self.path = root_dir / split
        if not self.path.is_dir():
            raise ProblemError(f"nyuv2: missing split folder {self.path}")
        if max_samples is not None and max_samples < 1:
            raise ProblemError(f"nyuv2: max samples must be >= 1, got {max_samples}")
        size = _split_size(self.path)
        self.size = size if max_samples is None else min(size, max_samples)
        self.image_size = _check_first_sample(self.path)

    def __len__(self) -> int:
        return self.size

    def _stack(self, field: str, indices: list[int]) -> torch.Tensor:
        arrays = [np.asarray(_open(self.path / field / f"{i}.npy")) for i in indices]
        return torch.from_numpy(np.stack(arrays))

    def batch(self, indices: torch.Tensor, device: torch.device) -> Batch:
        """Images N×3×H×W; targets: label N×H×W (long), depth N×1×H×W, normal N×3×H×W."""
        idx = [int(i) for i in indices.tolist()]
        dtype = torch.get_default_dtype()
        image = self._stack("image", idx).permute(0, 3, 1, 2).to(device, dtype)
        label = self._stack("label", idx).to(device, torch.long)
        depth = self._stack("depth", idx).permute(0, 3, 1, 2).to(device, dtype)
        normal = self._stack("normal", idx).permute(0, 3, 1, 2).to(device, dtype)
        return Batch(image.contiguous(), (label, depth.contiguous(), normal.contiguous()))
