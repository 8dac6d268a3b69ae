"""The answer a study exists for: the static optimum against each adaptive configuration.

Static arms (static, grid, random, optuna) are grouped by weighting; the static optimum is
the weighting with the best mean objective over seeds. Each adaptive configuration
(balancer, α) gets its converged weights (the time average ``E_t[w(t)]``, paper Sec. 5.3,
averaged over seeds), their L2 distance to the static optimum, its objective and gap, its
percentile rank among all static trials, the Spearman correlation between static trials'
objectives and their distance to the converged weights (the paper's Fig. 4), and paired
per-seed differences against equal weights and the static optimum (``PairedDifference``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Engine

from gradsweep.arms import RETRAIN, STATIC_ARMS, TrialStatus, config_of, is_adaptive
from gradsweep.errors import GradsweepError
from gradsweep.objectives import LABELS
from gradsweep.results.pareto import ParetoView, study_pareto
from gradsweep.results.study import StudyResults, belongs_to, collector_paused, load_results
from gradsweep.spec import RETRAINED
from gradsweep.stats import t_cdf, t_quantile
from gradsweep.trainers.balancers.catalog import built_in

MIN_TRIALS_FOR_CORRELATION = 3
MAX_FRONT_ROWS = 20


@dataclass(frozen=True)
class StaticBest:
    weights: list[float]
    objective: float
    objective_std: float | None
    trials: int
    keys: list[str]


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

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["best_so_far"] = {
            arm: [{"compute_seconds": c, "best_objective": b} for c, b in points]
            for arm, points in self.best_so_far.items()
        }
        return data


def std_or_none(values: pd.Series) -> float | None:
    return float(values.std(ddof=1)) if len(values) > 1 else None


def normalised(weights: np.ndarray) -> list[float]:
    """Scaled to sum to T (the number of tasks)."""
    return [float(w) for w in weights * len(weights) / weights.sum()]


def static_groups(static: pd.DataFrame) -> pd.DataFrame:
    """One row per static weighting: mean and spread (sample std) of the objective over its
    seeds. Vectorised: studies can hold tens of thousands of static trials."""
    points = np.round(np.array(static["static_weights"].tolist(), dtype=float), 9)
    unique, inverse, counts = np.unique(points, axis=0, return_inverse=True, return_counts=True)
    inverse = inverse.reshape(-1)
    objective = static["objective"].to_numpy(dtype=float)
    means = np.bincount(inverse, objective) / counts
    squares = np.bincount(inverse, (objective - means[inverse]) ** 2)
    with np.errstate(invalid="ignore", divide="ignore"):
        std = np.where(counts > 1, np.sqrt(squares / (counts - 1)), np.nan)
    return pd.DataFrame(
        {
            "weighting": list(map(tuple, unique.tolist())),
            "objective": means,
            "objective_std": std,
            "trials": counts,
        }
    )


def summarise(row: pd.Series, static: pd.DataFrame) -> StaticBest:
    std = row["objective_std"]
    points = np.array(static["static_weights"].tolist(), dtype=float)
    members = static[np.all(np.round(points, 9) == np.array(row["weighting"]), axis=1)]
    return StaticBest(
        weights=[float(w) for w in row["weighting"]],
        objective=float(row["objective"]),
        objective_std=None if pd.isna(std) else float(std),
        trials=int(row["trials"]),
        keys=members["key"].tolist(),
    )


def equal_weights_row(groups: pd.DataFrame, static: pd.DataFrame) -> StaticBest | None:
    equal = groups[groups["weighting"].map(lambda w: max(w) - min(w) < 1e-9)]
    return summarise(equal.iloc[0], static) if len(equal) else None


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
    """Per arm: (cumulative training seconds, best objective so far) at every improvement
    and at the arm's end, in finishing order."""
    curves: dict[str, list[tuple[float, float]]] = {}
    ordered = trials.sort_values("finished_at")
    arms = set(ordered["arm"])
    if "also_arms" in ordered.columns:
        arms |= {a for others in ordered["also_arms"] if isinstance(others, list) for a in others}
    for arm in sorted(arms):
        runs = ordered[belongs_to(ordered, arm)]
        compute = runs["train_seconds"].fillna(0.0).cumsum().to_numpy()
        best = runs["objective"].cummin().to_numpy()
        keep = np.r_[True, best[1:] < best[:-1]]
        keep[-1] = True
        curves[str(arm)] = [
            (float(c), float(b)) for c, b in zip(compute[keep], best[keep], strict=True)
        ]
    return curves


