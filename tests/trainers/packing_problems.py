"""Problems whose models pack or do not, for the packing tests (importable by path, so a
Ray worker can build them too)."""

from __future__ import annotations

import torch
from torch import nn

from gradsweep import problem_factory
from gradsweep.trainers import MultitaskModel, ToyRegression


class DropoutToy(ToyRegression):
    """Dropout in the trunk: random under vmap, so it cannot pack exactly."""

    def build_model(self) -> MultitaskModel:
        last = nn.Linear(100, 100)
        trunk = nn.Sequential(nn.Linear(250, 100), nn.Dropout(0.1), last)
        return MultitaskModel(trunk, [nn.Linear(100, 100) for _ in self.tasks], last.weight)


class BranchingTrunk(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.layer = nn.Linear(250, 100)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.layer(x)
        return y if y.sum() > 0 else -y  # control flow on a value


class BranchingToy(ToyRegression):
    def build_model(self) -> MultitaskModel:
        trunk = BranchingTrunk()
        return MultitaskModel(trunk, [nn.Linear(100, 100) for _ in self.tasks], trunk.layer.weight)


class BatchNormToy(ToyRegression):
    """BatchNorm in training mode packs: each member keeps its own running statistics."""

    def build_model(self) -> MultitaskModel:
        last = nn.Linear(100, 100)
        trunk = nn.Sequential(nn.Linear(250, 100), nn.BatchNorm1d(100), nn.ReLU(), last)
        return MultitaskModel(trunk, [nn.Linear(100, 100) for _ in self.tasks], last.weight)


class UnbuildableToy(ToyRegression):
    def build_model(self) -> MultitaskModel:
        raise RuntimeError("no GPU memory left")


class GenericTrunkToy(ToyRegression):
    """W is not the weight of a trailing Linear: GradNorm's per-task norms take the generic
    (autograd through W) path."""

    def build_model(self) -> MultitaskModel:
        last = nn.Linear(100, 100)
        trunk = nn.Sequential(nn.Linear(250, 100), nn.ReLU(), last, nn.Tanh())
        heads = [nn.Linear(100, 100) for _ in self.tasks]
        return MultitaskModel(trunk, heads, last.weight)


@problem_factory
def dropout_toy(**params: object) -> DropoutToy:
    return DropoutToy(**params)  # type: ignore[arg-type]
