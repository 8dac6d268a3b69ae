"""Nash-MTL: our own transcription of the official code's programs, held against torchjd's
public ``NashMTL`` aggregator (one training step, and a stateful sequence of Jacobians), and
against the bargaining condition ``α ⊙ (G α) = 1`` itself.

Both sides build the same convex programs and solve them with the same ECOS, so they agree
to rounding (rel 1e-9), not merely to the solver's tolerance (≈1e-8): a looser bound would
miss a transcription that keeps the wrong iterate when it stops. Ours hands ECOS the conic
data directly, without cvxpy: that data is held bit for bit against cvxpy's canonicalisation
of the official statement (transcribed here), since ECOS amplifies a last-bit difference in
its cost to ~1e-7 in α on a nearly converged program.
"""

from __future__ import annotations

from typing import Any

import cvxpy as cp
import numpy as np
import pytest
import scipy.sparse
import torch
from torchjd.aggregation import NashMTL

from gradsweep.errors import BalancerError
from gradsweep.trainers.balancers import nash_mtl
from gradsweep.trainers.balancers.fairgrad import FairWeighting
from gradsweep.trainers.balancers.nash_mtl import NashBargaining, NashMtl, _LinearisedProgram
from tests.trainers.balancers.random_gramians import TASK_COUNTS
from tests.trainers.balancers.random_gramians import jacobians as random_jacobians
from tests.trainers.balancers.torchjd_reference import assert_step_matches_torchjd

pytestmark = [  # torchjd's cvxpy solves: re-canonicalised, and ECOS at its iteration cap
    pytest.mark.filterwarnings("ignore:.*not DPP:UserWarning"),
    pytest.mark.filterwarnings("ignore:Solution may be inaccurate:UserWarning"),
]

OPTIONS = [
    {},  # the paper's defaults: every step, 20 programs, ‖Jᵀα‖ ≤ 1
    {"max_norm": 0.0},  # no clipping
    {"max_norm": 0.05, "optim_niter": 3},  # clipped hard, few programs
]


@pytest.mark.parametrize("options", OPTIONS, ids=["defaults", "unclipped", "clipped"])
@pytest.mark.parametrize("site", ["parameters", "representation"])
def test_a_step_is_torchjds_nash_mtl(float64: None, site: str, options: dict) -> None:
    balancer = NashMtl(gradients=site, **options)
    raw = assert_step_matches_torchjd(balancer, NashMTL(n_tasks=3, **options), site)
    assert bool((raw > 0).all())
    assert float(balancer.weights.sum()) == pytest.approx(3.0)
    assert balancer.weights == pytest.approx(3 * raw / raw.sum())


def jacobians(count: int = 5) -> list[torch.Tensor]:
    """Random ``3 × 12`` Jacobians of tasks at different scales that mostly agree (a common
    direction), but the fourth: drawn apart, its program linearised at the last α is
    unbounded, so the official rule keeps that α (from α = 1 it would find another)."""
    generator = torch.Generator().manual_seed(11)
    scales = torch.tensor([[1.0], [4.0], [0.3]], dtype=torch.float64)
    result = []
    for _ in range(count):
        noise = torch.randn(3, 12, generator=generator, dtype=torch.float64)
        shared = torch.randn(1, 12, generator=generator, dtype=torch.float64)
        result.append(scales * (shared + 0.7 * noise))
    conflicting = torch.Generator().manual_seed(8)
    result[3] = scales * torch.randn(3, 12, generator=conflicting, dtype=torch.float64)
    return result


SEQUENCES = [
    (1, 1.0),  # the defaults
    (2, 1.0),  # reuse every other step, clipped on each step's own Jacobian
    (2, 0.0),
    (1, 0.2),
]


@pytest.mark.parametrize(("every", "max_norm"), SEQUENCES)
def test_a_sequence_of_steps_is_torchjds(every: int, max_norm: float) -> None:
    """Stateful: warm starts and reused α, step after step, as torchjd's aggregator."""
    ours = NashBargaining(update_weights_every=every, optim_niter=20, max_norm=max_norm)
    reference = NashMTL(n_tasks=3, max_norm=max_norm, update_weights_every=every, optim_niter=20)
    for jacobian in jacobians():
        alpha = ours(jacobian @ jacobian.T)
        assert alpha.dtype == torch.float64 and bool((alpha > 0).all())
        assert alpha @ jacobian == pytest.approx(reference(jacobian), rel=1e-9, abs=1e-12)
        if max_norm:
            assert float((alpha @ jacobian).norm()) <= max_norm * (1 + 1e-12)


