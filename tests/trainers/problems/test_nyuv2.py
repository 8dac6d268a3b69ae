from __future__ import annotations

import math
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch

from gradsweep.errors import ProblemError
from gradsweep.trainers import Batch, Budget, GradNorm, StaticBalancer, train
from gradsweep.trainers.problems.nyuv2 import (
    DepthStats,
    NormalStats,
    NYUv2,
    NYUv2Metrics,
    SegmentationStats,
    depth_loss,
    normal_loss,
    segmentation_loss,
)
from gradsweep.trainers.problems.nyuv2_data import NYUv2Split
from gradsweep.trainers.problems.segnet import build_segnet, level_channels
from tests.trainers.nyuv2_dataset import HEIGHT, WIDTH, write_dataset

Corruption = Callable[[Path], object]  # edits a written dataset in place


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return write_dataset(tmp_path / "nyuv2")


def test_batches_have_the_layout_shapes_and_values(root: Path) -> None:
    split = NYUv2Split(root, "train")
    assert len(split) == 6 and split.image_size == (HEIGHT, WIDTH)
    batch = split.batch(torch.tensor([4, 1]), torch.device("cpu"))
    label, depth, normal = batch.targets
    assert batch.inputs.shape == (2, 3, HEIGHT, WIDTH) and batch.inputs.dtype == torch.float32
    assert label.shape == (2, HEIGHT, WIDTH) and label.dtype == torch.long
    assert depth.shape == (2, 1, HEIGHT, WIDTH) and normal.shape == (2, 3, HEIGHT, WIDTH)
    image = np.load(root / "train" / "image" / "1.npy")
    assert torch.equal(batch.inputs[1], torch.from_numpy(image).permute(2, 0, 1))
    assert torch.equal(label[0], torch.from_numpy(np.load(root / "train/label/4.npy")).long())
    assert int((label == -1).sum()) > 0 and int((depth == 0).sum()) > 0


def test_max_samples_keeps_the_first_samples(root: Path) -> None:
    assert len(NYUv2Split(root, "train", max_samples=3)) == 3
    assert len(NYUv2Split(root, "train", max_samples=100)) == 6


def _save(relative: str, array: np.ndarray) -> Corruption:
    return lambda root: np.save(root / relative, array)


def _remove(relative: str) -> Corruption:
    def apply(root: Path) -> None:
        path = root / relative
        shutil.rmtree(path) if path.is_dir() else path.unlink()

    return apply


def _empty(relative: str) -> Corruption:
    def apply(root: Path) -> None:
        for path in (root / relative).glob("*.npy"):
            path.unlink()

    return apply


def _rename(source: str, target: str) -> Corruption:
    return lambda root: (root / source).rename(root / target)


def _garbage(relative: str) -> Corruption:
    return lambda root: (root / relative).write_bytes(b"not an array")


BAD_LABELS = np.full((HEIGHT, WIDTH), 13, dtype=np.float32)


@pytest.mark.parametrize(
    ("corrupt", "message"),
    [
        (_remove("."), r"root .*nyuv2 is not a directory"),
        (_remove("val"), r"missing split folder .*nyuv2/val"),
        (_remove("train/depth"), r"missing folder .*train/depth"),
        (_empty("train/normal"), r"no \.npy files in .*train/normal"),
        (_rename("train/label/5.npy", "train/label/7.npy"), r"files in .*train/label are not"),
        (_save("val/image/extra.npy", np.zeros(1)), r"files in .*val/image are not numbered"),
        (_remove("train/depth/5.npy"), r"train has different file counts .*depth=5"),
        (_save("train/image/0.npy", np.zeros((HEIGHT, WIDTH, 4))), r"image/0.npy has shape"),
        (_save("train/image/0.npy", np.zeros((HEIGHT, WIDTH))), r"expected H×W×3"),
        (_save("val/label/0.npy", np.zeros((HEIGHT, WIDTH, 1))), r"val/label/0.npy has shape"),
        (_save("train/depth/0.npy", np.ones((HEIGHT, WIDTH))), r"expected \(16, 24, 1\)"),
        (_save("train/normal/0.npy", np.zeros((HEIGHT, 20, 3))), r"\(16, 20, 3\), expected"),
        (_save("train/label/0.npy", BAD_LABELS), r"label/0.npy has labels in \[13, 13\]"),
        (_garbage("train/image/0.npy"), r"cannot read .*train/image/0.npy"),
    ],
)
def test_malformed_folders_give_one_clear_line(
    root: Path, corrupt: Corruption, message: str
) -> None:
    corrupt(root)
    with pytest.raises(ProblemError, match=message) as caught:
        NYUv2(root=str(root), width=4, levels=2, batch_size=2)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"width": 0}, "width must be > 0"),
        ({"max_train": 0}, "max_train must be > 0"),
        ({"levels": 5}, r"too small for 5 pooling levels \(need at least 32"),
        ({"batch_size": 7}, "6 training samples, fewer than batch_size 7"),
    ],
)
def test_bad_parameters(root: Path, params: dict[str, object], message: str) -> None:
    with pytest.raises(ProblemError, match=message):
        NYUv2(root=str(root), **{"width": 4, "levels": 2, "batch_size": 2, **params})  # type: ignore[arg-type]


