from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from gradsweep.trainers import Budget, GradNorm, NYUv2, StaticBalancer, train
from gradsweep.trainers.balancers.base import BalancerContext
from gradsweep.trainers.engine.precision import Precision, parse_precision
from gradsweep.trainers.engine.step import TrainingStep
from tests.trainers.conv_problem import ConvRegression
from tests.trainers.nyuv2_dataset import write_dataset
from tests.trainers.user_problem import make_problem

CPU = torch.device("cpu")


def test_precision_names() -> None:
    assert parse_precision("bf16") is Precision.BF16 and str(Precision.FP32) == "fp32"
    with pytest.raises(ValueError, match="precision must be one of fp32, bf16, got 'fp16'"):
        parse_precision("fp16")


def test_bf16_runs_the_forward_in_bf16_and_keeps_gradnorm_in_fp32() -> None:
    problem = ConvRegression(scales=(1.0, 10.0))
    model = problem.build_model()
    batch = problem.train_data.batch(torch.arange(problem.batch_size), CPU)
    gradnorm = GradNorm(alpha=1.5)
    gradnorm.start(BalancerContext(2, CPU, None, lambda: torch.ones(2)))
    step = TrainingStep(model, problem, batch, True, Precision.BF16)
    assert step.z.dtype == torch.bfloat16
    assert step.losses.dtype == torch.float32
    step.backward(gradnorm.weights)
    norms = step.shared_layer_gradient_norms()
    assert norms.dtype == torch.float32 and torch.isfinite(norms).all()
    assert all(p.grad is None or p.grad.dtype == torch.float32 for p in model.parameters())


@pytest.mark.parametrize("balancer", ["equal", "gradnorm"])
def test_a_bf16_run_lands_near_the_fp32_run(tmp_path: Path, balancer: str) -> None:
    """bf16 changes results by rounding, not by kind: the same run ends close to fp32's."""
    problem = make_problem(2, scale=3.0)
    budget = Budget(200, eval_every=100)
    runs = {}
    for precision in ("fp32", "bf16"):
        chosen = StaticBalancer() if balancer == "equal" else GradNorm(0.5)
        runs[precision] = train(problem, chosen, budget, seed=1, device="cpu", precision=precision)
    fp32, bf16 = runs["fp32"], runs["bf16"]
    assert bf16.status == "completed" and bf16.precision == "bf16" and fp32.precision == "fp32"
    assert bf16.normalized_loss is not None and fp32.normalized_loss is not None
    assert bf16.normalized_loss != fp32.normalized_loss
    assert bf16.normalized_loss == pytest.approx(fp32.normalized_loss, rel=0.1)
    assert all(math.isfinite(w) for w in bf16.weights_final)
    assert torch.tensor(bf16.weights_final).sum().item() == pytest.approx(2.0)


def test_bf16_trains_the_nyuv2_segnet_on_the_cpu(tmp_path: Path) -> None:
    problem = NYUv2(root=str(write_dataset(tmp_path / "nyuv2")), width=4, levels=2, batch_size=2)
    result = train(problem, GradNorm(1.5), Budget(4), seed=0, device="cpu", precision="bf16")
    assert result.status == "completed", result.error
    assert all(math.isfinite(loss) for loss in result.test_losses)
