"""A tiny generated NYUv2 dataset in the preprocessed layout, shared by the tests that need one."""

from __future__ import annotations

from pathlib import Path

import numpy as np

HEIGHT, WIDTH = 16, 24


def write_sample(
    folder: Path, index: int, rng: np.random.Generator, height: int = HEIGHT, width: int = WIDTH
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


def write_dataset(
    root: Path, train: int = 6, val: int = 4, height: int = HEIGHT, width: int = WIDTH
) -> Path:
    """Writes ``train`` and ``val`` samples of ``height``×``width`` pixels under ``root``."""
    rng = np.random.default_rng(0)
    for split, count in (("train", train), ("val", val)):
        for name in ("image", "label", "depth", "normal"):
            (root / split / name).mkdir(parents=True)
        for index in range(count):
            write_sample(root / split, index, rng, height, width)
    return root