def compare_trials(
    study: str, objective: str, task_names: list[str], trials: pd.DataFrame
) -> Comparison:
    """The comparison, from a study's trials (a ``queries.trials`` frame)."""
    done = trials[(trials["status"] == TrialStatus.COMPLETED) & trials["objective"].notna()]
    done = done[np.isfinite(done["objective"].astype(float))]
    static = done[done["arm"].isin(STATIC_ARMS)]
    if static.empty:
        raise GradsweepError(
            f"study {study!r} has no completed static-weight trial to compare against"
        )
    adaptive = done[done["balancer"].map(is_adaptive).astype(bool)]
    if adaptive.empty:
        raise GradsweepError(f"study {study!r} has no completed adaptive (e.g. GradNorm) trial")
    groups = static_groups(static)
    best = summarise(groups.loc[groups["objective"].idxmin()], static)
    equal = equal_weights_row(groups, static)
    retrain = done[done["arm"] == RETRAIN]
    configs = adaptive["key"].map(config_of)
    results = [
        adaptive_result(str(config), runs, static, best, retrain, equal)
        for config, runs in adaptive.groupby(configs, sort=False)
    ]
    order = {name: i for i, name in enumerate(built_in())}  # a user's balancers after
    results.sort(key=lambda r: (order.get(r.balancer, len(order)), r.balancer, r.config))
    notes = []
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
    )


def compare_results(results: StudyResults) -> Comparison:
    """The comparison of a loaded study, with its Pareto view."""
    if results.scoring_error is not None:
        raise GradsweepError(results.scoring_error)
    comparison = compare_trials(
        results.name, str(results.objective), results.task_names, results.trials
    )
    return replace(comparison, pareto=study_pareto(results))


def compare_study(engine: Engine, study: str | int, store: bool = False) -> Comparison:
    """Compare a stored study; ``store`` also saves the result in ``gs_comparisons``."""
    with collector_paused():
        results = load_results(engine, study)
        comparison = compare_results(results)
    if store:
        from gradsweep.storage.writer import ResultsWriter

        ResultsWriter(engine).save_comparison(results.id, comparison.to_dict())
    return comparison


def format_value(value: float | None, spread: float | None = None) -> str:
    """``mean ± std`` (the spread over seeds, where there is one); ``–`` for no value.
    The CLI's tables and the dashboard's comparison table show numbers this way."""
    if value is None:
        return "–"
    return f"{value:.4f}" if spread is None else f"{value:.4f} ± {spread:.4f}"


def format_paired(paired: PairedDifference | None) -> str:
    """``−0.0120 [−0.0310, +0.0070]; 2/3 seeds``: the mean per-seed difference (negative:
    the adaptive run is better), its 95% interval, and the seeds it won."""
    if paired is None:
        return "–"
    interval = "" if paired.low is None else f" [{paired.low:+.4f}, {paired.high:+.4f}]"
    return f"{paired.mean:+.4f}{interval}; {paired.wins}/{paired.seeds} seeds"


def format_weights(weights: list[float]) -> str:
    """``1.500, 0.500``: a weighting as the comparison tables show it."""
    return ", ".join(f"{w:.3f}" for w in weights)


