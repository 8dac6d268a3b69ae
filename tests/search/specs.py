"""Tiny study specs for the search tests: trials of a fraction of a second."""

from __future__ import annotations

from pathlib import Path

import yaml

TINY_TOY = {
    "tasks": 3,
    "sigmas": [1, 10, 100],
    "train_samples": 400,
    "test_samples": 100,
    "batch_size": 50,
}


def write_spec(directory: Path, name: str, **overrides: object) -> Path:
    spec: dict[str, object] = {
        "study": name,
        "problem": {"name": "toy", "params": dict(TINY_TOY)},
        "budget": {"steps": 40, "trace_every": 5},
        "seeds": [0],
        "arms": {
            "static": {"weights": [[1, 1, 1]]},
            "grid": {"resolution": 2},
            "random": {"n": 2, "seed": 0},
            "optuna": {"n_trials": 3, "sampler": "tpe", "seed": 0},
            "gradnorm": {"alphas": [0.12]},
            "retrain": {"alpha": 0.12},
        },
        "max_concurrent": 2,
    }
    spec.update(overrides)
    path = directory / f"{name}.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path
