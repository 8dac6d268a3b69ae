"""The answer a study exists for: the static optimum against each adaptive configuration
(computed here; ``compare.py`` prints it).

Static arms (static, grid, random, optuna) are grouped by weighting; the static optimum is
chosen by the one rule of ``selection.py`` (on validation, among the weightings trained on
every seed; reported on test), and "the best α" of a balancer is chosen on validation too
(``chosen_on_validation``). Each adaptive configuration
(balancer, α) gets its converged weights (the time average ``E_t[w(t)]``, paper Sec. 5.3,
averaged over seeds), their L2 distance to the static optimum, its objective and gap, its
percentile rank among all static trials, the Spearman correlation between static trials'
objectives and their distance to the converged weights (the paper's Fig. 4), and paired
per-seed differences against equal weights and the static optimum (``PairedDifference``).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from gradsweep.arms import RETRAIN, STATIC_ARMS, TrialStatus, config_of, is_adaptive
from gradsweep.errors import GradsweepError
from gradsweep.results.pareto import ParetoView
from gradsweep.results.selection import (
    OptimumChoice,
    StaticBest,
    choose_static_optimum,
    static_best_of,
    static_groups,
)
from gradsweep.results.study import (
    Selection,
    StudyResults,
    belongs_to,
)
from gradsweep.spec import RETRAINED
from gradsweep.stats import t_cdf, t_quantile
from gradsweep.trainers.balancers.catalog import built_in

if TYPE_CHECKING:
    from gradsweep.results.verdicts import Verdicts

MIN_TRIALS_FOR_CORRELATION = 3


@dataclass(frozen=True)
class PairedDifference:
    """An adaptive configuration minus a static baseline, seed by seed (same seed: same
    initialisation and batch order), so seed-to-seed noise cancels.

    ``mean`` of the per-seed differences (negative: the adaptive run is better, as the
    objective is lower-is-better), its 95% Student-t interval ``[low, high]`` over the
    ``seeds`` both ran (n − 1 degrees of freedom; none with one seed), and ``wins``: seeds
    where the adaptive run was strictly better.
    """

    baseline: str  # "equal weights" or "static optimum"
    seeds: int
    mean: float
    low: float | None
    high: float | None
    wins: int


@dataclass(frozen=True)
class AdaptiveResult:
    config: str  # the trial key without its seed, e.g. "gradnorm/a=0.12", "dwa/t=2"
    balancer: str
    alpha: float | None
    seeds: int
    weights_mean: list[float]
    weights_final: list[float]
    objective: float
    objective_std: float | None
    selection_objective: float  # mean over seeds on the selection split (validation)
    gap_to_static_best: float
    distance_to_static_best: float
    rank_percentile: float
    spearman_objective_vs_distance: float | None
    spearman_p_value: float | None
    compute_seconds: float = 0.0
    retrain_objective: float | None = None
    retrain_objective_std: float | None = None
    retrain_trials: int = 0
    versus_equal: PairedDifference | None = None
    versus_static_best: PairedDifference | None = None
    # the best configuration of its balancer on validation (its "best α")
    chosen_on_validation: bool = False


@dataclass(frozen=True)
class Comparison:
    """Everything ``gradsweep compare`` shows; ``to_dict`` is its JSON."""

    study: str
    objective: str
    task_names: list[str]
    static_trials: int
    static_best: StaticBest
    equal_weights: StaticBest | None
    adaptive: list[AdaptiveResult]
    compute: dict[str, float]
    best_so_far: dict[str, list[tuple[float, float]]]
    notes: list[str] = field(default_factory=list)
    pareto: ParetoView | None = None
    # how it chose (split, checkpoint), what choosing on test would have picked, and the
    # weightings left out for running on fewer seeds than the study's
    selection: dict[str, str | None] = field(default_factory=dict)
    test_selected: StaticBest | None = None
    selection_optimism: float | None = None
    left_out_weightings: int = 0
    # each claim's verdict (results/verdicts.py), attached by results/answer.py
    verdicts: Verdicts | None = None

    @property
    def selection_split(self) -> str:
        """The split the study chose on (``test`` for one stored before validation)."""
        return str(self.selection.get("split") or "test")

    def distinct_test_pick(self) -> StaticBest | None:
        """The weighting choosing on test would have picked, where it is not the optimum
        (and the optimum was chosen on validation): the row the tables add."""
        picked = self.test_selected
        if picked is None or self.selection_split == "test":
            return None
        return None if picked.weights == self.static_best.weights else picked

    def to_dict(self) -> dict[str, Any]:
        data = asdict(replace(self, verdicts=None))
        del data["verdicts"]
        data["verdict"] = None if self.verdicts is None else self.verdicts.to_dict()
        data["best_so_far"] = {
            arm: [{"compute_seconds": c, "objective": b} for c, b in points]
            for arm, points in self.best_so_far.items()
        }
        return data


def std_or_none(values: pd.Series) -> float | None:
    return float(values.std(ddof=1)) if len(values) > 1 else None


def normalised(weights: np.ndarray) -> list[float]:
    """Scaled to sum to T (the number of tasks)."""
    return [float(w) for w in weights * len(weights) / weights.sum()]


def equal_weights_row(groups: pd.DataFrame, static: pd.DataFrame) -> StaticBest | None:
    equal = groups[groups["weighting"].map(lambda w: max(w) - min(w) < 1e-9)]
    return static_best_of(equal.iloc[0], static) if len(equal) else None


def correlation(static: pd.DataFrame, weights: np.ndarray) -> tuple[float | None, float | None]:
    """Spearman ρ of static trials' objective against their L2 distance to ``weights``."""
    if len(static) < MIN_TRIALS_FOR_CORRELATION:
        return None, None
    points = np.array(static["static_weights"].tolist(), dtype=float)
    distances = np.linalg.norm(points - weights, axis=1)
    if len(np.unique(distances)) < 2 or static["objective"].nunique() < 2:
        return None, None
    return spearman(static["objective"].to_numpy(dtype=float), distances)


