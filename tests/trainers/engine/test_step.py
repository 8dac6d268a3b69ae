from __future__ import annotations

import gc
import weakref
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from gradsweep.trainers import NYUv2, ToyRegression
from gradsweep.trainers.balancers.declaration import Need
from gradsweep.trainers.engine.step import GradientSite, NormPath, TrainingStep
from gradsweep.trainers.problems.base import MultitaskProblem
from tests.trainers.conftest import small_toy_params
from tests.trainers.conv_problem import ConvRegression
from tests.trainers.nyuv2_dataset import write_dataset


def _toy(_: Path) -> MultitaskProblem:
    return ToyRegression(**small_toy_params(2))


def _segnet(tmp_path: Path) -> MultitaskProblem:
    # A convolutional W at the end of the trunk: GradNorm's layer path.
    return NYUv2(root=str(write_dataset(tmp_path / "nyuv2")), width=4, levels=2, batch_size=2)


@pytest.mark.parametrize("make_problem", [_toy, _segnet], ids=["linear-W", "conv-W"])
def test_a_step_that_captured_task_gradients_frees_its_graph_when_dropped(
    tmp_path: Path, make_problem: Callable[[Path], MultitaskProblem]
) -> None:
    """Each step's activations must go with the step, or a long run grows without bound
    (it did on NYUv2: about 1.8 GB more per step at width 16)."""
    problem = make_problem(tmp_path)
    torch.manual_seed(0)
    model = problem.build_model()
    batch = problem.train_data.batch(torch.arange(problem.batch_size), torch.device("cpu"))
    step = TrainingStep(model, problem, batch, capture_task_gradients=True)
    step.backward(torch.ones(len(problem.tasks)))
    assert torch.isfinite(step.shared_layer_gradient_norms()).all()
    losses = weakref.ref(step.losses)
    del step
    gc.collect()
    assert losses() is None, "the dropped step's graph is still alive"


class _Saved:
    """What autograd stores for one saved tensor (through a saved-tensors hook), so a weak
    reference tells when the graph lets it go."""

    def __init__(self, tensor: torch.Tensor) -> None:
        # detached: a saved output holding its own grad_fn would be a cycle through C++
        self.tensor = tensor.detach()


def _traced_step(
    problem: MultitaskProblem, model: torch.nn.Module
) -> tuple[TrainingStep, list[weakref.ref[_Saved]]]:
    saved: list[weakref.ref[_Saved]] = []

    def pack(tensor: torch.Tensor) -> _Saved:
        holder = _Saved(tensor)
        saved.append(weakref.ref(holder))
        return holder

    batch = problem.train_data.batch(torch.arange(problem.batch_size), torch.device("cpu"))
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda holder: holder.tensor):
        step = TrainingStep(model, problem, batch, capture_task_gradients=True)  # type: ignore[arg-type]
    return step, saved


@pytest.mark.parametrize(
    ("make_problem", "path"),
    [
        (lambda _: ToyRegression(**small_toy_params(2)), NormPath.LINEAR),
        (lambda _: ConvRegression(), NormPath.LAYER),
        (_segnet, NormPath.LAYER),
        (lambda _: ConvRegression(cloned_trunk=True), NormPath.GRAPH),
    ],
    ids=["toy", "conv", "segnet", "cloned-conv"],
)
def test_the_norm_path_follows_how_w_made_z(
    tmp_path: Path, make_problem: Callable[[Path], MultitaskProblem], path: NormPath
) -> None:
    problem = make_problem(tmp_path)
    model = problem.build_model()
    batch = problem.train_data.batch(torch.arange(problem.batch_size), torch.device("cpu"))
    step = TrainingStep(model, problem, batch, capture_task_gradients=True)
    assert step.path is path
    assert not model.shared_module._forward_hooks, "the step left its hook on W's layer"


@pytest.mark.parametrize("cloned", [False, True], ids=["layer-path", "graph-path"])
def test_the_backward_frees_the_graph_unless_the_graph_path_needs_it(cloned: bool) -> None:
    """GradNorm's layer path lets the ordinary backward free everything the graph saved, as
    an equal-weight step does; only the graph path holds it until the step is dropped."""
    problem = ConvRegression(cloned_trunk=cloned)
    step, saved = _traced_step(problem, problem.build_model())
    assert len(saved) > 5
    step.backward(torch.ones(len(problem.tasks)))
    gc.collect()
    alive = sum(ref() is not None for ref in saved)
    assert (alive > 0) is cloned, f"{alive} of {len(saved)} saved tensors alive"
    norms = step.shared_layer_gradient_norms()
    assert torch.isfinite(norms).all() and (norms > 0).all()
    del step
    gc.collect()
    assert all(ref() is None for ref in saved), "the dropped step's graph is still alive"


def _toy_step(needs: frozenset[Need]) -> tuple[MultitaskProblem, torch.nn.Module, TrainingStep]:
    problem = ToyRegression(**small_toy_params(3, [1.0, 10.0, 100.0]))
    torch.manual_seed(0)
    model = problem.build_model()
    batch = problem.train_data.batch(torch.arange(problem.batch_size), torch.device("cpu"))
    return problem, model, TrainingStep(model, problem, batch, needs=needs)


def test_task_gradients_before_the_weights_are_each_tasks_own_and_leave_backward_exact() -> None:
    problem, model, step = _toy_step(frozenset({Need.TASK_GRADIENTS}))
    gradients = step.task_gradients()
    trunk = [p for p in model.trunk.parameters()]
    for i, loss in enumerate(step.losses):  # an independent reference: autograd per task
        expected = torch.autograd.grad(loss, trunk, retain_graph=True)
        assert torch.allclose(gradients[i], torch.cat([g.flatten() for g in expected]))
    assert torch.allclose(step.gramian(gradients), gradients @ gradients.T)
    at_z = step.task_gradients(GradientSite.REPRESENTATION)
    assert at_z.shape == (3, step.z.numel())
    weights = torch.tensor([0.5, 1.0, 1.5])
    step.backward(weights)  # the graph was kept for it: the usual weighted gradient
    combined = torch.cat([p.grad.flatten() for p in trunk])  # type: ignore[union-attr]
    assert torch.allclose(combined, weights @ gradients, atol=1e-6)


def test_a_need_not_declared_is_not_served() -> None:
    _, _, step = _toy_step(frozenset({Need.LOSSES}))
    with pytest.raises(RuntimeError, match="without task_gradients"):
        step.task_gradients()
    with pytest.raises(RuntimeError, match="without after_optimizer_step"):
        step.losses_after_update()


def test_the_losses_after_the_update_are_the_same_batch_through_the_updated_network() -> None:
    problem, model, step = _toy_step(frozenset({Need.AFTER_OPTIMIZER_STEP}))
    before = step.losses.detach().clone()
    step.backward(torch.ones(3))
    torch.optim.SGD(model.parameters(), lr=0.05).step()
    after = step.losses_after_update()
    assert not after.requires_grad and after.shape == (3,)
    assert not torch.allclose(after, before)
    with torch.no_grad():
        again = torch.stack(problem.task_losses(model(step.batch.inputs), step.batch))
    assert torch.allclose(after, again)
