from __future__ import annotations

import pytest
import torch

from gradsweep.errors import BalancerError
from gradsweep.trainers import Budget, GradNorm, ToyRegression, train
from gradsweep.trainers.engine.loop import mean_losses
from tests.trainers.conftest import small_toy_params
from tests.trainers.conv_problem import ConvRegression
from tests.trainers.reference_gradnorm import reference_gradnorm

CASES = {
    2: [1.0, 100.0],
    3: [1.0, 10.0, 100.0],
    10: None,  # the paper's T=10 preset
}


def assert_close_relative(actual: torch.Tensor, expected: torch.Tensor, tol: float = 1e-5) -> None:
    scale = expected.abs().max().clamp(min=1e-12)
    assert float((actual - expected).abs().max() / scale) <= tol


@pytest.mark.parametrize("tasks", sorted(CASES))
def test_matches_literal_algorithm_1(float64: None, tasks: int) -> None:
    steps = 220
    problem = ToyRegression(**small_toy_params(tasks, CASES[tasks]))
    assert problem.build_model().linear_tail  # the fast per-task product path
    result = train(
        problem, GradNorm(alpha=0.12), Budget(steps, trace_every=1), seed=3, device="cpu"
    )
    reference = reference_gradnorm(problem, alpha=0.12, steps=steps, seed=3)

    assert result.status == "completed"
    ours = torch.tensor([weights for _, weights in result.trace])
    assert ours.shape == (steps, tasks)
    assert_close_relative(ours, torch.stack(reference.weights[:-1]))
    assert_close_relative(torch.tensor(result.weights_final), reference.weights[-1])
    # the weights really moved, so the comparison is not of two constant traces
    assert float((reference.weights[-1] - 1).abs().max()) > 0.05
    assert result.model is not None
    for (_, ours_p), (_, ref_p) in zip(
        result.model.state_dict().items(), reference.model.state_dict().items(), strict=True
    ):
        assert_close_relative(ours_p, ref_p)


def test_time_average_and_renormalisation(float64: None) -> None:
    problem = ToyRegression(**small_toy_params(3, [1.0, 10.0, 100.0]))
    result = train(problem, GradNorm(alpha=0.5), Budget(150, trace_every=1), seed=0, device="cpu")
    trace = torch.tensor([w for _, w in result.trace])
    assert torch.allclose(trace.sum(dim=1), torch.full((150,), 3.0))
    assert bool((trace > 0).all())
    assert result.weights_mean == pytest.approx(trace.mean(dim=0).tolist())
    assert sum(result.weights_final) == pytest.approx(3.0)


def test_weights_stay_positive_under_a_violent_update() -> None:
    # lr 5 drives w far below zero in one Adam step; clamping keeps it positive
    problem = ToyRegression(**small_toy_params(2, [1.0, 100.0]))
    result = train(problem, GradNorm(alpha=0.12, lr=5.0), Budget(60, trace_every=1), seed=0)
    trace = torch.tensor([w for _, w in result.trace])
    assert bool((trace > 0).all())
    assert float(trace.min()) < 1e-3


def test_first_batch_initial_loss_is_the_first_steps_losses(float64: None) -> None:
    problem = ToyRegression(**small_toy_params(2, [1.0, 100.0]))
    balancer = GradNorm(alpha=0.12)
    train(problem, balancer, Budget(5), seed=1, device="cpu")
    reference = reference_gradnorm(problem, alpha=0.12, steps=1, seed=1)
    assert balancer.initial_losses is not None
    assert_close_relative(balancer.initial_losses, reference.initial_losses, 1e-12)


def test_first_epoch_mean_initial_loss(float64: None) -> None:
    problem = ToyRegression(**small_toy_params(2, [1.0, 100.0]))
    balancer = GradNorm(alpha=0.12, initial_loss="first_epoch_mean")
    result = train(problem, balancer, Budget(50, trace_every=1), seed=2, device="cpu")
    torch.manual_seed(2)
    untrained = problem.build_model()
    expected = mean_losses(problem, untrained, problem.train_data, torch.device("cpu"))
    assert balancer.initial_losses is not None
    assert_close_relative(balancer.initial_losses, expected, 1e-12)
    reference = reference_gradnorm(problem, 0.12, 50, seed=2, initial_losses=expected)
    ours = torch.tensor([w for _, w in result.trace])
    assert_close_relative(ours, torch.stack(reference.weights[:-1]))


class ToyWithTheory(ToyRegression):
    def theoretical_initial_losses(self) -> list[float | None] | None:
        return [0.5, 5000.0]


