"""The one selection rule every reader uses: the static optimum chosen on validation from
the weightings trained on every seed, reported on test.

Choosing the best of many noisy estimates on the data it is then scored on flatters the
winner (the winner's curse), and a weighting run on one seed competes with means over
several. So: among the static weightings trained on every seed of the study, the optimum
is the one with the best mean ``selection_objective`` (validation); it is reported with its
mean ``objective`` (test) and a 95 % Student-t interval over its seeds. A weighting with
fewer seeds is never the optimum (``left_out`` counts them). Beside it, the weighting that
selection on test would pick among the same candidates, and the difference of their test
means: the selection optimism.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from gradsweep.results.study import StudyResults
from gradsweep.stats import t_quantile


@dataclass(frozen=True)
class StaticBest:
    """One static weighting over its seeds: its test objective (mean, sample std and 95 %
    interval over seeds, none with one seed), its mean selection objective (validation), and
    its trials."""

    weights: list[float]
    objective: float
    objective_std: float | None
    trials: int
    keys: list[str]
    selection_objective: float | None = None
    low: float | None = None
    high: float | None = None


@dataclass(frozen=True)
class OptimumChoice:
    """The static optimum and what selecting on test would have picked instead."""

    optimum: StaticBest
    test_pick: StaticBest
    eligible: int  # weightings trained on every seed: the candidates
    left_out: int  # weightings trained on fewer seeds: never the optimum
    seeds: int  # the seeds a candidate ran on

    @property
    def selection_optimism(self) -> float:
        """How much better the test pick's test score looks than the optimum's (≥ 0 for a
        lower-is-better objective): what choosing on test would have flattered."""
        return self.optimum.objective - self.test_pick.objective


def weighting_points(static: pd.DataFrame) -> np.ndarray:
    """Each static trial's weights, rounded so a weighting's seeds group together."""
    return np.round(np.array(static["static_weights"].tolist(), dtype=float), 9)


def static_groups(static: pd.DataFrame) -> pd.DataFrame:
    """One row per static weighting: mean and sample std of the test objective over its
    trials, the mean selection objective, its trial and distinct-seed counts. Vectorised:
    studies can hold tens of thousands of static trials."""
    unique, inverse, counts = np.unique(
        weighting_points(static), axis=0, return_inverse=True, return_counts=True
    )
    inverse = inverse.reshape(-1)
    objective = static["objective"].to_numpy(dtype=float)
    chosen_by = static["selection_objective"].to_numpy(dtype=float)
    means = np.bincount(inverse, objective) / counts
    squares = np.bincount(inverse, (objective - means[inverse]) ** 2)
    with np.errstate(invalid="ignore", divide="ignore"):
        std = np.where(counts > 1, np.sqrt(squares / (counts - 1)), np.nan)
    seeds = pd.Series(static["seed"].to_numpy()).groupby(inverse).nunique()
    return pd.DataFrame(
        {
            "weighting": list(map(tuple, unique.tolist())),
            "objective": means,
            "objective_std": std,
            "selection_objective": np.bincount(inverse, chosen_by) / counts,
            "trials": counts,
            "seeds": seeds.reindex(range(len(unique))).to_numpy(),
        }
    )


def interval(mean: float, std: float | None, n: int) -> tuple[float | None, float | None]:
    """The 95 % Student-t interval of a mean over ``n`` seeds (none with one)."""
    if n < 2 or std is None:
        return None, None
    half = float(t_quantile(0.975, n - 1) * std / np.sqrt(n))
    return mean - half, mean + half


def static_best_of(row: pd.Series, static: pd.DataFrame) -> StaticBest:
    std = None if pd.isna(row["objective_std"]) else float(row["objective_std"])
    members = static[np.all(weighting_points(static) == np.array(row["weighting"]), axis=1)]
    low, high = interval(float(row["objective"]), std, int(row["trials"]))
    chosen_by = row["selection_objective"]
    return StaticBest(
        weights=[float(w) for w in row["weighting"]],
        objective=float(row["objective"]),
        objective_std=std,
        trials=int(row["trials"]),
        keys=members["key"].tolist(),
        selection_objective=None if pd.isna(chosen_by) else float(chosen_by),
        low=low,
        high=high,
    )


def choose_static_optimum(static: pd.DataFrame, seeds: int) -> OptimumChoice | None:
    """The rule, on the scored static trials of a study with ``seeds`` seeds (None without
    any). When no weighting has run on every seed yet (a study still running), the
    candidates are those with the most seeds."""
    if static.empty:
        return None
    groups = static_groups(static)
    most = int(groups["seeds"].max())
    needed = min(seeds, most) if seeds else most
    eligible = groups[groups["seeds"] >= needed]
    optimum = eligible.loc[eligible["selection_objective"].idxmin()]
    test_pick = eligible.loc[eligible["objective"].idxmin()]
    return OptimumChoice(
        optimum=static_best_of(optimum, static),
        test_pick=static_best_of(test_pick, static),
        eligible=len(eligible),
        left_out=len(groups) - len(eligible),
        seeds=needed,
    )


def study_optimum(results: StudyResults) -> OptimumChoice | None:
    """The static optimum of a loaded study (None before any static trial is scored)."""
    return choose_static_optimum(results.static(), len(results.seeds))