def spearman(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Spearman's ρ (Pearson's r of average ranks) and its two-sided p-value from the
    t-distribution with n − 2 degrees of freedom, as scipy.stats.spearmanr computes them."""
    ranks_x = pd.Series(x).rank().to_numpy()
    ranks_y = pd.Series(y).rank().to_numpy()
    rho = float(np.corrcoef(ranks_x, ranks_y)[0, 1])
    n = len(x)
    if abs(rho) >= 1.0:
        return rho, 0.0
    t = rho * np.sqrt((n - 2) / (1.0 - rho * rho))
    return rho, float(2.0 * t_cdf(-abs(t), n - 2))


def by_seed(trials: pd.DataFrame) -> dict[int, float]:
    """Each seed's objective (one trial per seed)."""
    pairs = zip(trials["seed"], trials["objective"], strict=True)
    return {int(seed): float(objective) for seed, objective in pairs}


def paired_difference(
    runs: pd.DataFrame, baseline: dict[int, float], name: str
) -> PairedDifference | None:
    """``runs`` minus ``baseline`` on the seeds both have (None when they share none)."""
    ours = by_seed(runs)
    seeds = sorted(set(ours) & set(baseline))
    if not seeds:
        return None
    differences = np.array([ours[s] - baseline[s] for s in seeds])
    mean = float(differences.mean())
    low = high = None
    if len(seeds) > 1:
        half = float(
            t_quantile(0.975, len(seeds) - 1) * differences.std(ddof=1) / np.sqrt(len(seeds))
        )
        low, high = mean - half, mean + half
    return PairedDifference(name, len(seeds), mean, low, high, int((differences < 0).sum()))