def test_segmentation_loss_ignores_unlabelled_pixels() -> None:
    logits = torch.tensor([[2.0, 0, 0], [0, 5, 0], [0, 0, 1]]).T.reshape(1, 3, 1, 3)
    label = torch.tensor([[[0, -1, 2]]])
    expected = (math.log(1 + 2 * math.exp(-2)) + math.log(1 + 2 * math.exp(-1))) / 2
    assert float(segmentation_loss(logits, label)) == pytest.approx(expected, rel=1e-6)
    # dividing by every pixel (ignored ones included) would give 2/3 of it
    assert float(segmentation_loss(logits, label)) != pytest.approx(expected * 2 / 3, rel=1e-3)


def test_depth_loss_averages_measured_pixels_only() -> None:
    prediction = torch.tensor([1.0, 2, 3, 4]).reshape(1, 1, 2, 2)
    depth = torch.tensor([1.5, 0, 2, 4]).reshape(1, 1, 2, 2)
    assert float(depth_loss(prediction, depth)) == pytest.approx((0.5 + 1 + 0) / 3)


def _normals(degrees: list[float]) -> torch.Tensor:
    """Unit vectors at the given angles from +z in the x–z plane, as 1×3×1×n."""
    radians = torch.deg2rad(torch.tensor(degrees))
    vectors = torch.stack([radians.sin(), torch.zeros_like(radians), radians.cos()])
    return vectors.reshape(1, 3, 1, len(degrees))


def test_normal_loss_is_one_minus_cosine_over_pixels_with_a_normal() -> None:
    prediction = _normals([0, 0, 90, 60])
    target = _normals([0, 0, 0, 0]) * 2  # cosine similarity does not care about length
    target[..., 1] = 0  # no ground truth there
    assert float(normal_loss(prediction, target)) == pytest.approx((0 + 1 + 0.5) / 3, rel=1e-6)


def test_losses_of_a_batch_without_ground_truth_are_zero_not_nan() -> None:
    logits = torch.randn(1, 13, 2, 2)
    assert float(segmentation_loss(logits, torch.full((1, 2, 2), -1))) == 0.0
    assert float(depth_loss(torch.ones(1, 1, 2, 2), torch.zeros(1, 1, 2, 2))) == 0.0
    assert float(normal_loss(_normals([0, 0]), torch.zeros(1, 3, 1, 2))) == 0.0


def _one_hot_logits(predicted: list[int], classes: int) -> torch.Tensor:
    logits = torch.nn.functional.one_hot(torch.tensor(predicted), classes).float()
    return logits.T.reshape(1, classes, 1, len(predicted))


def test_segmentation_metrics_over_two_batches() -> None:
    stats = SegmentationStats(classes=4)  # class 3 never occurs and is left out of the mean
    stats.update(_one_hot_logits([0, 1, 1], 4), torch.tensor([[[0, 0, 1]]]))
    stats.update(_one_hot_logits([1, 0, 2], 4), torch.tensor([[[1, 2, -1]]]))
    # IoU: class 0 = 1 / (2 + 2 − 1), class 1 = 2 / (2 + 3 − 2), class 2 = 0 / 1
    metrics = stats.compute()
    assert metrics["miou"] == pytest.approx((1 / 3 + 2 / 3 + 0) / 3)
    assert metrics["pixel_acc"] == pytest.approx(3 / 5)


def test_depth_metrics_over_two_batches() -> None:
    stats = DepthStats()
    depth = torch.tensor([1.5, 0, 2, 4]).reshape(1, 1, 2, 2)
    stats.update(torch.tensor([1.0, 2, 3, 4]).reshape(1, 1, 2, 2), depth)
    stats.update(torch.tensor([2.0]).reshape(1, 1, 1, 1), torch.tensor([1.0]).reshape(1, 1, 1, 1))
    metrics = stats.compute()
    assert metrics["abs_err"] == pytest.approx((0.5 + 1 + 0 + 1) / 4)
    assert metrics["rel_err"] == pytest.approx((0.5 / 1.5 + 1 / 2 + 0 + 1 / 1) / 4)


