"""Plain, literal transcriptions of each balancer's published update rule, for tests only.

Written from the papers' formulas, not from gradsweep's classes: one loop over steps that
trains the network exactly as the loop does (same seed, model, Adam, batch order) and
records the weights used at every step.

- uncertainty (Kendall et al. 2018): loss Σ exp(−s_i) L_i + s_i, back-propagated through
  the network AND s at once (autograd, no hand-written gradient), s with its own Adam.
- DWA (Liu et al. 2019): w_k(t) = K exp(r_k(t−1)/T) / Σ_i exp(r_i(t−1)/T) with
  r_k(t−1) = L_k(t−1)/L_k(t−2), the epoch-mean training losses; w = 1 in epochs 0 and 1.
- RLW (Lin et al. 2022): λ = softmax(z), z ~ N(0, I), each step, times K; or λ ~ Dirichlet,
  built as normalised Gamma(c, 1) draws. Both from a torch.Generator seeded by the seed.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import torch

from gradsweep.trainers.engine.loop import epoch_batches
from gradsweep.trainers.problems.base import MultitaskModel, MultitaskProblem


@dataclass
class ReferenceRun:
    weights: list[list[float]]  # the weights each step's network loss used
    model: MultitaskModel


def _training(
    problem: MultitaskProblem, seed: int
) -> tuple[MultitaskModel, torch.optim.Adam, Iterator[torch.Tensor]]:
    torch.manual_seed(seed)
    model = problem.build_model()
    optimizer = torch.optim.Adam(model.parameters(), lr=problem.learning_rate)
    batches = epoch_batches(
        len(problem.train_data), problem.batch_size, torch.Generator().manual_seed(seed)
    )
    return model, optimizer, batches


def _losses(
    problem: MultitaskProblem, model: MultitaskModel, batches: Iterator[torch.Tensor]
) -> list[torch.Tensor]:
    batch = problem.train_data.batch(next(batches), torch.device("cpu"))
    return problem.task_losses(model(batch.inputs), batch)


def reference_uncertainty(
    problem: MultitaskProblem, steps: int, seed: int, lr: float = 0.025
) -> ReferenceRun:
    model, optimizer, batches = _training(problem, seed)
    K = len(problem.tasks)
    s = torch.zeros(K, requires_grad=True)  # log σ_i², σ_i = 1 at the start
    s_optimizer = torch.optim.Adam([s], lr=lr)
    used = []
    for _ in range(steps):
        L = _losses(problem, model, batches)
        used.append([math.exp(-float(s[i].detach())) for i in range(K)])
        total = sum(torch.exp(-s[i]) * L[i] + s[i] for i in range(K))
        optimizer.zero_grad()
        s_optimizer.zero_grad()
        total.backward()  # one backward: the network and s together
        optimizer.step()
        s_optimizer.step()
    return ReferenceRun(used, model)


def reference_dwa(
    problem: MultitaskProblem, steps: int, seed: int, temperature: float = 2.0
) -> ReferenceRun:
    model, optimizer, batches = _training(problem, seed)
    K = len(problem.tasks)
    per_epoch = max(len(problem.train_data) // problem.batch_size, 1)
    epoch_losses: list[list[float]] = []  # L_k(e): the mean training loss of each epoch
    running = [0.0] * K
    w = [1.0] * K
    used = []
    for step in range(steps):
        epoch = step // per_epoch
        if step % per_epoch == 0 and epoch >= 2:
            r = [epoch_losses[epoch - 1][k] / epoch_losses[epoch - 2][k] for k in range(K)]
            denominator = sum(math.exp(r[i] / temperature) for i in range(K))
            w = [K * math.exp(r[k] / temperature) / denominator for k in range(K)]
        L = _losses(problem, model, batches)
        used.append(list(w))
        optimizer.zero_grad()
        sum(w[k] * L[k] for k in range(K)).backward()
        optimizer.step()
        running = [running[k] + L[k].item() for k in range(K)]
        if (step + 1) % per_epoch == 0:
            epoch_losses.append([total / per_epoch for total in running])
            running = [0.0] * K
    return ReferenceRun(used, model)


def _random_weights(
    K: int, generator: torch.Generator, distribution: str, concentration: float
) -> list[float]:
    if distribution == "normal":
        z = torch.randn(K, generator=generator, dtype=torch.float64).tolist()
        return [K * math.exp(z[k]) / sum(math.exp(z[i]) for i in range(K)) for k in range(K)]
    alpha = torch.full((K,), concentration, dtype=torch.float64)
    g = torch._standard_gamma(alpha, generator=generator).tolist()  # g_k ~ Gamma(c, 1)
    return [K * g[k] / sum(g) for k in range(K)]


def reference_rlw(
    problem: MultitaskProblem,
    steps: int,
    seed: int,
    distribution: str = "normal",
    concentration: float = 1.0,
) -> ReferenceRun:
    model, optimizer, batches = _training(problem, seed)
    K = len(problem.tasks)
    generator = torch.Generator().manual_seed(seed)
    used = []
    for _ in range(steps):
        lam = _random_weights(K, generator, distribution, concentration)
        L = _losses(problem, model, batches)
        used.append(lam)
        optimizer.zero_grad()
        sum(lam[k] * L[k] for k in range(K)).backward()
        optimizer.step()
    return ReferenceRun(used, model)


class FixedLossStep:
    """A stand-in training step whose task losses never change and whose backward is a no-op.

    For exercising a balancer's own rule without a network.
    """

    def __init__(self, losses: list[float]) -> None:
        self.losses = torch.tensor(losses)

    def backward(self, weights: torch.Tensor) -> None:
        pass


def weight_trace(points: list[tuple[int, list[float]]]) -> torch.Tensor:
    """A ``TrainResult.trace`` (recorded with ``trace_every=1``) as a (steps, T) tensor."""
    assert [step for step, _ in points] == list(range(len(points)))
    return torch.tensor([weights for _, weights in points])
