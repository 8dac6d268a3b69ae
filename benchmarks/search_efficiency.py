"""How much of the machine a study keeps busy: a 24-trial toy study at 2 concurrent trials.

busy fraction = Σ trial training seconds / (wall seconds × concurrent trials); the rest is
Ray Tune's scheduling, actor start-up, per-trial problem setup and result recording.

    python -m benchmarks.search_efficiency [--steps 1500,3000] [--no-write]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

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

CONCURRENT = 2


def spec_file(folder: Path, steps: int) -> Path:
    """24 trials: the grid at R=4 without vertices (12 points) × 2 seeds."""
    spec = {
        "study": "efficiency",
        "problem": {"name": "toy", "params": {"tasks": 3, "sigmas": [1, 10, 100]}},
        "budget": {"steps": steps, "trace_every": 10},
        "seeds": [0, 1],
        "arms": {"grid": {"resolution": 4}},
        "resources": {"pack": 1},  # Ray's cost per trial is the subject: one trial each
        "max_concurrent": CONCURRENT,
    }
    path = folder / "efficiency.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def measure(steps: int) -> list[str]:
    """One study on a fresh local Ray; returns the table row."""
    with tempfile.TemporaryDirectory() as folder:
        spec = load_spec(spec_file(Path(folder), steps))
        engine = open_engine(f"sqlite:///{folder}/efficiency.db")
        started = time.perf_counter()
        start_local_ray(CONCURRENT)
        ray_start = time.perf_counter() - started
        started = time.perf_counter()
        outcome = launch(spec, engine, LaunchOptions(quiet=True))
        wall = time.perf_counter() - started
        ray.shutdown()
        trials = queries.trials(engine, study="efficiency")
    busy = trials["train_seconds"].sum()
    count = len(trials)
    return [
        str(steps),
        str(count),
        f"{outcome.completed}",
        f"{trials['train_seconds'].mean():.2f}",
        f"{wall:.1f}",
        f"{ray_start:.1f}",
        f"{busy / (wall * CONCURRENT):.3f}",
        f"{(wall * CONCURRENT - busy) / count:.2f}",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", default="1500,3000", help="steps per trial, comma-separated")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    rows = [measure(int(steps)) for steps in args.steps.split(",")]
    header = [
        "steps / trial",
        "trials",
        "completed",
        "mean train s / trial",
        "study wall s",
        "Ray start s",
        "busy fraction",
        "overhead s / trial slot",
    ]
    table = markdown_table(header, rows)
    print(table)
    if args.no_write:
        return
    command = command_line("benchmarks.search_efficiency")
    update_section(
        "Search efficiency (Ray Tune)",
        f"A 24-trial study (toy T=3, 20k samples, grid arm R=4 without vertices, 2 seeds, "
        f"unpacked: `pack: 1`) at "
        f"{CONCURRENT} concurrent trials on local Ray, SQLite results, for two trial lengths. "
        "Wall time counts `launch` from planning to the last write; Ray's own start is shown "
        "apart. Overhead per trial slot = (wall × 2 − Σ train seconds) / trials: Tune's "
        "scheduling and actor reuse, per-worker problem setup (the data is built once per "
        "reused worker), the driver's recording, and the driver and Ray's own processes "
        f"sharing the 2 cores with the trials.\n\nMachine: {machine()}\n\n"
        f"Command: `{command}`\n\n{table}\n\n"
        + targets(
            [
                verdict(f"busy fraction at {row[0]} steps a trial", float(row[6]), 0.90, True)
                for row in rows
            ]
        ),
    )


if __name__ == "__main__":
    main()
