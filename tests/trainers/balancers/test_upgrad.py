"""UPGrad: torchjd's aggregation, one step at a time, and an update that conflicts with no task."""

from __future__ import annotations

import pytest
import torch
from torchjd.aggregation import UPGrad

from gradsweep.trainers.balancers.base import BalancerContext
from gradsweep.trainers.balancers.upgrad import UpGrad
from tests.trainers.balancers.torchjd_reference import assert_step_matches_torchjd


def started(tasks: int) -> UpGrad:
    balancer = UpGrad()
    balancer.start(BalancerContext(tasks, torch.device("cpu"), None, lambda: torch.ones(tasks)))
    return balancer


@pytest.mark.parametrize("site", ["parameters", "representation"])
def test_a_step_is_torchjds_upgrad(float64: None, site: str) -> None:
    balancer = UpGrad(gradients=site)
    raw = assert_step_matches_torchjd(balancer, UPGrad(), site)
    assert bool((raw >= 1 / 3 - 1e-12).all())
    assert balancer.weights == pytest.approx(3 * raw / raw.sum())


def test_the_update_conflicts_with_no_task(float64: None) -> None:
    jacobian = torch.tensor([[1.0, 0.0, 0.0], [-0.8, 1.0, 0.0], [-0.5, -0.5, 1.0]])
    weights = started(3).weights_of(jacobian @ jacobian.T)
    improvements = jacobian @ (weights @ jacobian)
    assert bool((weights >= 1 / 3 - 1e-12).all())
    assert bool((improvements >= 0).all()), improvements
    assert float(weights.sum()) > 1.2  # the projections added weight: the tasks conflict


def test_without_conflict_it_is_the_mean(float64: None) -> None:
    jacobian = torch.tensor([[1.0, 0.0, 0.2], [0.3, 1.0, 0.0], [0.0, 0.1, 1.0]])
    weights = started(3).weights_of(jacobian @ jacobian.T)
    assert weights == pytest.approx(torch.full((3,), 1 / 3), rel=1e-9)


def test_the_label_and_records() -> None:
    declaration = UpGrad.declaration
    exact, cheap = (declaration.params(gradients=g) for g in ("parameters", "representation"))
    assert [declaration.configurations_of(p)[0].label for p in (exact, cheap)] == ["exact", "at=z"]
    assert UpGrad().hyperparameters() == {"gradients": "parameters"}