@pytest.mark.parametrize("tasks", TASK_COUNTS)
def test_sequences_on_every_gramian_are_torchjds(tasks: int) -> None:
    """Condition 1 to 1e12 and rank-deficient Jacobians, one after another (each warm-starts
    from the last α), each case twice (the second from an α that nearly bargains already)."""
    ours = NashBargaining(update_weights_every=1, optim_niter=20, max_norm=0.0)
    reference = NashMTL(n_tasks=tasks, max_norm=0.0, update_weights_every=1, optim_niter=20)
    cases = random_jacobians(tasks)
    for case, jacobian in [c for pair in zip(cases, cases, strict=True) for c in pair]:
        alpha = ours(jacobian @ jacobian.T)
        expected = reference(jacobian)
        torch.testing.assert_close(alpha @ jacobian, expected, rtol=1e-9, atol=1e-12, msg=case)


class OfficialProgram:
    """The official code's program as torchjd states it in cvxpy (one log constraint per
    task): what cvxpy canonicalises it to is the reference for our conic data."""

    def __init__(self, tasks: int) -> None:
        self.alpha = cp.Variable(tasks, nonneg=True)
        self.anchor = cp.Parameter(tasks, value=np.ones(tasks))
        self.gramian = cp.Parameter((tasks, tasks), value=np.eye(tasks))
        self.scale = cp.Parameter(1, value=np.ones(1))
        utilities = self.gramian @ self.alpha
        slope = 1 / self.anchor + (1 / (self.gramian @ self.anchor)) @ self.gramian
        bargains = [
            -cp.log(self.alpha[i] * self.scale) - cp.log(utilities[i]) <= 0 for i in range(tasks)
        ]
        objective = slope @ (self.alpha - self.anchor) / self.scale
        self.problem = cp.Problem(cp.Minimize(cp.sum(utilities) + objective), bargains)

    def ecos_data(self, scaled: Any, scale: float, anchor: Any) -> dict[str, Any]:
        self.gramian.value, self.scale.value, self.anchor.value = scaled, np.array([scale]), anchor
        data, _, _ = self.problem.get_problem_data(cp.ECOS)
        return data


@pytest.mark.filterwarnings("ignore:.*not DPP")
@pytest.mark.parametrize("tasks", [2, 3, 5, 10])
def test_the_programs_are_cvxpys_canonicalisation_bit_for_bit(tasks: int) -> None:
    generator = np.random.default_rng(tasks)
    official, ours = OfficialProgram(tasks), _LinearisedProgram(tasks)
    for case, jacobian in random_jacobians(tasks):
        gramian = (jacobian @ jacobian.T).numpy()
        gramian[0, 1] = gramian[1, 0] = 0.0  # an exact zero: left out of both sparse matrices
        scale = float(np.linalg.norm(gramian))
        ours.use(gramian / scale, scale)
        for anchor in [np.ones(tasks), generator.uniform(0.01, 100, tasks)]:
            data = official.ecos_data(gramian / scale, scale, anchor)
            assert np.array_equal(ours.cost(anchor), data["c"]), case
            assert np.array_equal(ours.bounds, data["h"]), case
            expected = scipy.sparse.csc_matrix(data["G"])
            assert ours.matrix.nnz == expected.nnz, case
            assert np.array_equal(ours.matrix.toarray(), expected.toarray()), case
            dims = data["dims"]
            assert ours.cones == {"l": dims.nonneg, "q": list(dims.soc), "e": dims.exp}, case


