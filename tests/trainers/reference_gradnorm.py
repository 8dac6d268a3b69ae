"""A plain, literal transcription of GradNorm's Algorithm 1, for tests only.

Deliberately naive and independent of gradsweep's balancer: every G_i comes from its own
``autograd.grad(w_i L_i, W, create_graph=True)`` and ``∇_w L_grad`` from differentiating
L_grad with respect to ``w`` alone (so nothing second-order reaches the network).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from gradsweep.trainers.engine.loop import epoch_batches
from gradsweep.trainers.problems.base import MultitaskModel, MultitaskProblem


@dataclass
class ReferenceRun:
    weights: list[torch.Tensor]  # w(t) used at every step t, then w after the last step
    model: MultitaskModel
    initial_losses: torch.Tensor


def reference_gradnorm(
    problem: MultitaskProblem,
    alpha: float,
    steps: int,
    seed: int,
    lr: float = 0.025,
    initial_losses: torch.Tensor | None = None,
) -> ReferenceRun:
    T = len(problem.tasks)
    torch.manual_seed(seed)
    model = problem.build_model()
    network_optimizer = torch.optim.Adam(model.parameters(), lr=problem.learning_rate)
    w = torch.ones(T, requires_grad=True)  # w_i(0) = 1
    weight_optimizer = torch.optim.Adam([w], lr=lr)
    W = model.shared_layer  # the last shared layer
    batches = epoch_batches(
        len(problem.train_data), problem.batch_size, torch.Generator().manual_seed(seed)
    )
    L0 = initial_losses
    history = []
    for _ in range(steps):
        batch = problem.train_data.batch(next(batches), torch.device("cpu"))
        L_i = problem.task_losses(model(batch.inputs), batch)
        if L0 is None:
            L0 = torch.stack([loss.detach() for loss in L_i])
        history.append(w.detach().clone())
        # G_W^(i)(t) = || grad_W w_i(t) L_i(t) ||_2, one task at a time
        G = torch.stack(
            [
                torch.autograd.grad(w[i] * L_i[i], W, retain_graph=True, create_graph=True)[
                    0
                ].norm()
                for i in range(T)
            ]
        )
        G_bar = G.mean()
        L_tilde = torch.stack([L_i[i].detach() / L0[i] for i in range(T)])
        r = L_tilde / L_tilde.mean()
        target = (G_bar * r**alpha).detach()  # held constant
        L_grad = torch.abs(G - target).sum()
        (grad_w,) = torch.autograd.grad(L_grad, w, retain_graph=True)
        network_optimizer.zero_grad()
        L = sum(w[i].detach() * L_i[i] for i in range(T))
        L.backward()
        w.grad = grad_w
        weight_optimizer.step()  # w(t) -> w(t+1) with grad_w L_grad
        network_optimizer.step()  # network with grad L
        with torch.no_grad():  # renormalise: sum w = T, w > 0
            w.clamp_(min=1e-6)
            w.mul_(T / w.sum())
    history.append(w.detach().clone())
    assert L0 is not None
    return ReferenceRun(history, model, L0)
