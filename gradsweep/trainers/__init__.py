"""Problems, balancers and the one training loop; runs inside a Ray worker with no database.

The public names are imported on first use (PEP 562), so that importing one room, such as
a balancer's declaration, does not import torch with the rest.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gradsweep.trainers.balancers.base import Balancer, BalancerContext
    from gradsweep.trainers.balancers.catalog import make_balancer
    from gradsweep.trainers.balancers.declaration import (
        BalancerDeclaration,
        Configuration,
        Need,
        ParamError,
        param,
    )
    from gradsweep.trainers.balancers.dwa import DynamicWeightAverage
    from gradsweep.trainers.balancers.gradnorm import GradNorm
    from gradsweep.trainers.balancers.rlw import RandomLossWeighting
    from gradsweep.trainers.balancers.static import StaticBalancer
    from gradsweep.trainers.balancers.uncertainty import UncertaintyWeighting
    from gradsweep.trainers.engine.loop import Budget, EpochRecord, TaskEpoch, TrainResult, train
    from gradsweep.trainers.engine.step import TrainingStep
    from gradsweep.trainers.problems.base import (
        Batch,
        MetricAccumulator,
        MultitaskModel,
        MultitaskProblem,
        TaskInfo,
        TensorData,
    )
    from gradsweep.trainers.problems.digits import MultiDigits
    from gradsweep.trainers.problems.multimnist import MultiMNIST
    from gradsweep.trainers.problems.nyuv2 import NYUv2
    from gradsweep.trainers.problems.toy import ToyRegression
    from gradsweep.trainers.registry import PROBLEMS, make_problem, resolve_problem

_WHERE = {
    "Balancer": "balancers.base",
    "BalancerContext": "balancers.base",
    "BalancerDeclaration": "balancers.declaration",
    "Configuration": "balancers.declaration",
    "Need": "balancers.declaration",
    "ParamError": "balancers.declaration",
    "param": "balancers.declaration",
    "make_balancer": "balancers.catalog",
    "DynamicWeightAverage": "balancers.dwa",
    "GradNorm": "balancers.gradnorm",
    "RandomLossWeighting": "balancers.rlw",
    "StaticBalancer": "balancers.static",
    "UncertaintyWeighting": "balancers.uncertainty",
    "Budget": "engine.loop",
    "EpochRecord": "engine.loop",
    "TaskEpoch": "engine.loop",
    "TrainResult": "engine.loop",
    "train": "engine.loop",
    "TrainingStep": "engine.step",
    "Batch": "problems.base",
    "MetricAccumulator": "problems.base",
    "MultitaskModel": "problems.base",
    "MultitaskProblem": "problems.base",
    "TaskInfo": "problems.base",
    "TensorData": "problems.base",
    "MultiDigits": "problems.digits",
    "MultiMNIST": "problems.multimnist",
    "NYUv2": "problems.nyuv2",
    "ToyRegression": "problems.toy",
    "PROBLEMS": "registry",
    "make_problem": "registry",
    "resolve_problem": "registry",
}

__all__ = [
    "BALANCERS",
    "Balancer",
    "BalancerContext",
    "BalancerDeclaration",
    "Batch",
    "Budget",
    "Configuration",
    "DynamicWeightAverage",
    "EpochRecord",
    "GradNorm",
    "MetricAccumulator",
    "MultiDigits",
    "MultiMNIST",
    "MultitaskModel",
    "MultitaskProblem",
    "NYUv2",
    "Need",
    "PROBLEMS",
    "ParamError",
    "RandomLossWeighting",
    "StaticBalancer",
    "TaskEpoch",
    "TaskInfo",
    "TensorData",
    "ToyRegression",
    "TrainResult",
    "TrainingStep",
    "UncertaintyWeighting",
    "make_balancer",
    "make_problem",
    "param",
    "resolve_problem",
    "train",
]


def __getattr__(name: str) -> Any:
    if name == "BALANCERS":  # name → class of every built-in balancer
        from gradsweep.trainers.balancers.catalog import built_in

        return built_in()
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_WHERE[name]}"), name)
