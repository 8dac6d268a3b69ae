"""PCGrad: torchjd's aggregation, one step at a time (its random order drawn alike on both
sides), and the projections its weights stand for."""

from __future__ import annotations

import pytest
import torch
from torchjd.aggregation import PCGrad

from gradsweep.trainers.balancers.base import BalancerContext
from gradsweep.trainers.balancers.pcgrad import PcGrad
from tests.trainers.balancers.torchjd_reference import assert_step_matches_torchjd


def started(tasks: int) -> PcGrad:
    balancer = PcGrad()
    balancer.start(BalancerContext(tasks, torch.device("cpu"), None, lambda: torch.ones(tasks)))
    return balancer


@pytest.mark.parametrize("site", ["parameters", "representation"])
def test_a_step_is_torchjds_pcgrad(float64: None, site: str) -> None:
    balancer = PcGrad(gradients=site)
    raw = assert_step_matches_torchjd(balancer, PCGrad(), site)
    assert bool((raw >= 1).all())
    assert balancer.weights == pytest.approx(3 * raw / raw.sum())


def test_two_conflicting_tasks_each_lose_their_component_along_the_other(float64: None) -> None:
    """g₁' = g₁ − (g₁·g₂/‖g₂‖²) g₂ and g₂' = g₂ − (g₁·g₂/‖g₁‖²) g₁; the update is g₁' + g₂'."""
    jacobian = torch.tensor([[1.0, 0.0, 0.5], [-0.6, 1.0, 0.0]])
    g1, g2 = jacobian
    expected = g1 - (g1 @ g2) / (g2 @ g2) * g2 + g2 - (g1 @ g2) / (g1 @ g1) * g1
    weights = started(2).weights_of(jacobian @ jacobian.T)
    assert weights @ jacobian == pytest.approx(expected, rel=1e-12)


def test_without_conflict_it_is_the_sum(float64: None) -> None:
    jacobian = torch.tensor([[1.0, 0.0, 0.2], [0.3, 1.0, 0.0], [0.0, 0.1, 1.0]])
    assert started(3).weights_of(jacobian @ jacobian.T) == pytest.approx(torch.ones(3))


def test_the_label_and_records() -> None:
    declaration = PcGrad.declaration
    exact, cheap = (declaration.params(gradients=g) for g in ("parameters", "representation"))
    assert [declaration.configurations_of(p)[0].label for p in (exact, cheap)] == ["exact", "at=z"]
    assert PcGrad().hyperparameters() == {"gradients": "parameters"}
