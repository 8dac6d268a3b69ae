"""Random data in NYUv2's preprocessed layout, for tests and benchmarks without the dataset.

The values mean nothing (uniform images, random labels with ignored pixels, depths with
holes, unit normals with holes); the layout, shapes and dtypes are the real ones, so the
reader, the SegNet and the losses run exactly as on the real data.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from gradsweep.trainers.problems.nyuv2_data import FIELDS


def write_sample(
    folder: Path, index: int, rng: np.random.Generator, height: int, width: int
) -> None:
    """One sample in the preprocessed layout, with ignored labels, missing depths and normals."""
    image = rng.random((height, width, 3), dtype=np.float32)
    label = rng.integers(-1, 13, (height, width)).astype(np.float32)
    depth = rng.uniform(0.5, 5.0, (height, width, 1)).astype(np.float32)
    depth[rng.random((height, width)) < 0.2] = 0
    normal = rng.normal(size=(height, width, 3)).astype(np.float32)
    normal /= np.linalg.norm(normal, axis=2, keepdims=True)
    normal[rng.random((height, width)) < 0.2] = 0
    for name, array in (("image", image), ("label", label), ("depth", depth), ("normal", normal)):
        np.save(folder / name / f"{index}.npy", array)


def write_dataset(root: Path, train: int, val: int, height: int, width: int) -> Path:
    """Writes ``train`` and ``val`` samples of ``height``×``width`` pixels under ``root``."""
    rng = np.random.default_rng(0)
    for split, count in (("train", train), ("val", val)):
        for name in FIELDS:
            (root / split / name).mkdir(parents=True)
        for index in range(count):
            write_sample(root / split, index, rng, height, width)
    return root