def adaptive_result(
    config: str,
    runs: pd.DataFrame,
    static: pd.DataFrame,
    best: StaticBest,
    retrain: pd.DataFrame,
    equal: StaticBest | None,
) -> AdaptiveResult:
    balancer = str(runs["balancer"].iloc[0])
    alpha = None if pd.isna(runs["alpha"].iloc[0]) else float(runs["alpha"].iloc[0])
    weights_mean = np.mean(np.array(runs["weights_mean"].tolist(), dtype=float), axis=0)
    weights_final = np.mean(np.array(runs["weights_final"].tolist(), dtype=float), axis=0)
    objective = float(runs["objective"].mean())
    selection_objective = float(runs["selection_objective"].mean())
    rho, p_value = correlation(static, weights_mean)
    # the retrain arm is static training at GradNorm's time-averaged weights
    retrained = retrain[retrain["alpha"] == alpha] if balancer == RETRAINED else retrain[:0]
    return AdaptiveResult(
        config=config,
        balancer=balancer,
        alpha=alpha,
        seeds=len(runs),
        weights_mean=normalised(weights_mean),
        weights_final=normalised(weights_final),
        objective=objective,
        objective_std=std_or_none(runs["objective"]),
        selection_objective=selection_objective,
        gap_to_static_best=objective - best.objective,
        distance_to_static_best=float(np.linalg.norm(weights_mean - np.array(best.weights))),
        rank_percentile=100.0 * float((static["objective"] > objective).mean()),
        spearman_objective_vs_distance=rho,
        spearman_p_value=p_value,
        compute_seconds=float(runs["train_seconds"].fillna(0.0).sum()),
        retrain_objective=float(retrained["objective"].mean()) if len(retrained) else None,
        retrain_objective_std=std_or_none(retrained["objective"]) if len(retrained) else None,
        retrain_trials=len(retrained),
        versus_equal=None
        if equal is None
        else paired_difference(runs, by_seed(members(static, equal)), "equal weights"),
        versus_static_best=paired_difference(
            runs, by_seed(members(static, best)), "static optimum"
        ),
    )


def members(static: pd.DataFrame, group: StaticBest) -> pd.DataFrame:
    """The trials of one static weighting (one per seed, bar Optuna's)."""
    return static[static["key"].isin(group.keys)].drop_duplicates("seed")


def best_so_far(trials: pd.DataFrame) -> dict[str, list[tuple[float, float]]]:
    """Per arm: (cumulative training seconds, the test objective of the trial best so far
    on the selection split) at every change of that trial and at the arm's end, in
    finishing order: the search is followed by validation, as it chooses."""
    curves: dict[str, list[tuple[float, float]]] = {}
    ordered = trials.sort_values("finished_at")
    arms = set(ordered["arm"])
    if "also_arms" in ordered.columns:
        arms |= {a for others in ordered["also_arms"] if isinstance(others, list) for a in others}
    for arm in sorted(arms):
        runs = ordered[belongs_to(ordered, arm)]
        compute = runs["train_seconds"].fillna(0.0).cumsum().to_numpy()
        chosen_by = runs["selection_objective"].to_numpy(dtype=float)
        leader = leaders(chosen_by)
        best = runs["objective"].to_numpy(dtype=float)[leader]
        keep = np.r_[True, leader[1:] != leader[:-1]]
        keep[-1] = True
        curves[str(arm)] = [
            (float(c), float(b)) for c, b in zip(compute[keep], best[keep], strict=True)
        ]
    return curves


def best_so_far_label(split: str, objective: str = "objective") -> str:
    """The words every reader puts on ``best_so_far``'s values (compare's compute table,
    the dashboard's and the report's figure): one trial's test score, that of the trial
    best on the selection split, never "the best objective" (the lowest test score, a
    choice made on test) nor the static optimum (a weighting over every seed)."""
    return f"best on {split} (its test {objective})"


def leaders(values: np.ndarray) -> np.ndarray:
    """At each position, the index of the lowest value so far (the earliest on a tie)."""
    leader = np.zeros(len(values), dtype=int)
    for i in range(1, len(values)):
        leader[i] = i if values[i] < values[leader[i - 1]] else leader[i - 1]
    return leader


