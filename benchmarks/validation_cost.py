"""What the validation split costs: ``configs/toy-demo.yaml`` with validation against without.

Every evaluation now runs on validation as well as on test. "Without" is the same study on
the same toy data with a one-example validation split (``ToyWithoutValidation``: its
training and test data are the toy's own, so only the extra evaluation differs), both
launched on a fresh local Ray with SQLite, ``--repeats`` times each, alternating; the
figure is the ratio of median study wall times.

    python -m benchmarks.validation_cost [--repeats 3] [--no-write]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import ray
import yaml

from benchmarks._results import (
    command_line,
    machine,
    markdown_table,
    start_local_ray,
    targets,
    update_section,
    verdict,
)
from gradsweep.search.launch import LaunchOptions, launch
from gradsweep.spec import load_spec
from gradsweep.storage import queries
from gradsweep.storage.engine import open_engine
from gradsweep.trainers.problems.base import TensorData
from gradsweep.trainers.problems.toy import ToyRegression

DEMO = Path(__file__).resolve().parent.parent / "configs" / "toy-demo.yaml"
TARGET = 1.10
WITHOUT = "benchmarks.validation_cost:ToyWithoutValidation"


class ToyWithoutValidation(ToyRegression):
    """The toy with its training and test data, and a validation split of one example:
    the study as it ran before validation existed, to the cost of one example."""

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self.val_data = TensorData(
            self.test_data.inputs[:1], tuple(t[:1] for t in self.test_data.targets)
        )


def spec_file(folder: Path, with_validation: bool) -> Path:
    spec = yaml.safe_load(DEMO.read_text())
    if not with_validation:
        spec["problem"]["name"] = WITHOUT
    path = folder / f"demo-{with_validation}.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def run_once(with_validation: bool) -> tuple[float, float, int]:
    """One study on a fresh local Ray: wall seconds, Σ train seconds, completed trials."""
    with tempfile.TemporaryDirectory() as folder:
        spec = load_spec(spec_file(Path(folder), with_validation))
        engine = open_engine(f"sqlite:///{folder}/demo.db")
        start_local_ray(2)
        started = time.perf_counter()
        outcome = launch(spec, engine, LaunchOptions(quiet=True))
        wall = time.perf_counter() - started
        ray.shutdown()
        trials = queries.trials(engine, study=spec.study)
    return wall, float(trials["train_seconds"].sum()), outcome.completed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    runs: dict[bool, list[tuple[float, float, int]]] = {True: [], False: []}
    for _ in range(args.repeats):
        for with_validation in (False, True):
            runs[with_validation].append(run_once(with_validation))
    rows, medians = [], {}
    for with_validation, label in ((False, "without validation"), (True, "with validation")):
        walls = [wall for wall, _, _ in runs[with_validation]]
        trains = [train for _, train, _ in runs[with_validation]]
        medians[with_validation] = (statistics.median(walls), statistics.median(trains))
        rows.append(
            [
                label,
                str(runs[with_validation][0][2]),
                ", ".join(f"{w:.1f}" for w in walls),
                f"{medians[with_validation][0]:.1f}",
                f"{medians[with_validation][1]:.1f}",
            ]
        )
    wall_ratio = medians[True][0] / medians[False][0]
    train_ratio = medians[True][1] / medians[False][1]
    header = ["study", "trials", "wall s (each run)", "median wall s", "median Σ train s"]
    table = markdown_table(header, rows)
    print(table)
    print(f"wall ratio {wall_ratio:.3f}, train ratio {train_ratio:.3f}")
    if args.no_write:
        return
    update_section(
        "Validation split cost (toy-demo)",
        "`configs/toy-demo.yaml` (31 trials, every arm, local Ray, SQLite, packed as `pack: "
        "auto` packs it) with its validation split (1,000 examples, evaluated beside the "
        "1,000 test examples at every evaluation) against the same study with a one-example "
        f"validation split, {args.repeats} runs each, alternating. Σ train s counts the "
        "training loops (steps and evaluations), where the extra evaluation lands; wall time "
        "adds Ray's scheduling and the driver.\n\n"
        f"Machine: {machine()}\n\nCommand: `{command_line('benchmarks.validation_cost')}`\n\n"
        f"{table}\n\nΣ train seconds with / without: {train_ratio:.3f}×.\n\n"
        + targets(
            [verdict("study wall time with / without validation", wall_ratio, TARGET, False, "×")]
        ),
    )


if __name__ == "__main__":
    main()
