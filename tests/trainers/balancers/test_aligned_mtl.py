"""Aligned-MTL: torchjd's aggregation, one step at a time, and the aligned update its
weights give."""

from __future__ import annotations

import pytest
import torch
from torchjd.aggregation import AlignedMTL

from gradsweep.errors import BalancerError
from gradsweep.trainers.balancers.aligned_mtl import AlignedMtl
from gradsweep.trainers.balancers.base import BalancerContext
from tests.trainers.balancers.torchjd_reference import assert_step_matches_torchjd


def started(tasks: int, scale_mode: str = "min") -> AlignedMtl:
    balancer = AlignedMtl(scale_mode=scale_mode)
    balancer.start(BalancerContext(tasks, torch.device("cpu"), None, lambda: torch.ones(tasks)))
    return balancer


@pytest.mark.parametrize("site", ["parameters", "representation"])
def test_a_step_is_torchjds_aligned_mtl(float64: None, site: str) -> None:
    balancer = AlignedMtl(gradients=site)
    raw = assert_step_matches_torchjd(balancer, AlignedMTL(), site)
    assert float(raw.sum()) > 0
    assert balancer.weights == pytest.approx(3 * raw / raw.sum())


def test_another_scale_mode_is_torchjds_too(float64: None) -> None:
    assert_step_matches_torchjd(AlignedMtl(scale_mode="rmse"), AlignedMTL(scale_mode="rmse"))


def test_the_update_is_the_mean_of_orthogonal_gradients_of_norm_root_lambda_min(
    float64: None,
) -> None:
    """α = √λ_min · G^{-1/2} 𝟙 / T: the aligned rows B J are orthonormal up to √λ_min, so
    their mean has squared norm λ_min / T."""
    tasks = 4
    jacobian = torch.randn(tasks, 9, generator=torch.Generator().manual_seed(0))
    gramian = jacobian @ jacobian.T
    alpha = started(tasks).weights_of(gramian)
    eigenvalues, vectors = torch.linalg.eigh(gramian)
    inverse_root = vectors @ torch.diag(eigenvalues.rsqrt()) @ vectors.T
    expected = eigenvalues.min().sqrt() * inverse_root @ torch.ones(tasks) / tasks
    assert alpha == pytest.approx(expected, rel=1e-9)
    update = alpha @ jacobian
    assert float(update @ update) == pytest.approx(float(eigenvalues.min()) / tasks, rel=1e-9)


def test_a_weight_can_be_negative(float64: None) -> None:
    jacobian = torch.tensor([[1.0, 0.0], [10.0, 1.0]])
    alpha = started(2).weights_of(jacobian @ jacobian.T)
    assert float(alpha.min()) < 0 < float(alpha.sum())


def test_a_bad_scale_mode_is_refused() -> None:
    with pytest.raises(BalancerError, match="scale_mode"):
        AlignedMtl(scale_mode="max")


def test_the_label_and_records() -> None:
    declaration = AlignedMtl.declaration
    labels = [
        declaration.configurations_of(declaration.params(gradients=g, scale_mode=s))[0].label
        for g, s in (("parameters", "min"), ("representation", "rmse"))
    ]
    assert labels == ["scale_mode=min", "scale_mode=rmse,at=z"]
    assert AlignedMtl().hyperparameters() == {"scale_mode": "min", "gradients": "parameters"}