def comparison_tables(comparison: Comparison) -> list[Any]:
    """Rich renderables: the static optimum, the adaptive configurations, compute per arm."""
    from rich.table import Table

    best = comparison.static_best
    head = Table(
        title=f"{comparison.study}: static optimum over {comparison.static_trials} "
        f"static trials ({LABELS.get(comparison.objective, comparison.objective)}, "
        "lower is better)"
    )
    for column in ("", "weights", "objective", "trials"):
        head.add_column(column)
    head.add_row(
        "static optimum",
        format_weights(best.weights),
        format_value(best.objective, best.objective_std),
        str(best.trials),
    )
    if comparison.equal_weights is not None:
        eq = comparison.equal_weights
        head.add_row(
            "equal weights",
            format_weights(eq.weights),
            format_value(eq.objective, eq.objective_std),
            str(eq.trials),
        )
    body = Table(title="adaptive configurations against the static optimum")
    body.add_column("")
    for a in comparison.adaptive:
        body.add_column(a.config, justify="right")
    rows = {
        "seeds": [str(a.seeds) for a in comparison.adaptive],
        "time-averaged w (Σ = T)": [format_weights(a.weights_mean) for a in comparison.adaptive],
        "final w": [format_weights(a.weights_final) for a in comparison.adaptive],
        "objective": [format_value(a.objective, a.objective_std) for a in comparison.adaptive],
        "gap to static optimum": [f"{a.gap_to_static_best:+.4f}" for a in comparison.adaptive],
        "L2 distance to it": [f"{a.distance_to_static_best:.3f}" for a in comparison.adaptive],
        "static trials beaten %": [f"{a.rank_percentile:.1f}" for a in comparison.adaptive],
        "vs equal weights, paired (95% CI; wins)": [
            format_paired(a.versus_equal) for a in comparison.adaptive
        ],
        "vs static optimum, paired (95% CI; wins)": [
            format_paired(a.versus_static_best) for a in comparison.adaptive
        ],
        "Spearman ρ (objective, distance)": [
            format_value(a.spearman_objective_vs_distance) for a in comparison.adaptive
        ],
        "training seconds (all seeds)": [f"{a.compute_seconds:.1f}" for a in comparison.adaptive],
        "retrained static (GradNorm Static)": [
            format_value(a.retrain_objective, a.retrain_objective_std) for a in comparison.adaptive
        ],
    }
    for label, values in rows.items():
        body.add_row(label, *values)
    tables: list[Any] = [head, body]
    if comparison.pareto is not None:
        tables.extend(pareto_tables(comparison.pareto, comparison.task_names))
    compute = Table(title="compute per arm (training seconds)")
    compute.add_column("arm")
    compute.add_column("seconds", justify="right")
    compute.add_column("best objective", justify="right")
    for arm, seconds in comparison.compute.items():
        points = comparison.best_so_far.get(arm)
        compute.add_row(arm, f"{seconds:.1f}", format_value(points[-1][1]) if points else "–")
    return [*tables, compute, *comparison.notes]


def pareto_tables(pareto: ParetoView, task_names: list[str]) -> list[Any]:
    """The adaptive configurations against the static front, and the front itself."""
    from rich.table import Table

    placed = Table(
        title=f"Pareto view: each task's {pareto.value_name}; static front of "
        f"{len(pareto.front)} of {pareto.static_points} static weightings"
    )
    for column in ("", *task_names, "on front", "dominated by", "ε"):
        placed.add_column(column, justify="left" if not column else "right")
    for config, p in pareto.adaptive.items():
        placed.add_row(
            config,
            *(f"{v:.4f}" for v in p.task_values),
            "yes" if p.on_front else "no",
            str(p.dominated_by),
            f"{p.epsilon:.4f}",
        )
    front = Table(title="static front (weights: per-task values)")
    front.add_column("weights")
    for name in task_names:
        front.add_column(name, justify="right")
    for point in pareto.front[:MAX_FRONT_ROWS]:
        front.add_row(format_weights(point.weights), *(f"{v:.4f}" for v in point.task_values))
    if len(pareto.front) > MAX_FRONT_ROWS:
        front.caption = f"{len(pareto.front) - MAX_FRONT_ROWS} more in --format json"
    return [placed, front]