def test_a_recomputation_that_already_bargains_solves_no_program(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The official code solves once more and then keeps an α that meets its condition
    whatever the solve gave: that solve is skipped, the α kept (as torchjd keeps it: the
    sequences above, and ``test_the_last_alpha_is_kept_when_it_already_meets_the_stopping_rule``).
    The bargaining solution of ``Ĝ`` is FairGrad's root at α = 1 (``Ĝ a = 1/a``)."""
    solves = []
    solve = nash_mtl.ecos.solve

    def counted(*arguments: Any, **options: Any) -> Any:
        solves.append(1)
        return solve(*arguments, **options)

    monkeypatch.setattr(nash_mtl, "ecos", type("Ecos", (), {"solve": staticmethod(counted)}))
    weighting = NashBargaining(update_weights_every=1, optim_niter=20, max_norm=0.0)
    jacobian = jacobians()[0]
    gramian = jacobian @ jacobian.T
    weighting(gramian)
    assert solves
    solves.clear()
    bargained = FairWeighting(1.0)(gramian / torch.linalg.matrix_norm(gramian))
    weighting.alpha = bargained.numpy()
    assert torch.equal(weighting(gramian), bargained)
    assert solves == []


def test_alpha_is_reused_between_recomputations() -> None:
    weighting = NashBargaining(update_weights_every=2, optim_niter=20, max_norm=0.0)
    alphas = [weighting(j @ j.T) for j in jacobians()]
    assert torch.equal(alphas[0], alphas[1]) and torch.equal(alphas[2], alphas[3])
    assert not torch.allclose(alphas[1], alphas[2])


def test_the_last_alpha_is_kept_when_it_already_meets_the_stopping_rule() -> None:
    """The official rule stops before any program once ``‖Ĝα − 1/α‖ < 10⁻³`` on the
    Gramian scaled to norm 1: with unit-norm Gramians (``Ĝ = G``) a slightly moved Jacobian
    keeps the last α exactly, as torchjd does, though a fresh solve would move it."""
    first = jacobians()[0]
    first = first / (first @ first.T).norm().sqrt()
    generator = torch.Generator().manual_seed(3)
    moved = first + 1e-5 * torch.randn(first.shape, generator=generator, dtype=torch.float64)
    moved = moved / (moved @ moved.T).norm().sqrt()
    ours = NashBargaining(update_weights_every=1, optim_niter=20, max_norm=0.0)
    reference = NashMTL(n_tasks=3, max_norm=0.0)
    alphas = []
    for jacobian in (first, moved):
        alphas.append(ours(jacobian @ jacobian.T))
        assert alphas[-1] @ jacobian == pytest.approx(reference(jacobian), rel=1e-9, abs=1e-12)
    assert torch.equal(alphas[0], alphas[1])
    fresh = NashBargaining(update_weights_every=1, optim_niter=20, max_norm=0.0)
    assert not torch.allclose(fresh(moved @ moved.T), alphas[1], rtol=1e-6, atol=0)


def test_alpha_is_the_nash_bargaining_solution() -> None:
    """Independently of torchjd: once converged, ``α_i (G α)_i = 1`` for every task (the
    paper's Claim 3.1), on the raw Gramian, whatever its scale."""
    for jacobian in [j for k, j in enumerate(jacobians()) if k != 3]:
        gramian = 50.0 * jacobian @ jacobian.T
        alpha = NashBargaining(update_weights_every=1, optim_niter=50, max_norm=0.0)(gramian)
        assert alpha * (gramian @ alpha) == pytest.approx(torch.ones(3), abs=1e-5)


def test_the_weights_keep_the_gramians_dtype_and_are_clipped_to_max_norm() -> None:
    jacobian = jacobians()[0].to(torch.float32)
    alpha = NashBargaining(update_weights_every=1, optim_niter=20, max_norm=0.1)(
        jacobian @ jacobian.T
    )
    assert alpha.dtype == torch.float32
    assert float((alpha @ jacobian).norm()) == pytest.approx(0.1, rel=1e-5)


def test_start_begins_a_fresh_weighting(float64: None) -> None:
    balancer = NashMtl(update_weights_every=3)
    assert_step_matches_torchjd(balancer, NashMTL(n_tasks=3, update_weights_every=3))
    first = balancer._weighting
    assert_step_matches_torchjd(balancer, NashMTL(n_tasks=3, update_weights_every=3))
    assert balancer._weighting is not first and balancer._weighting.calls == 1


@pytest.mark.parametrize(
    "arguments",
    [
        {"update_weights_every": 0},
        {"optim_niter": 0},
        {"optim_niter": 2.5},
        {"update_weights_every": True},
        {"max_norm": -1.0},
        {"max_norm": float("nan")},
        {"gradients": "heads"},
    ],
)
def test_bad_arguments_are_refused(arguments: dict) -> None:
    with pytest.raises(BalancerError):
        NashMtl(**arguments)


def test_the_label_and_hyperparameters_name_the_options() -> None:
    declaration = NashMtl.declaration
    params = declaration.params()
    assert (params.update_weights_every, params.optim_niter, params.max_norm) == (1, 20, 1.0)
    cheap = declaration.params(gradients="representation", update_weights_every=2)
    assert [declaration.configurations_of(p)[0].label for p in (params, cheap)] == [
        "every=1,iters=20,max_norm=1",
        "every=2,iters=20,max_norm=1,at=z",
    ]
    assert NashMtl(max_norm=0).hyperparameters() == {
        "update_weights_every": 1,
        "optim_niter": 20,
        "max_norm": 0.0,
        "gradients": "parameters",
    }