def mark_chosen(results: list[AdaptiveResult]) -> list[AdaptiveResult]:
    """Each balancer's configuration with the best mean selection objective (its best α,
    temperature …), chosen on validation like the static optimum; a balancer with one
    configuration has nothing to choose."""
    best: dict[str, AdaptiveResult] = {}
    counts = Counter(result.balancer for result in results)
    for result in results:
        held = best.get(result.balancer)
        if held is None or result.selection_objective < held.selection_objective:
            best[result.balancer] = result
    return [
        replace(r, chosen_on_validation=counts[r.balancer] > 1 and best[r.balancer] is r)
        for r in results
    ]


def compare_trials(
    study: str,
    objective: str,
    task_names: list[str],
    trials: pd.DataFrame,
    seeds: int = 0,
    selection: Selection | None = None,
) -> Comparison:
    """The comparison, from a study's scored trials (``StudyResults.trials``) and its
    number of seeds (0: the most any static weighting ran on)."""
    done = trials[(trials["status"] == TrialStatus.COMPLETED) & trials["objective"].notna()]
    done = done[
        np.isfinite(done["objective"].astype(float))
        & np.isfinite(done["selection_objective"].astype(float))
    ]
    static = done[done["arm"].isin(STATIC_ARMS)]
    choice = choose_static_optimum(static, seeds)
    if choice is None:
        raise GradsweepError(
            f"study {study!r} has no completed static-weight trial to compare against"
        )
    adaptive = done[done["balancer"].map(is_adaptive).astype(bool)]
    if adaptive.empty:
        raise GradsweepError(f"study {study!r} has no completed adaptive (e.g. GradNorm) trial")
    best = choice.optimum
    equal = equal_weights_row(static_groups(static), static)
    retrain = done[done["arm"] == RETRAIN]
    configs = adaptive["key"].map(config_of)
    results = mark_chosen(
        [
            adaptive_result(str(config), runs, static, best, retrain, equal)
            for config, runs in adaptive.groupby(configs, sort=False)
        ]
    )
    order = {name: i for i, name in enumerate(built_in())}  # a user's balancers after
    results.sort(key=lambda r: (order.get(r.balancer, len(order)), r.balancer, r.config))
    notes = selection_notes(choice, selection)
    if len(static) < MIN_TRIALS_FOR_CORRELATION:
        notes.append(
            f"only {len(static)} static trials: no correlation computed "
            f"(needs {MIN_TRIALS_FOR_CORRELATION})"
        )
    if best.trials < 2:
        notes.append("the static optimum has one trial: no spread over seeds")
    return Comparison(
        study=study,
        objective=objective,
        task_names=task_names,
        static_trials=len(static),
        static_best=best,
        equal_weights=equal,
        adaptive=results,
        compute={
            str(arm): float(s) for arm, s in trials.groupby("arm")["train_seconds"].sum().items()
        },
        best_so_far=best_so_far(done),
        notes=notes,
        selection=(selection or Selection.on_test()).to_dict(),
        test_selected=choice.test_pick,
        selection_optimism=choice.selection_optimism,
        left_out_weightings=choice.left_out,
    )


def selection_notes(choice: OptimumChoice, selection: Selection | None) -> list[str]:
    """What the reader must know about how the optimum was chosen."""
    notes = [] if selection is None or selection.note is None else [selection.note]
    if choice.left_out:
        notes.append(
            f"{choice.left_out} static weighting(s) trained on fewer than {choice.seeds} seeds "
            "left out of the static optimum"
        )
    return notes


def comparison_of(results: StudyResults) -> Comparison:
    """The comparison of a loaded study (without its Pareto view and verdicts, which
    ``results/answer.py`` adds)."""
    if results.scoring_error is not None:
        raise GradsweepError(results.scoring_error)
    return compare_trials(
        results.name,
        str(results.objective),
        results.task_names,
        results.trials,
        len(results.seeds),
        results.selection,
    )
