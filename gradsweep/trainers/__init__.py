"""Problems, balancers and the one training loop; runs inside a Ray worker with no database."""

from gradsweep.trainers.balancer import Balancer, BalancerContext
from gradsweep.trainers.gradnorm import GradNorm
from gradsweep.trainers.loop import Budget, EpochRecord, TaskEpoch, TrainResult, train
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
from gradsweep.trainers.static import StaticBalancer
from gradsweep.trainers.toy import ToyRegression

__all__ = [
    "BALANCERS",
    "PROBLEMS",
    "Balancer",
    "BalancerContext",
    "Batch",
    "Budget",
    "EpochRecord",
    "GradNorm",
    "MetricAccumulator",
    "MultitaskModel",
    "MultitaskProblem",
    "StaticBalancer",
    "TaskEpoch",
    "TaskInfo",
    "TensorData",
    "ToyRegression",
    "TrainResult",
    "make_balancer",
    "make_problem",
    "resolve_problem",
    "train",
]
