from __future__ import annotations

import math

import pytest
import torch

from gradsweep.errors import GradsweepError
from gradsweep.trainers import (
    BalancerContext,
    BalancerDeclaration,
    Budget,
    EpochRecord,
    GradNorm,
    Need,
    StaticBalancer,
    ToyRegression,
    TrainingStep,
    train,
)
from tests.trainers.conftest import small_toy_params
from tests.trainers.user_problem import make_exploding


def test_records_every_epoch_with_per_task_figures() -> None:
    problem = ToyRegression(**small_toy_params(3, [1.0, 10.0, 100.0]))  # 20 steps per epoch
    seen: list[EpochRecord] = []
    result = train(
        problem, GradNorm(0.12), Budget(50, trace_every=10), seed=0, on_epoch=seen.append
    )
    assert [r.step for r in result.epochs] == [0, 20, 40, 50]
    assert seen == result.epochs
    first, last = result.epochs[0], result.epochs[-1]
    assert all(task.train_loss is None for task in first.tasks)
    assert first.normalized_loss == pytest.approx(1.0)
    assert [t.task for t in last.tasks] == ["task0", "task1", "task2"]
    assert all(t.train_loss is not None and t.train_loss > 0 for t in last.tasks)
    assert [t.test_loss for t in last.tasks] == result.test_losses
    assert [t.metrics["mse"] for t in last.tasks] == pytest.approx(result.test_losses)
    assert [t.weight for t in last.tasks] == pytest.approx(result.weights_final)
    assert [step for step, _ in result.trace] == [0, 10, 20, 30, 40]
    assert result.normalized_loss == pytest.approx(
        sum(a / b for a, b in zip(result.test_losses, result.initial_test_losses, strict=True)) / 3
    )
    assert result.train_seconds > 0 and result.device == "cpu"
    assert result.status == "completed" and result.error is None


def test_evaluation_every_k_steps() -> None:
    problem = ToyRegression(**small_toy_params(2, [1.0, 100.0]))
    result = train(problem, StaticBalancer(), Budget(25, eval_every=10), seed=0)
    assert [r.step for r in result.epochs] == [0, 10, 20, 25]


def test_static_balancer_leaves_weights_untouched() -> None:
    problem = ToyRegression(**small_toy_params(3, [1.0, 10.0, 100.0]))
    result = train(problem, StaticBalancer([0.5, 2.0, 0.5]), Budget(30, trace_every=1), seed=0)
    assert all(weights == [0.5, 2.0, 0.5] for _, weights in result.trace)
    assert result.weights_mean == [0.5, 2.0, 0.5] == result.weights_final


def test_static_weights_count_must_match_tasks() -> None:
    problem = ToyRegression(**small_toy_params(2, [1.0, 100.0]))
    with pytest.raises(GradsweepError, match="3 weights given for 2 tasks"):
        train(problem, StaticBalancer([1, 1, 1]), Budget(5))


def test_same_seed_same_run_different_seed_different_init() -> None:
    problem = ToyRegression(**small_toy_params(2, [1.0, 100.0]))
    a = train(problem, GradNorm(0.12), Budget(20), seed=4)
    b = train(problem, GradNorm(0.12), Budget(20), seed=4)
    c = train(problem, GradNorm(0.12), Budget(20), seed=5)
    assert a.weights_final == b.weights_final and a.test_losses == b.test_losses
    assert a.initial_test_losses != c.initial_test_losses


def test_non_finite_loss_fails_the_trial_with_its_reason() -> None:
    problem = make_exploding(at=7)
    result = train(problem, GradNorm(0.12), Budget(40, eval_every=5), seed=0)
    assert result.status == "failed"
    assert result.error is not None and "non-finite loss at step 7" in result.error
    assert "task1=nan" in result.error
    assert result.steps == 7 and result.normalized_loss is None
    assert [r.step for r in result.epochs] == [0, 5]
    assert all(math.isfinite(w) for w in result.weights_mean)


def test_budget_must_be_positive() -> None:
    problem = ToyRegression(**small_toy_params(2, [1.0, 100.0]))
    with pytest.raises(GradsweepError, match="steps and eval_every must be >= 1"):
        train(problem, StaticBalancer(), Budget(0))


def test_to_dict_leaves_the_model_out() -> None:
    problem = ToyRegression(**small_toy_params(2, [1.0, 100.0]))
    data = train(problem, StaticBalancer(), Budget(3)).to_dict()
    assert "model" not in data and data["steps"] == 3
    assert isinstance(torch.tensor(data["weights_mean"]), torch.Tensor)


class _LooksAfterTheStep(StaticBalancer):
    """Equal weights, and a look at the batch after each optimiser step (as FAMO does)."""

    declaration = BalancerDeclaration(
        name="looks_after",
        display="looks after",
        summary="test",
        weights_meaning="equal",
        needs=frozenset({Need.LOSSES, Need.AFTER_OPTIMIZER_STEP}),
    )

    def start(self, context: BalancerContext) -> None:
        super().start(context)
        self.seen: list[tuple[torch.Tensor, torch.Tensor]] = []

    def after_step(self, training_step: TrainingStep) -> None:
        self.seen.append((training_step.losses.detach(), training_step.losses_after_update()))


def test_the_loop_calls_after_step_once_a_step_after_the_optimiser() -> None:
    problem = ToyRegression(**small_toy_params(2, [1.0, 100.0]))
    balancer = _LooksAfterTheStep()
    result = train(problem, balancer, Budget(12), seed=0)
    assert result.status == "completed" and len(balancer.seen) == 12
    # the same batch, one update later: the training loss fell on it
    assert sum(float(after.sum() < before.sum()) for before, after in balancer.seen) >= 10
