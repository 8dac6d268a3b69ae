"""Balancers that break the contract, each in its own way, for the one-line errors."""

from __future__ import annotations

import torch

from gradsweep.trainers import Balancer, BalancerContext, BalancerDeclaration, TrainingStep


def _declared(name: str) -> BalancerDeclaration:
    return BalancerDeclaration(name=name, display=name, summary=name, weights_meaning="none")


class _Equal(Balancer):
    declaration = _declared("equal_test")

    def start(self, context: BalancerContext) -> None:
        self._weights = torch.ones(context.task_count)

    @property
    def weights(self) -> torch.Tensor:
        return self._weights

    def step(self, training_step: TrainingStep) -> None:
        training_step.backward(self._weights)


class RaisesInStep(_Equal):
    declaration = _declared("raises_in_step")

    def step(self, training_step: TrainingStep) -> None:
        raise ZeroDivisionError("division by zero")


class WrongShape(_Equal):
    declaration = _declared("wrong_shape")

    def start(self, context: BalancerContext) -> None:
        self._weights = torch.ones(context.task_count + 1)


class NoBackward(_Equal):
    declaration = _declared("no_backward")

    def step(self, training_step: TrainingStep) -> None:
        """Forgets the network's gradient."""


class UndeclaredNeed(_Equal):
    declaration = _declared("undeclared_need")

    def step(self, training_step: TrainingStep) -> None:
        training_step.task_gradients()  # needs Need.TASK_GRADIENTS, not declared


class Builtin(_Equal):
    declaration = _declared("gradnorm")  # a built-in's name


class NoDeclaration(Balancer):
    """A subclass that inherits no declaration of its own."""


class NotABalancer:
    pass


class NeedsAMissingExtra(_Equal):
    """As a solver-based balancer on an install without its extra."""

    declaration = BalancerDeclaration(
        name="needs_extra",
        display="needs extra",
        summary="needs a module that is not installed",
        weights_meaning="none",
        requires=("gradsweep_no_such_solver",),
        extra="canon",
    )
