"""A SegNet-style encoder–decoder shared by NYUv2's three dense tasks, with one head each.

Encoder levels of conv-BN-ReLU blocks, each followed by a 2×2 max-pool whose indices the
decoder's max-unpool reuses (Badrinarayanan et al. 2017). Channels start at ``width`` and
double per level up to 8×``width``: width 64 with 5 levels is SegNet's 64–128–256–512–512.
"""

from __future__ import annotations

from itertools import pairwise

import torch
from torch import nn

from gradsweep.trainers.problems.base import MultitaskModel

BLOCKS_PER_LEVEL = 2
MAX_WIDTH_FACTOR = 8


def conv_block(in_channels: int, out_channels: int) -> nn.Sequential:
    """3×3 conv, batch norm, ReLU: SegNet's unit."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


def level_channels(width: int, levels: int) -> list[int]:
    return [min(width * 2**level, width * MAX_WIDTH_FACTOR) for level in range(levels)]


def _level(in_channels: int, out_channels: int, inner_channels: int) -> nn.Sequential:
    """``BLOCKS_PER_LEVEL`` conv blocks: in → inner → … → out."""
    sizes = [in_channels] + [inner_channels] * (BLOCKS_PER_LEVEL - 1) + [out_channels]
    return nn.Sequential(*(conv_block(a, b) for a, b in pairwise(sizes)))


class SegNetTrunk(nn.Module):
    """Encoder, decoder, then one plain 3×3 conv whose weight is GradNorm's ``W``.

    The trunk ends in that conv (no norm or activation after it, those open each head), so
    the per-task gradients at ``W`` only need that one conv's weight gradient.
    """

    def __init__(self, width: int, levels: int, in_channels: int = 3) -> None:
        super().__init__()
        channels = level_channels(width, levels)
        inputs = [in_channels, *channels[:-1]]
        self.encoder = nn.ModuleList(_level(i, c, c) for i, c in zip(inputs, channels, strict=True))
        # decoder level l runs at the resolution of encoder level l, from its channels to
        # the channels of the level above (width at the top)
        outputs = [width, *channels[:-1]]
        self.decoder = nn.ModuleList(
            _level(c, o, c) for c, o in zip(channels, outputs, strict=True)
        )
        self.pool = nn.MaxPool2d(2, 2, return_indices=True)
        self.unpool = nn.MaxUnpool2d(2, 2)
        self.last_shared = nn.Conv2d(width, width, 3, padding=1)

    @property
    def shared_layer(self) -> nn.Parameter:
        weight = self.last_shared.weight
        assert isinstance(weight, nn.Parameter)
        return weight

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        x = inputs
        pooled: list[tuple[torch.Tensor, torch.Size]] = []
        for level in self.encoder:
            x = level(x)
            size = x.shape
            x, indices = self.pool(x)
            pooled.append((indices, size))
        for level, (indices, size) in zip(reversed(self.decoder), reversed(pooled), strict=True):
            x = level(self.unpool(x, indices, output_size=size))
        return self.last_shared(x)


class L2Normalize(nn.Module):
    """Unit vectors over the channel dimension (surface normals)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.normalize(x, dim=1)


def dense_head(width: int, out_channels: int) -> nn.Sequential:
    """BN-ReLU closing the shared conv per task, a 3×3 conv block, then a 1×1 prediction."""
    return nn.Sequential(
        nn.BatchNorm2d(width),
        nn.ReLU(),
        conv_block(width, width),
        nn.Conv2d(width, out_channels, 1),
    )


def build_segnet(width: int, levels: int, classes: int = 13) -> MultitaskModel:
    """The shared SegNet trunk with segmentation, depth and surface-normal heads."""
    trunk = SegNetTrunk(width, levels)
    heads = [
        dense_head(width, classes),
        dense_head(width, 1),
        nn.Sequential(dense_head(width, 3), L2Normalize()),
    ]
    return MultitaskModel(trunk, heads, shared_layer=trunk.shared_layer)
