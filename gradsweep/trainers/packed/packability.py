"""Can this problem's model train packed? Tried, not guessed: one step on a tiny batch.

``check_packing`` builds the model, stacks two copies and runs the packed forward and
backward (both the static path and GradNorm's per-task path) and a packed evaluation on
two training samples, then compares member 0 with the plain model on the same samples.
Anything that raises under ``vmap`` (dropout without a randomness rule, data-dependent
control flow, an op without a batching rule) or that disagrees with the plain model makes
the problem run unpacked, with the reason.
"""

from __future__ import annotations

import traceback
from dataclasses import dataclass

import torch
from torch import nn

from gradsweep.trainers.packed.loop import stacked_task_losses
from gradsweep.trainers.packed.stacked import StackedModel
from gradsweep.trainers.problems.base import Batch, MultitaskModel, MultitaskProblem

PROBE_SAMPLES = 2
PROBE_COPIES = 2
TOLERANCE = 1e-3  # relative, float32: a packed step and a plain one agree far closer


@dataclass(frozen=True)
class PackCheck:
    """``parameters``: the model's size (what the automatic pack size looks at);
    ``reason``: why it cannot be packed, or None."""

    parameters: int
    reason: str | None

    @property
    def packable(self) -> bool:
        return self.reason is None


def _close(packed: torch.Tensor, plain: torch.Tensor) -> bool:
    """Equal to ``TOLERANCE`` relative to ``plain``'s size (Euclidean norms)."""
    scale = max(float(torch.linalg.vector_norm(plain)), 1e-12)
    return float(torch.linalg.vector_norm(packed - plain)) <= TOLERANCE * scale


def _one_line(exc: BaseException) -> str:
    return traceback.format_exception_only(type(exc), exc)[-1].strip().splitlines()[0]


def _compare_evaluation(problem: MultitaskProblem, model: MultitaskModel, batch: Batch) -> bool:
    """A packed evaluation's outputs against the plain model's, both in eval mode."""
    stack = StackedModel(model, PROBE_COPIES)
    stack.train(False)
    model.eval()
    with torch.no_grad():
        outputs = stack.forward(batch.inputs)
        stacked_task_losses(problem, outputs, batch)
        plain = model(batch.inputs)
    model.train()
    return all(_close(p[0], q) for p, q in zip(outputs, plain, strict=True))


def _compare_step(problem: MultitaskProblem, model: MultitaskModel) -> str | None:
    """Member 0 of a packed step against the plain model; a reason when they differ."""
    size = min(PROBE_SAMPLES, len(problem.train_data))
    batch = problem.train_data.batch(torch.arange(size), torch.device("cpu"))
    if not _compare_evaluation(problem, model, batch):
        return "packed evaluation differs from the plain model's"
    stack = StackedModel(model, PROBE_COPIES)  # before the plain forward moves any buffer
    plain = torch.stack(problem.task_losses(model(batch.inputs), batch))
    plain.sum().backward()
    packed = stack.losses(problem, batch)
    packed.sum().backward()
    if not _close(packed[0].detach(), plain.detach()):
        return "packed losses differ from the plain model's"
    # the whole gradient as one vector: a part that is zero up to rounding (a bias before
    # BatchNorm) is held to the precision of the whole, not to its own
    names = [name for name, param in model.named_parameters() if param.grad is not None]
    plain_grad = torch.cat([model.get_parameter(n).grad.flatten() for n in names])  # type: ignore[union-attr]
    packed_grads = [stack.params[n].grad for n in names]
    if any(g is None for g in packed_grads):
        return "a parameter gets no gradient when packed"
    packed_grad = torch.cat([g[0].flatten() for g in packed_grads if g is not None])
    if not _close(packed_grad, plain_grad):
        return "packed gradients differ from the plain model's"
    _, z = stack.shared_features(batch.inputs)
    copies = [z.detach().requires_grad_() for _ in problem.tasks]
    stack.head_losses(problem, batch, copies).sum().backward()
    if not model.linear_tail:  # GradNorm's generic path differentiates z again, at W
        grads = torch.stack([c.grad if c.grad is not None else torch.zeros_like(z) for c in copies])
        torch.autograd.grad(z, stack.shared_layer, grads, is_grads_batched=True)
    return None


@dataclass(frozen=True)
class ModelSize:
    """What ``pack: auto`` looks at: the parameter count, and whether the model convolves
    (a batched convolution under ``vmap`` is slower than one model's on the CPU)."""

    parameters: int
    convolutional: bool


def model_size(problem: MultitaskProblem) -> ModelSize:
    """The model's size (0 parameters when it cannot be built: the check will say why)."""
    with torch.random.fork_rng(devices=[]):
        try:
            model = problem.build_model()
        except Exception:
            return ModelSize(0, False)
    convolutions = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose2d)
    return ModelSize(
        sum(p.numel() for p in model.parameters()),
        any(isinstance(module, convolutions) for module in model.modules()),
    )


def check_packing(problem: MultitaskProblem) -> PackCheck:
    """Build the model on the CPU and try one packed step; the global RNG is left as it was."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        try:
            model = problem.build_model()
        except Exception as exc:  # a user's problem may raise anything
            return PackCheck(0, f"the model cannot be built: {_one_line(exc)}")
        parameters = sum(p.numel() for p in model.parameters())
        try:
            reason = _compare_step(problem, model)
        except Exception as exc:
            reason = f"the model does not run under torch.func.vmap: {_one_line(exc)}"
    return PackCheck(parameters, reason)
