"""A balancer's dry run: its contract checked on one CPU step, before any trial.

A user's balancer that raises, or gives weights of the wrong shape or non-finite ones,
would fail every trial of its arm; here it fails once, in one line naming the balancer,
the method and the line of the user's code. The step is the loop's own (``TrainingStep``
built for the balancer's declared needs), so a need the balancer forgot to declare fails
here too.
"""

from __future__ import annotations

import math

import torch

from gradsweep.errors import DryRunError, GradsweepError
from gradsweep.trainers.balancers.base import Balancer
from gradsweep.trainers.balancers.declaration import Need
from gradsweep.trainers.engine.dry_run import CPU, SEED, TRAIN_BATCH, seeded
from gradsweep.trainers.engine.failures import error_line
from gradsweep.trainers.engine.loop import balancer_context
from gradsweep.trainers.engine.step import TrainingStep
from gradsweep.trainers.problems.base import MultitaskProblem


def check_balancer(problem: MultitaskProblem, balancer: Balancer, label: str) -> None:
    """``start``, one ``step``, the optimiser's step and ``after_step`` (when declared),
    with the weights checked after each; a ``DryRunError`` at the first broken contract
    (the balancer's own ``GradsweepError`` passes unchanged)."""
    tasks = len(problem.tasks)

    def call(method: str, function: object) -> None:
        try:
            function()  # type: ignore[operator]
        except GradsweepError:
            raise
        except Exception as exc:
            raise DryRunError(f"balancer {label}: {method} raised {error_line(exc)}") from exc

    def check_weights(after: str) -> None:
        weights = balancer.weights
        if not isinstance(weights, torch.Tensor) or tuple(weights.shape) != (tasks,):
            shape = tuple(weights.shape) if isinstance(weights, torch.Tensor) else type(weights)
            raise DryRunError(
                f"balancer {label}: after {after}, weights is {shape}, not a ({tasks},) tensor"
            )
        values = weights.detach().tolist()
        if not all(math.isfinite(w) for w in values):
            raise DryRunError(f"balancer {label}: after {after}, weights are {values}")

    with seeded(SEED):
        model = problem.build_model().to(CPU)
        optimizer = torch.optim.Adam(model.parameters(), lr=problem.learning_rate)
        data = problem.train_data
        batch = data.batch(torch.arange(min(len(data), TRAIN_BATCH)), CPU)
        context = balancer_context(problem, model, CPU, SEED)
        call("start", lambda: balancer.start(context))
        check_weights("start")
        step = TrainingStep(model, problem, batch, needs=balancer.needs)
        call("step", lambda: balancer.step(step))
        check_weights("step")
        if all(p.grad is None for p in model.parameters()):
            raise DryRunError(
                f"balancer {label}: step gave the network no gradient "
                "(it must call training_step.backward(w))"
            )
        optimizer.step()
        if Need.AFTER_OPTIMIZER_STEP in balancer.needs:
            call("after_step", lambda: balancer.after_step(step))
            check_weights("after_step")
