"""MGDA: torchjd's aggregation, one step at a time, and its weights on the simplex."""

from __future__ import annotations

import pytest
import torch
from torchjd.aggregation import MGDA

from gradsweep.trainers.balancers.mgda import Mgda
from tests.trainers.balancers.torchjd_reference import assert_step_matches_torchjd


@pytest.mark.parametrize("site", ["parameters", "representation"])
def test_a_step_is_torchjds_mgda(float64: None, site: str) -> None:
    raw = assert_step_matches_torchjd(Mgda(gradients=site), MGDA(), site)
    assert float(raw.sum()) == pytest.approx(1.0)  # a convex combination
    assert bool((raw >= 0).all())


def test_recorded_weights_are_the_applied_ones_rescaled_to_the_task_count(float64: None) -> None:
    balancer = Mgda()
    assert_step_matches_torchjd(balancer, MGDA())
    assert balancer.weights == pytest.approx(3 * balancer.raw_weights)
    assert balancer.hyperparameters() == {"gradients": "parameters"}


def test_the_label_says_where_the_gradients_are_taken() -> None:
    declaration = Mgda.declaration
    exact, cheap = (declaration.params(gradients=g) for g in ("parameters", "representation"))
    assert [declaration.configurations_of(p)[0].label for p in (exact, cheap)] == [
        "exact",
        "at=z",
    ]
    assert torch.is_tensor(Mgda().raw_weights)
