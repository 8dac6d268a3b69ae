"""The packed-step check: tried on the model, with the reason when it does not pack."""

from __future__ import annotations

import torch

from gradsweep.trainers import MultiDigits, ToyRegression
from gradsweep.trainers.packed.packability import check_packing, model_size
from tests.trainers.conftest import small_toy_params
from tests.trainers.packing_problems import (
    BatchNormToy,
    BranchingToy,
    DropoutToy,
    UnbuildableToy,
)

PARAMS = small_toy_params(2, [1.0, 100.0])


def test_the_built_in_problems_pack() -> None:
    toy = check_packing(ToyRegression(**PARAMS))
    assert toy.packable and toy.parameters == model_size(ToyRegression(**PARAMS)).parameters > 0
    assert not model_size(ToyRegression(**PARAMS)).convolutional
    assert check_packing(MultiDigits(train_samples=200, test_samples=50)).packable
    assert check_packing(BatchNormToy(**PARAMS)).packable


def test_a_model_that_cannot_run_under_vmap_says_why() -> None:
    dropout = check_packing(DropoutToy(**PARAMS))
    assert not dropout.packable
    assert str(dropout.reason).startswith("the model does not run under torch.func.vmap: ")
    assert "random" in str(dropout.reason) and "\n" not in str(dropout.reason)
    branching = check_packing(BranchingToy(**PARAMS))
    assert "data-dependent control flow" in str(branching.reason)
    unbuildable = check_packing(UnbuildableToy(**PARAMS))
    assert unbuildable.reason == "the model cannot be built: RuntimeError: no GPU memory left"


def test_the_check_leaves_the_global_random_state_alone() -> None:
    torch.manual_seed(5)
    expected = torch.rand(3)
    torch.manual_seed(5)
    check_packing(ToyRegression(**PARAMS))
    assert torch.equal(torch.rand(3), expected)
