"""Adam over a pack's stacked parameters: torch's own update, bit for bit, at half the cost.

``torch.optim.Adam`` (the single-tensor path the plain loop takes on the CPU) allocates a
fresh denominator for every parameter at every step; for K stacked copies of a model those
are large allocations, and the page faults of filling them cost as much as the update.
Here each parameter keeps one denominator buffer. The operations and their order are
torch's (lerp, mul-addcmul, sqrt, divide, add eps, addcdiv), so each member's parameters
move exactly as one ``torch.optim.Adam`` per member would move them (a test checks it).
Defaults are torch's: betas (0.9, 0.999), eps 1e-8, no weight decay, no amsgrad.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch


class StackedAdam:
    """Adam with one reused buffer per parameter; ``reset(mask)`` zeroes members' moments."""

    def __init__(
        self,
        params: Sequence[torch.Tensor],
        lr: float,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
    ) -> None:
        self.params = list(params)
        self.lr, self.eps = lr, eps
        self.beta1, self.beta2 = betas
        self.steps = 0
        self.exp_avg = [torch.zeros_like(p, memory_format=torch.preserve_format) for p in params]
        self.exp_avg_sq = [torch.zeros_like(p, memory_format=torch.preserve_format) for p in params]
        self._denom = [torch.empty_like(p, memory_format=torch.preserve_format) for p in params]

    def zero_grad(self) -> None:
        for param in self.params:
            param.grad = None

    @torch.no_grad()
    def step(self) -> None:
        self.steps += 1
        bias_correction1 = 1 - self.beta1**self.steps
        bias_correction2 = 1 - self.beta2**self.steps
        step_size = self.lr / bias_correction1
        bias_correction2_sqrt = bias_correction2**0.5
        moments = zip(self.params, self.exp_avg, self.exp_avg_sq, self._denom, strict=True)
        for param, exp_avg, exp_avg_sq, denom in moments:
            grad = param.grad
            if grad is None:
                continue  # as torch: a parameter without a gradient is not updated
            exp_avg.lerp_(grad, 1 - self.beta1)
            exp_avg_sq.mul_(self.beta2).addcmul_(grad, grad, value=1 - self.beta2)
            torch.sqrt(exp_avg_sq, out=denom)
            denom.div_(bias_correction2_sqrt).add_(self.eps)
            param.addcdiv_(exp_avg, denom, value=-step_size)

    def reset(self, members: torch.Tensor) -> None:
        """Zero the moments of ``members`` (a mask over the first dimension): with a zero
        gradient too, Adam then moves them by exactly 0."""
        for moment in (*self.exp_avg, *self.exp_avg_sq):
            moment[members] = 0.0
