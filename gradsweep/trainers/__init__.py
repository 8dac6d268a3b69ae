"""Problems, balancers and the one training loop; runs inside a Ray worker with no database."""

from gradsweep.trainers.balancer import Balancer, BalancerContext
from gradsweep.trainers.digits import MultiDigits
from gradsweep.trainers.dwa import DynamicWeightAverage
from gradsweep.trainers.gradnorm import GradNorm
from gradsweep.trainers.loop import Budget, EpochRecord, TaskEpoch, TrainResult, train
from gradsweep.trainers.multimnist import MultiMNIST
from gradsweep.trainers.nyuv2 import NYUv2
from gradsweep.trainers.problem import (
    Batch,
    MetricAccumulator,
    MultitaskModel,
    MultitaskProblem,
    TaskInfo,
    TensorData,
)
from gradsweep.trainers.registry import (
    BALANCERS,
    PROBLEMS,
    make_balancer,
    make_problem,
    resolve_problem,
)
from gradsweep.trainers.rlw import RandomLossWeighting
from gradsweep.trainers.static import StaticBalancer
from gradsweep.trainers.toy import ToyRegression
from gradsweep.trainers.uncertainty import UncertaintyWeighting

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
