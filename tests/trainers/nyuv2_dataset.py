"""A tiny generated NYUv2 dataset in the preprocessed layout, shared by the tests that need one."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from gradsweep.trainers.problems import nyuv2_synthetic

HEIGHT, WIDTH = 16, 24


def write_sample(
    folder: Path, index: int, rng: np.random.Generator, height: int = HEIGHT, width: int = WIDTH
) -> None:
    nyuv2_synthetic.write_sample(folder, index, rng, height, width)


def write_dataset(
    root: Path, train: int = 6, val: int = 4, height: int = HEIGHT, width: int = WIDTH
) -> Path:
    """Writes ``train`` and ``val`` samples of ``height``×``width`` pixels under ``root``."""
    return nyuv2_synthetic.write_dataset(root, train, val, height, width)
