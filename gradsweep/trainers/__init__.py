"""Problems, balancers and the one training loop; runs inside a Ray worker with no database."""

from gradsweep.trainers.balancers.base import Balancer, BalancerContext
from gradsweep.trainers.balancers.dwa import DynamicWeightAverage
from gradsweep.trainers.balancers.gradnorm import GradNorm
from gradsweep.trainers.balancers.rlw import RandomLossWeighting
from gradsweep.trainers.balancers.static import StaticBalancer
from gradsweep.trainers.balancers.uncertainty import UncertaintyWeighting
from gradsweep.trainers.engine.loop import Budget, EpochRecord, TaskEpoch, TrainResult, train
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
from gradsweep.trainers.registry import (
    BALANCERS,
    PROBLEMS,
    make_balancer,
    make_problem,
    resolve_problem,
)

__all__ = [
    "BALANCERS",
    "PROBLEMS",
    "Balancer",
    "BalancerContext",
    "Batch",
    "Budget",
    "DynamicWeightAverage",
    "EpochRecord",
    "GradNorm",
    "MetricAccumulator",
    "MultitaskModel",
    "MultiDigits",
    "MultiMNIST",
    "MultitaskProblem",
    "NYUv2",
    "RandomLossWeighting",
    "StaticBalancer",
    "TaskEpoch",
    "TaskInfo",
    "TensorData",
    "ToyRegression",
    "TrainResult",
    "UncertaintyWeighting",
    "make_balancer",
    "make_problem",
    "resolve_problem",
    "train",
]
