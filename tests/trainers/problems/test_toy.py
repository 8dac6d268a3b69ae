from __future__ import annotations

import pytest
import torch

from gradsweep.errors import ProblemError
from gradsweep.trainers import ToyRegression
from gradsweep.trainers.problems.toy import SIGMA_PRESETS, generate_toy_data


def test_presets_match_the_paper() -> None:
    assert ToyRegression(tasks=2, train_samples=100, test_samples=10).sigmas == (1.0, 100.0)
    assert ToyRegression(tasks=10, train_samples=100, test_samples=10).sigmas == (
        48.0,
        3.0,
        54.0,
        16.0,
        9.0,
        30.0,
        52.0,
        26.0,
        47.0,
        81.0,
    )
    assert set(SIGMA_PRESETS) == {2, 10}


def test_targets_are_sigma_tanh_of_a_perturbed_linear_map() -> None:
    x, ys = generate_toy_data([2.0, 5.0], samples=300, data_seed=1)
    assert x.shape == (300, 250) and [y.shape for y in ys] == [(300, 100), (300, 100)]
    assert float(ys[0].abs().max()) <= 2.0 and float(ys[1].abs().max()) <= 5.0
    # most pre-activations are large (B ~ N(0, 10)), so |f_i| sits near σ_i
    assert float(ys[1].abs().mean()) > 0.9 * 5.0


def test_data_depends_on_data_seed_only() -> None:
    a = ToyRegression(tasks=2, train_samples=100, test_samples=20, data_seed=3)
    b = ToyRegression(tasks=2, train_samples=100, test_samples=20, data_seed=3)
    c = ToyRegression(tasks=2, train_samples=100, test_samples=20, data_seed=4)
    assert torch.equal(a.train_data.inputs, b.train_data.inputs)
    assert not torch.equal(a.train_data.inputs, c.train_data.inputs)
    assert not torch.equal(a.train_data.inputs[:20], a.test_data.inputs)


def test_model_shape_and_shared_layer() -> None:
    problem = ToyRegression(tasks=3, sigmas=[1, 2, 3], train_samples=100, test_samples=10)
    model = problem.build_model()
    linears = [m for m in model.trunk if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(250, 100)] + [(100, 100)] * 3
    assert model.shared_layer is linears[-1].weight
    outputs = model(torch.zeros(4, 250))
    assert [o.shape for o in outputs] == [(4, 100)] * 3


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"tasks": 1}, "tasks must be at least 2"),
        ({"tasks": 3}, "no sigma preset for 3 tasks"),
        ({"tasks": 2, "sigmas": [1.0]}, "1 sigmas given for 2 tasks"),
        ({"tasks": 2, "sigmas": [1.0, -2.0]}, "sigmas must be positive"),
        ({"tasks": 2, "train_samples": 10}, "need train_samples >= batch_size"),
    ],
)
def test_bad_parameters(params: dict[str, object], message: str) -> None:
    with pytest.raises(ProblemError, match=message):
        ToyRegression(**params)  # type: ignore[arg-type]