def test_theoretical_initial_loss(float64: None) -> None:
    problem = ToyWithTheory(**small_toy_params(2, [1.0, 100.0]))
    balancer = GradNorm(alpha=0.12, initial_loss="theoretical")
    result = train(problem, balancer, Budget(40, trace_every=1), seed=0, device="cpu")
    assert balancer.initial_losses is not None
    assert balancer.initial_losses.tolist() == [0.5, 5000.0]
    reference = reference_gradnorm(
        problem, 0.12, 40, seed=0, initial_losses=torch.tensor([0.5, 5000.0])
    )
    ours = torch.tensor([w for _, w in result.trace])
    assert_close_relative(ours, torch.stack(reference.weights[:-1]))


class ToyWithPartialTheory(ToyRegression):
    def theoretical_initial_losses(self) -> list[float | None] | None:
        return [None, 5000.0]


def test_theoretical_initial_loss_falls_back_to_the_first_batch_per_task(float64: None) -> None:
    problem = ToyWithPartialTheory(**small_toy_params(2, [1.0, 100.0]))
    balancer = GradNorm(alpha=0.12, initial_loss="theoretical")
    result = train(problem, balancer, Budget(40, trace_every=1), seed=0, device="cpu")
    first = reference_gradnorm(problem, 0.12, 1, seed=0).initial_losses
    expected = torch.tensor([float(first[0]), 5000.0])
    assert balancer.initial_losses is not None
    assert_close_relative(balancer.initial_losses, expected, 1e-12)
    reference = reference_gradnorm(problem, 0.12, 40, seed=0, initial_losses=expected)
    ours = torch.tensor([w for _, w in result.trace])
    assert_close_relative(ours, torch.stack(reference.weights[:-1]))


def test_theoretical_initial_loss_needs_the_problem_to_know_it() -> None:
    problem = ToyRegression(**small_toy_params(2, [1.0, 100.0]))
    with pytest.raises(BalancerError, match="no theoretical initial losses"):
        train(problem, GradNorm(0.12, initial_loss="theoretical"), Budget(5))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"alpha": -0.1}, "alpha must be >= 0"),
        ({"alpha": 0.1, "lr": 0.0}, "lr must be > 0"),
        ({"alpha": 0.1, "initial_loss": "last"}, "initial_loss must be one of"),
    ],
)
def test_bad_hyperparameters(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(BalancerError, match=message):
        GradNorm(**kwargs)  # type: ignore[arg-type]


def test_upweights_the_small_scale_task_on_the_paper_toy() -> None:
    """Paper Sec. 4, T=2, σ=(1, 100): GradNorm raises the weight of the σ=1 task."""
    problem = ToyRegression(tasks=2, train_samples=2000, test_samples=500)
    ratios = []
    for seed in (0, 1):
        result = train(problem, GradNorm(alpha=0.12), Budget(600), seed=seed, device="cpu")
        w0, w1 = result.weights_mean
        ratios.append(w0 / w1)
    assert min(ratios) > 5, ratios


class ToyWithActivationInTrunk(ToyRegression):
    """The same function with the last ReLU inside the trunk: the generic gradient path."""

    def build_model(self):  # type: ignore[no-untyped-def]
        model = super().build_model()
        trunk = torch.nn.Sequential(*model.trunk, torch.nn.ReLU())
        heads = [head[1] for head in model.heads]  # type: ignore[index]
        shared = trunk[-2].weight  # type: ignore[union-attr]
        return type(model)(trunk, heads, shared)


def test_generic_shared_layer_path_matches_literal_algorithm_1(float64: None) -> None:
    problem = ToyWithActivationInTrunk(**small_toy_params(3, [1.0, 10.0, 100.0]))
    assert not problem.build_model().linear_tail
    result = train(problem, GradNorm(alpha=0.12), Budget(120, trace_every=1), seed=5, device="cpu")
    reference = reference_gradnorm(problem, alpha=0.12, steps=120, seed=5)
    ours = torch.tensor([w for _, w in result.trace])
    assert_close_relative(ours, torch.stack(reference.weights[:-1]))


@pytest.mark.parametrize("cloned", [False, True], ids=["layer-path", "graph-path"])
def test_convolutional_shared_layer_matches_literal_algorithm_1(
    float64: None, cloned: bool
) -> None:
    """A conv ``W``: recomputed alone on its saved input (layer path), or differentiated
    through the kept graph (graph path) — both exactly Algorithm 1."""
    problem = ConvRegression(scales=(1.0, 10.0, 0.3), cloned_trunk=cloned)
    result = train(problem, GradNorm(alpha=1.5), Budget(60, trace_every=1), seed=2, device="cpu")
    reference = reference_gradnorm(problem, alpha=1.5, steps=60, seed=2)
    ours = torch.tensor([w for _, w in result.trace])
    assert_close_relative(ours, torch.stack(reference.weights[:-1]))
    assert_close_relative(torch.tensor(result.weights_final), reference.weights[-1])
