"""IMTL-G: torchjd's aggregation, one step at a time, and the equal projections its weights give."""

from __future__ import annotations

import pytest
import torch
from torchjd.aggregation import IMTLG

from gradsweep.trainers.balancers.base import BalancerContext
from gradsweep.trainers.balancers.imtl_g import ImtlG
from tests.trainers.balancers.torchjd_reference import assert_step_matches_torchjd


def started(tasks: int) -> ImtlG:
    balancer = ImtlG()
    balancer.start(BalancerContext(tasks, torch.device("cpu"), None, lambda: torch.ones(tasks)))
    return balancer


@pytest.mark.parametrize("site", ["parameters", "representation"])
def test_a_step_is_torchjds_imtl_g(float64: None, site: str) -> None:
    balancer = ImtlG(gradients=site)
    raw = assert_step_matches_torchjd(balancer, IMTLG(), site)
    assert float(raw.sum()) == pytest.approx(1.0)  # an affine combination
    assert balancer.weights == pytest.approx(3 * raw)


def test_the_update_projects_equally_on_every_unit_task_gradient(float64: None) -> None:
    jacobian = torch.randn(4, 9, generator=torch.Generator().manual_seed(0))
    alpha = started(4).weights_of(jacobian @ jacobian.T)
    update = alpha @ jacobian
    projections = jacobian @ update / jacobian.norm(dim=1)
    assert float(alpha.sum()) == pytest.approx(1.0)
    assert projections == pytest.approx(projections[0].expand(4), rel=1e-9)


def test_a_weight_can_be_negative(float64: None) -> None:
    """Two nearly parallel gradients of a third's direction: IMTL-G weighs one negatively."""
    jacobian = torch.tensor([[1.0, 0.0, 0.0], [1.0, 0.2, 0.0], [0.0, 1.0, 0.1]])
    alpha = started(3).weights_of(jacobian @ jacobian.T)
    assert float(alpha.min()) < -1.0
    assert float(alpha.sum()) == pytest.approx(1.0)


def test_the_label_and_records() -> None:
    declaration = ImtlG.declaration
    exact, cheap = (declaration.params(gradients=g) for g in ("parameters", "representation"))
    assert [declaration.configurations_of(p)[0].label for p in (exact, cheap)] == ["exact", "at=z"]
    assert ImtlG().hyperparameters() == {"gradients": "parameters"}
