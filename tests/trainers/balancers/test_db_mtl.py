"""DB-MTL against a literal transcription of LibMTL's ``DB_MTL.backward``, in float64.

The reference below is written from LibMTL's code alone: each task's ``log(L_i + 1e-8)``
back-propagated one task at a time (``_compute_grad(mode='backward')``: the heads
accumulate, the shared gradient is read and cleared), the buffer ``g + β/k^σ (buf − g)``
from zeros, ``α = max ‖buf‖ / (‖buf‖ + 1e-8)``, and ``Σ α_i buf_i`` written into the
shared parameters' ``.grad`` (``_reset_grad``). The representation variant uses LibMTL's
``rep_grad`` mechanism: the heads read a detached copy of ``z`` whose ``.grad`` is each
task's gradient, and ``z.backward(Σ α_i buf_i)`` at the end.
"""

from __future__ import annotations

import copy

import pytest
import torch

from gradsweep.errors import BalancerError
from gradsweep.trainers import Budget, ToyRegression, train
from gradsweep.trainers.balancers.db_mtl import DbMtl
from gradsweep.trainers.engine.loop import balancer_context, epoch_batches
from gradsweep.trainers.engine.step import TrainingStep
from gradsweep.trainers.problems.base import MultitaskModel
from tests.trainers.balancers.test_gradnorm import assert_close_relative
from tests.trainers.conftest import small_toy_params
from tests.trainers.reference_balancers import weight_trace


def reference_db_mtl(
    problem: ToyRegression, steps: int, seed: int, site: str, beta: float, beta_sigma: float
) -> tuple[list[list[float]], MultitaskModel]:
    torch.manual_seed(seed)
    model = problem.build_model()
    optimizer = torch.optim.Adam(model.parameters(), lr=problem.learning_rate)
    batches = epoch_batches(
        len(problem.train_data), problem.batch_size, torch.Generator().manual_seed(seed)
    )
    T = len(problem.tasks)
    shared = list(model.trunk.parameters())
    grad_buffer = None  # zeros of the gradients' shape, set at the first step
    used = []
    for k in range(1, steps + 1):
        batch = problem.train_data.batch(next(batches), torch.device("cpu"))
        optimizer.zero_grad()
        z = model.trunk(batch.inputs)
        rep = z.detach().requires_grad_(True) if site == "representation" else z
        L = problem.task_losses([head(rep) for head in model.heads], batch)
        log_losses = [torch.log(L[i] + 1e-8) for i in range(T)]
        rows = []
        for i in range(T):
            log_losses[i].backward(retain_graph=True)
            if site == "representation":
                rows.append(rep.grad.clone())  # type: ignore[union-attr]
                rep.grad = None
            else:
                rows.append(torch.cat([p.grad.flatten() for p in shared]))  # type: ignore[union-attr]
                for p in shared:
                    p.grad = None
        batch_grads = torch.stack(rows)
        if grad_buffer is None:
            grad_buffer = torch.zeros_like(batch_grads)
        beta_k = beta / k**beta_sigma
        grad_buffer = batch_grads + beta_k * (grad_buffer - batch_grads)
        u_grad = grad_buffer.flatten(start_dim=1).norm(dim=-1)
        alpha = u_grad.max() / (u_grad + 1e-8)
        new_grads = sum(alpha[i] * grad_buffer[i] for i in range(T))
        if site == "representation":
            z.backward(new_grads)
        else:
            offset = 0
            for p in shared:
                p.grad = new_grads[offset : offset + p.numel()].view_as(p).clone()
                offset += p.numel()
        optimizer.step()
        # the weight on each task's current ∇L_i: α_i (1 − β_k) / (L_i + 1e-8)
        used.append([float(alpha[i] * (1 - beta_k) / (L[i].detach() + 1e-8)) for i in range(T)])
    return used, model


CASES = [  # both sites at LibMTL's defaults, and a decaying β_k = β / k^σ
    ("parameters", 0.9, 0.0),
    ("representation", 0.9, 0.0),
    ("representation", 0.5, 0.5),
]


@pytest.mark.parametrize(("site", "beta", "beta_sigma"), CASES)
def test_matches_libmtls_update(float64: None, site: str, beta: float, beta_sigma: float) -> None:
    steps = 50
    problem = ToyRegression(**small_toy_params(3, [1.0, 10.0, 100.0]))
    balancer = DbMtl(gradients=site, beta=beta, beta_sigma=beta_sigma)
    result = train(problem, balancer, Budget(steps, trace_every=1), seed=5, device="cpu")
    used, reference = reference_db_mtl(problem, steps, 5, site, beta, beta_sigma)
    raw = torch.tensor(used)
    assert_close_relative(weight_trace(result.trace), 3 * raw / raw.sum(1, keepdim=True), 1e-9)
    assert_close_relative(balancer.raw_weights, raw[-1], 1e-9)
    assert float(raw[-1].max() / raw[-1].min()) > 10  # far from equal weights
    assert result.model is not None
    for ours, theirs in zip(
        result.model.state_dict().values(), reference.state_dict().values(), strict=True
    ):
        assert_close_relative(ours, theirs, 1e-9)


def _one_step(balancer: DbMtl, model: MultitaskModel, problem: ToyRegression, size: int) -> None:
    batch = problem.train_data.batch(torch.arange(size), torch.device("cpu"))
    model.zero_grad(set_to_none=True)
    balancer.step(TrainingStep(model, problem, batch, needs=balancer.needs))


def test_a_batch_of_another_size_restarts_the_representation_average(float64: None) -> None:
    """With σ = 0, β_k is the same at every step, so after the reset a 30-sample step gives
    what a fresh balancer's first step on that batch gives."""
    problem = ToyRegression(**small_toy_params(2, [1.0, 10.0]))
    torch.manual_seed(0)
    model = problem.build_model()
    fresh_model = copy.deepcopy(model)
    context = balancer_context(problem, model, torch.device("cpu"), 0)
    used, fresh = DbMtl(gradients="representation"), DbMtl(gradients="representation")
    used.start(context)
    fresh.start(context)
    _one_step(used, model, problem, 40)
    _one_step(used, model, problem, 30)  # no optimiser step: the same network
    _one_step(fresh, fresh_model, problem, 30)
    for ours, theirs in zip(model.parameters(), fresh_model.parameters(), strict=True):
        assert ours.grad is not None and theirs.grad is not None
        assert_close_relative(ours.grad, theirs.grad, 1e-12)
    assert_close_relative(used.raw_weights, fresh.raw_weights, 1e-12)


def test_the_label_and_hyperparameters() -> None:
    declaration = DbMtl.declaration
    labels = [
        declaration.configurations_of(declaration.params(gradients=g))[0].label
        for g in ("parameters", "representation")
    ]
    assert labels == ["beta=0.9,beta_sigma=0", "beta=0.9,beta_sigma=0,at=z"]
    assert DbMtl().hyperparameters() == {
        "beta": 0.9,
        "beta_sigma": 0.0,
        "gradients": "parameters",
    }


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"gradients": "z"}, "gradients must be one of"),
        ({"beta": 1.0}, r"beta must be in \[0, 1\)"),
        ({"beta": -0.1}, r"beta must be in \[0, 1\)"),
        ({"beta_sigma": -1.0}, "beta_sigma must be >= 0"),
        ({"beta_sigma": float("nan")}, "beta_sigma must be >= 0"),
    ],
)
def test_bad_arguments(arguments: dict[str, object], message: str) -> None:
    with pytest.raises(BalancerError, match=f"^db_mtl: {message}"):
        DbMtl(**arguments)  # type: ignore[arg-type]