def test_normal_metrics_over_two_batches() -> None:
    stats = NormalStats()
    target = _normals([0, 0, 0, 0])
    target[..., 3] = 0  # the 3rd prediction has no ground truth
    stats.update(_normals([5, 25, 90, 170]), target)
    stats.update(_normals([10, 20, 40]), _normals([0, 0, 0]))
    metrics = stats.compute()
    angles = [5, 25, 90, 10, 20, 40]
    assert metrics["mean_angle"] == pytest.approx(sum(angles) / 6, abs=1e-3)
    assert metrics["median_angle"] == pytest.approx((20 + 25) / 2, abs=0.01)
    assert metrics["within_11.25"] == pytest.approx(100 * 2 / 6)
    assert metrics["within_22.5"] == pytest.approx(100 * 3 / 6)
    assert metrics["within_30"] == pytest.approx(100 * 4 / 6)
    odd = NormalStats()
    odd.update(_normals([5, 10, 33.3]), _normals([0, 0, 0]))
    assert odd.compute()["median_angle"] == pytest.approx(10, abs=0.01)


def test_accumulator_returns_each_tasks_metrics(root: Path) -> None:
    problem = NYUv2(root=str(root), width=4, levels=2, batch_size=2)
    batch = problem.test_data.batch(torch.arange(4), torch.device("cpu"))
    label, depth, normal = batch.targets
    perfect = [
        torch.nn.functional.one_hot(label.clamp(min=0), 13).permute(0, 3, 1, 2).float(),
        depth,
        normal,
    ]
    accumulator = problem.metric_accumulator()
    assert isinstance(accumulator, NYUv2Metrics)
    accumulator.update(perfect, Batch(batch.inputs, batch.targets))
    segmentation, depth_metrics, normal_metrics = accumulator.compute()
    assert segmentation == {"miou": 1.0, "pixel_acc": 1.0}
    assert depth_metrics == {"abs_err": 0.0, "rel_err": 0.0}
    assert normal_metrics["mean_angle"] == pytest.approx(0, abs=0.05)
    assert normal_metrics["within_11.25"] == 100.0


def test_model_shapes_and_shared_layer() -> None:
    assert level_channels(64, 5) == [64, 128, 256, 512, 512]  # SegNet's encoder
    model = build_segnet(width=4, levels=3)
    with_parameters = [m for m in model.trunk.modules() if list(m.parameters(recurse=False))]
    assert model.shared_layer is with_parameters[-1].weight
    assert isinstance(with_parameters[-1], torch.nn.Conv2d)
    segmentation, depth, normal = model(torch.rand(2, 3, 18, 26))  # not a multiple of 2³
    assert segmentation.shape == (2, 13, 18, 26) and depth.shape == (2, 1, 18, 26)
    assert normal.shape == (2, 3, 18, 26)
    assert torch.allclose(normal.norm(dim=1), torch.ones(2, 18, 26), atol=1e-5)


def test_problem_description(root: Path) -> None:
    problem = NYUv2(root=str(root), width=4, levels=2, batch_size=2, max_test=3)
    assert problem.theoretical_initial_losses() == [math.log(13), None, None]
    assert problem.task_names == ["segmentation", "depth", "normal"]
    described = problem.describe()
    assert described["root"] == str(root) and described["width"] == 4
    assert described["train_samples"] == 6 and described["test_samples"] == 3
    assert (problem.batch_size, problem.eval_batch_size, problem.learning_rate) == (2, 8, 1e-4)


@pytest.mark.parametrize(
    "balancer",
    [
        StaticBalancer,
        lambda: GradNorm(alpha=1.5),
        lambda: GradNorm(alpha=1.5, initial_loss="theoretical"),
    ],
    ids=["static", "gradnorm", "gradnorm-theoretical"],
)
def test_training_runs_on_cpu(root: Path, balancer: Callable[[], object]) -> None:
    problem = NYUv2(root=str(root), width=4, levels=2, batch_size=2, eval_batch_size=3)
    result = train(problem, balancer(), Budget(steps=3), device="cpu")  # type: ignore[arg-type]
    assert result.status == "completed", result.error
    assert result.normalized_loss is not None and math.isfinite(result.normalized_loss)
    assert sum(result.weights_final) == pytest.approx(3)
    assert set(result.test_metrics[2]) == {
        "mean_angle",
        "median_angle",
        "within_11.25",
        "within_22.5",
        "within_30",
    }
