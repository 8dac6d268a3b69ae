from __future__ import annotations

import torch

from gradsweep.trainers.packed.stacked_adam import StackedAdam


def params_with_grads(seed: int) -> list[torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    shapes = [(4, 30, 20), (4, 30), (4, 7)]
    params = [torch.randn(s, generator=generator).requires_grad_() for s in shapes]
    # a transposed layout, as a packed linear weight has
    params[0] = params[0].detach().transpose(1, 2).contiguous().transpose(1, 2).requires_grad_()
    return params


def test_the_same_update_as_torch_adam_bit_for_bit() -> None:
    ours, theirs = params_with_grads(0), params_with_grads(0)
    optimizer = StackedAdam(ours, lr=1e-3)
    reference = torch.optim.Adam(theirs, lr=1e-3, foreach=False)
    generator = torch.Generator().manual_seed(1)
    for step in range(25):
        scale = 10.0 ** (-step % 7)  # tiny gradients too (denormal squares)
        for a, b in zip(ours, theirs, strict=True):
            grad = torch.randn(a.shape, generator=generator) * scale
            a.grad, b.grad = grad.clone(), grad.clone()
        optimizer.step()
        reference.step()
    for a, b in zip(ours, theirs, strict=True):
        assert torch.equal(a, b)
        assert a.stride() == b.stride()


def test_reset_members_stop_moving() -> None:
    params = params_with_grads(2)
    optimizer = StackedAdam(params, lr=1e-2)
    for param in params:
        param.grad = torch.ones_like(param)
    optimizer.step()
    frozen = torch.tensor([False, True, False, False])
    before = [p.detach().clone() for p in params]
    optimizer.reset(frozen)
    for param in params:
        param.grad = torch.ones_like(param)
        param.grad[frozen] = 0.0
    optimizer.step()
    for param, old in zip(params, before, strict=True):
        assert torch.equal(param[frozen], old[frozen])
        assert not torch.equal(param[~frozen], old[~frozen])
