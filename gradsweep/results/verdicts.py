"""The verdict on each of GradNorm's claims, computed: confirmed, refuted or inconclusive,
with the figures behind it, warnings where the data cannot carry it, and its robustness.

For GradNorm and every other adaptive method (its configuration chosen on validation, the
comparison's "best α"), against the static optimum of ``selection.py``:

- C1 beats equal weights: the paired per-seed difference's 95 % interval lies below 0
  (confirmed), above 0 (refuted), or holds 0 (inconclusive).
- C2 matches the static optimum: non-inferiority with the margin ``MARGINS`` (docs/results.md
  justifies it): the interval lies below +margin (confirmed) or above it (refuted).
- C3 beats the static weightings: it beats every weighting's mean (confirmed), or the best
  weighting on test beats it with a paired interval above 0 (refuted).
- C4 nearer is better (Fig. 4): Spearman ρ of static trials' objective against their
  distance to its weights, positive (confirmed) or negative (refuted) with p < 0.05.
- C5 GradNorm Static ≈ GradNorm: the retrain arm minus GradNorm, paired; equivalent within
  the margin (confirmed), or outside it (refuted).
- C6 compute: the method's training seconds, all its configurations on all seeds (its α
  search included), under the static search's (confirmed) or not (refuted).

Robustness recomputes each verdict from data the study holds: at every evaluation step
(every trial scored as if it had stopped there), on every coarser sub-grid of the study's
grid, and with each seed left out. A verdict is robust where all of them agree.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field, replace
from functools import partial
from typing import Any

import numpy as np
import pandas as pd

from gradsweep.arms import (
    STATIC_ARMS,
    ArmKind,
    Claim,
    ObjectiveKind,
    Outcome,
    config_of,
)
from gradsweep.errors import GradsweepError
from gradsweep.results.comparison import (
    AdaptiveResult,
    Comparison,
    PairedDifference,
    by_seed,
    comparison_of,
    paired_difference,
)
from gradsweep.results.selection import static_groups
from gradsweep.results.study import StudyResults, at_evaluation, belongs_to, rescored
from gradsweep.spec import RETRAINED

#: how much worse than the static optimum (or than GradNorm, for C5) still "matches", in the
#: objective's units: 0.01 of the untrained loss, or one point of Δm% (docs/results.md)
MARGINS = {ObjectiveKind.NORMALIZED_LOSS: 0.01, ObjectiveKind.DELTA_M: 1.0}
SIGNIFICANCE = 0.05
MIN_SEEDS = 3  # fewer, and a 95 % interval (t with n − 1 degrees of freedom) is too wide
#: the evaluation steps the budget robustness recomputes at most (evenly spaced, the last
#: one always): each is a whole re-scoring of the study
MAX_BUDGET_STEPS = 25


@dataclass(frozen=True)
class Variant:
    """The verdict recomputed on one variant of the study's data."""

    kind: str  # "step", "sub-grid" or "seed left out"
    at: int  # the step, the sub-grid's resolution, or the seed left out
    outcome: Outcome
    value: float | None = None  # the claim's figure there (a paired mean, ρ, a share)
    low: float | None = None
    high: float | None = None

    def describe(self) -> str:
        if self.kind == "step":
            return f"at step {self.at}"
        if self.kind == "sub-grid":
            return f"on the resolution-{self.at} sub-grid"
        return f"without seed {self.at}"


@dataclass(frozen=True)
class Robustness:
    """Where the verdict was recomputed and whether all agree. ``holds_from_step``: the
    first evaluation step from which every later step gives the same outcome (None where
    the last step does not, or no steps were read)."""

    robust: bool
    holds_from_step: int | None
    budget: list[Variant] = field(default_factory=list)
    budget_steps: int = 0  # the study's evaluation steps (the budget holds at most 25 of them)
    sub_grids: list[Variant] = field(default_factory=list)
    seeds_left_out: list[Variant] = field(default_factory=list)
    flips: list[str] = field(default_factory=list)

    def describe(self) -> str:
        checked = []
        if self.budget:
            of = "" if self.budget_steps <= len(self.budget) else f" of {self.budget_steps}"
            checked.append(f"{len(self.budget)}{of} steps")
        if self.sub_grids:
            checked.append(f"{len(self.sub_grids)} sub-grid(s)")
        if self.seeds_left_out:
            checked.append(f"{len(self.seeds_left_out)} seeds left out")
        if not checked:
            return "robustness not checked"
        since = "" if self.holds_from_step is None else f"; holds from step {self.holds_from_step}"
        if self.robust:
            return "robust (" + ", ".join(checked) + since + ")"
        return "not robust: " + "; ".join(self.flips)


@dataclass(frozen=True)
class Verdict:
    """One claim for one adaptive configuration: the outcome, why in words a reader can
    check, every figure behind it, its warnings and its robustness."""

    claim: Claim
    balancer: str
    config: str
    outcome: Outcome
    reason: str
    figures: dict[str, Any]
    warnings: list[str] = field(default_factory=list)
    robustness: Robustness | None = None

    @property
    def title(self) -> str:
        return self.claim.statement

    def line(self) -> str:
        return (
            f"{self.claim} {self.config} {self.title}: {self.outcome} ({self.reason}){self.tail()}"
        )

    def tail(self) -> str:
        """The robustness and the warnings, after the reason."""
        robust = "" if self.robustness is None else f"; {self.robustness.describe()}"
        return robust + "".join(f"; warning: {warning}" for warning in self.warnings)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["title"] = self.title
        data["line"] = self.line()
        return data


@dataclass(frozen=True)
class Verdicts:
    """Every verdict of a study, the margin they use and the study's warnings."""

    margin: float
    claims: list[Verdict]
    warnings: list[str]

    def lines(self) -> list[str]:
        return [verdict.line() for verdict in self.claims]

    def to_dict(self) -> dict[str, Any]:
        return {
            "margin": self.margin,
            "warnings": self.warnings,
            "claims": [verdict.to_dict() for verdict in self.claims],
        }


def chosen_configurations(comparison: Comparison) -> list[AdaptiveResult]:
    """Each balancer's configuration chosen on validation (or its only one)."""
    chosen: dict[str, AdaptiveResult] = {}
    for result in comparison.adaptive:
        if result.balancer not in chosen or result.chosen_on_validation:
            chosen[result.balancer] = result
    return list(chosen.values())


def interval_text(paired: PairedDifference) -> str:
    if paired.low is None:
        return f"{paired.mean:+.4f} on 1 seed, no interval"
    return (
        f"{paired.mean:+.4f} [{paired.low:+.4f}, {paired.high:+.4f}] over {paired.seeds} "
        f"seeds, {paired.wins}/{paired.seeds} won"
    )


def paired_figures(paired: PairedDifference) -> dict[str, Any]:
    return {
        "mean": paired.mean,
        "low": paired.low,
        "high": paired.high,
        "seeds": paired.seeds,
        "wins": paired.wins,
    }


def versus_zero(paired: PairedDifference | None, what: str) -> tuple[Outcome, str]:
    """Confirmed below 0 (the adaptive run is better), refuted above, else inconclusive."""
    if paired is None:
        return Outcome.INCONCLUSIVE, f"no {what} on the same seeds"
    text = f"paired difference {interval_text(paired)}"
    if paired.low is None or paired.high is None:
        return Outcome.INCONCLUSIVE, text
    if paired.high < 0:
        return Outcome.CONFIRMED, f"{text}: below 0"
    if paired.low > 0:
        return Outcome.REFUTED, f"{text}: above 0"
    return Outcome.INCONCLUSIVE, f"{text}: holds 0"


class Judge:
    """The verdicts of one reading of a study (the study itself, or one variant)."""

    def __init__(self, results: StudyResults, comparison: Comparison, margin: float) -> None:
        self.results, self.comparison, self.margin = results, comparison, margin
        self.scored = results.scored()
        self.static = self.scored[self.scored["arm"].isin(STATIC_ARMS)]
        seconds = self.scored.groupby("balancer")["train_seconds"].sum()
        self.balancer_seconds = {str(k): float(v) for k, v in seconds.items()}
        self.static_seconds = float(
            sum(s for arm, s in comparison.compute.items() if arm in STATIC_ARMS)
        )
        self.all_groups = static_groups(self.static)  # once: C3 and the warnings read it
        most = self.all_groups["seeds"].max()
        self.groups = self.all_groups[self.all_groups["seeds"] >= most]

    def runs(self, result: AdaptiveResult) -> pd.DataFrame:
        adaptive = self.scored[self.scored["balancer"] == result.balancer]
        return adaptive[adaptive["key"].map(config_of) == result.config]

    def all(self) -> Iterator[Verdict]:
        for result in chosen_configurations(self.comparison):
            yield self.beats_equal(result)
            yield self.matches_optimum(result)
            yield self.beats_static(result)
            yield self.nearer_is_better(result)
            if result.balancer == RETRAINED:
                yield self.static_at_its_weights(self.retrained_config(result))
            yield self.cheaper(result)

    def verdict(
        self,
        claim: Claim,
        result: AdaptiveResult,
        outcome: Outcome,
        reason: str,
        figures: dict[str, Any],
        warnings: list[str] | None = None,
    ) -> Verdict:
        return Verdict(
            claim, result.balancer, result.config, outcome, reason, figures, warnings or []
        )

    def spread_warning(self, paired: PairedDifference | None, *sides: pd.Series) -> list[str]:
        """Where seeds scatter more than the gap being judged."""
        if paired is None:
            return []
        spreads = [float(side.std(ddof=1)) for side in sides if len(side) > 1]
        spread = max(spreads, default=0.0)
        if spread > abs(paired.mean):
            return [
                f"the seed spread (σ = {spread:.4f}) is larger than the gap ({paired.mean:+.4f})"
            ]
        return []

    def baseline_runs(self, keys: list[str]) -> pd.DataFrame:
        """A static weighting's trials (one per seed)."""
        return self.static[self.static["key"].isin(keys)].drop_duplicates("seed")

    def beats_equal(self, result: AdaptiveResult) -> Verdict:
        paired = result.versus_equal
        outcome, reason = versus_zero(paired, "equal-weight trials")
        equal = self.comparison.equal_weights
        warnings = self.spread_warning(
            paired,
            self.runs(result)["objective"],
            self.baseline_runs(equal.keys)["objective"] if equal else pd.Series(dtype=float),
        )
        figures = paired_figures(paired) if paired else {}
        return self.verdict(Claim.BEATS_EQUAL, result, outcome, reason, figures, warnings)

    def matches_optimum(self, result: AdaptiveResult) -> Verdict:
        paired = result.versus_static_best
        margin = self.margin
        if paired is None or paired.low is None or paired.high is None:
            outcome = Outcome.INCONCLUSIVE
            reason = (
                "no static optimum on the same seeds"
                if paired is None
                else f"paired difference {interval_text(paired)}"
            )
        else:
            text = f"paired difference {interval_text(paired)}"
            if paired.high < margin:
                outcome, reason = Outcome.CONFIRMED, f"{text}: below the margin +{margin:g}"
            elif paired.low > margin:
                outcome, reason = Outcome.REFUTED, f"{text}: above the margin +{margin:g}"
            else:
                outcome, reason = Outcome.INCONCLUSIVE, f"{text}: holds the margin +{margin:g}"
        figures = {**(paired_figures(paired) if paired else {}), "margin": margin}
        warnings = self.spread_warning(
            paired,
            self.runs(result)["objective"],
            self.baseline_runs(self.comparison.static_best.keys)["objective"],
        )
        return self.verdict(Claim.MATCHES_OPTIMUM, result, outcome, reason, figures, warnings)

    def beats_static(self, result: AdaptiveResult) -> Verdict:
        groups = self.groups
        better = groups[groups["objective"] <= result.objective]
        share = 1.0 - len(better) / len(groups)
        figures: dict[str, Any] = {
            "weightings": len(groups),
            "beaten": len(groups) - len(better),
            "share_beaten": share,
        }
        if better.empty:
            reason = f"its mean beats all {len(groups)} static weightings' means"
            return self.verdict(Claim.BEATS_STATIC, result, Outcome.CONFIRMED, reason, figures)
        best = better.loc[better["objective"].idxmin()]
        weights = [float(w) for w in best["weighting"]]
        points = np.round(np.array(self.static["static_weights"].tolist(), dtype=float), 9)
        keys = self.static.loc[np.all(points == np.array(weights), axis=1), "key"].tolist()
        paired = paired_difference(self.runs(result), by_seed(self.baseline_runs(keys)), "best")
        figures.update(best_weights=weights, versus_best=paired_figures(paired) if paired else {})
        beaten = f"{len(groups) - len(better)} of {len(groups)} weightings beaten"
        if paired is not None and paired.low is not None and paired.low > 0:
            reason = f"{beaten}; the best, ({format_point(weights)}), beats it: " + interval_text(
                paired
            )
            return self.verdict(Claim.BEATS_STATIC, result, Outcome.REFUTED, reason, figures)
        reason = f"{beaten}; against the best, ({format_point(weights)}), " + (
            interval_text(paired) if paired else "no shared seeds"
        )
        return self.verdict(Claim.BEATS_STATIC, result, Outcome.INCONCLUSIVE, reason, figures)

    def nearer_is_better(self, result: AdaptiveResult) -> Verdict:
        rho, p = result.spearman_objective_vs_distance, result.spearman_p_value
        figures = {"rho": rho, "p_value": p, "static_trials": len(self.static)}
        if rho is None or p is None:
            reason = "too few distinct static trials for a correlation"
            return self.verdict(
                Claim.NEARER_IS_BETTER, result, Outcome.INCONCLUSIVE, reason, figures
            )
        text = f"Spearman ρ = {rho:+.3f}, p = {p:.3g} over {len(self.static)} static trials"
        if p < SIGNIFICANCE:
            outcome = Outcome.CONFIRMED if rho > 0 else Outcome.REFUTED
            word = "nearer is better" if rho > 0 else "nearer is worse"
            return self.verdict(Claim.NEARER_IS_BETTER, result, outcome, f"{text}: {word}", figures)
        reason = f"{text}: not significant at {SIGNIFICANCE:g}"
        return self.verdict(Claim.NEARER_IS_BETTER, result, Outcome.INCONCLUSIVE, reason, figures)

    def retrained_config(self, chosen: AdaptiveResult) -> AdaptiveResult:
        """The GradNorm configuration the retrain arm trained at (its α), else ``chosen``."""
        alphas = set(self.scored.loc[self.scored["arm"] == ArmKind.RETRAIN, "alpha"].dropna())
        for result in self.comparison.adaptive:
            if result.balancer == chosen.balancer and result.alpha in alphas:
                return result
        return chosen

    def static_at_its_weights(self, result: AdaptiveResult) -> Verdict:
        retrain = self.scored[self.scored["arm"] == ArmKind.RETRAIN]
        retrain = retrain[retrain["alpha"] == result.alpha]
        claim, margin = Claim.STATIC_AT_ITS_WEIGHTS, self.margin
        if retrain.empty:
            reason = f"the study has no retrain arm at α = {result.alpha:g}"
            return self.verdict(claim, result, Outcome.INCONCLUSIVE, reason, {"margin": margin})
        runs = self.runs(result)
        paired = paired_difference(retrain, by_seed(runs), "GradNorm")
        figures = {**(paired_figures(paired) if paired else {}), "margin": margin}
        if paired is None or paired.low is None or paired.high is None:
            reason = "no shared seeds" if paired is None else interval_text(paired)
            return self.verdict(claim, result, Outcome.INCONCLUSIVE, reason, figures)
        text = f"retrained minus adaptive {interval_text(paired)}"
        if -margin < paired.low and paired.high < margin:
            outcome, reason = Outcome.CONFIRMED, f"{text}: inside ±{margin:g}"
        elif paired.low > margin or paired.high < -margin:
            outcome, reason = Outcome.REFUTED, f"{text}: outside ±{margin:g}"
        else:
            outcome, reason = Outcome.INCONCLUSIVE, f"{text}: crosses ±{margin:g}"
        warnings = self.spread_warning(paired, runs["objective"], retrain["objective"])
        return self.verdict(claim, result, outcome, reason, figures, warnings)

    def cheaper(self, result: AdaptiveResult) -> Verdict:
        seconds = self.balancer_seconds.get(result.balancer, result.compute_seconds)
        static = self.static_seconds
        figures = {
            "config_seconds": result.compute_seconds,
            "balancer_seconds": seconds,
            "static_seconds": static,
            "ratio": seconds / static if static > 0 else None,
        }
        if static <= 0:
            reason = "no static search time recorded"
            return self.verdict(Claim.CHEAPER, result, Outcome.INCONCLUSIVE, reason, figures)
        text = (
            f"{seconds:.1f} s over all its configurations and seeds against the static "
            f"search's {static:.1f} s (×{seconds / static:.2f})"
        )
        outcome = Outcome.CONFIRMED if seconds < static else Outcome.REFUTED
        return self.verdict(Claim.CHEAPER, result, outcome, text, figures)


def format_point(weights: list[float]) -> str:
    return ", ".join(f"{w:.3g}" for w in weights)


def key_figure(verdict: Verdict) -> tuple[float | None, float | None, float | None]:
    """The figure a verdict turns on, for the budget figure: a paired mean and interval,
    the share beaten, ρ or the compute ratio."""
    f = verdict.figures
    if "mean" in f:
        return f["mean"], f.get("low"), f.get("high")
    for name in ("share_beaten", "rho", "ratio"):
        if f.get(name) is not None:
            return float(f[name]), None, None
    return None, None, None


def judge(results: StudyResults, margin: float) -> dict[tuple[Claim, str], Verdict]:
    """The verdicts of one reading, by claim and balancer ({} where it cannot compare)."""
    try:
        comparison = comparison_of(results)
    except GradsweepError:
        return {}
    return {(v.claim, v.balancer): v for v in Judge(results, comparison, margin).all()}


def grid_resolution(results: StudyResults) -> int | None:
    """The study's grid resolution, from its stored spec (None without a grid arm)."""
    try:
        grid = (json.loads(results.info.spec_text).get("arms") or {}).get("grid")
        return int(grid["resolution"]) if grid else None
    except (ValueError, TypeError, AttributeError, KeyError):
        return None


def on_sub_grid(weights: object, resolution: int) -> bool:
    """Whether a weighting lies on the simplex lattice of ``resolution``."""
    w = np.asarray(weights, dtype=float)
    if w.size == 0 or w.sum() <= 0:
        return False
    scaled = w * resolution / w.sum()
    return bool(np.allclose(scaled, np.round(scaled), atol=1e-6))


def has_grid_points(results: StudyResults, resolution: int) -> bool:
    """Whether the study's grid holds any point of the coarser grid (without its vertices,
    a resolution-1 grid has none): an empty sub-grid judges nothing."""
    grid = results.trials[belongs_to(results.trials, ArmKind.GRID)]
    return bool(grid["static_weights"].map(lambda w: on_sub_grid(w, resolution)).any())


def sub_grid(results: StudyResults, resolution: int) -> StudyResults:
    """The study with its searched static weightings cut to a coarser grid (the static
    arm's own weightings, equal weights among them, stay)."""
    trials = results.trials
    searched = trials["arm"].isin([a for a in STATIC_ARMS if a != ArmKind.STATIC])
    off = searched & ~trials["static_weights"].map(lambda w: on_sub_grid(w, resolution))
    return replace(results, trials=trials[~off])


def at_step(results: StudyResults, values: pd.DataFrame) -> StudyResults:
    return rescored(results, finals=at_evaluation(results.finals, values, results.task_names))


def without_seed(results: StudyResults, seed: int) -> StudyResults:
    rest = tuple(s for s in results.seeds if s != seed)
    return rescored(results, trials=results.trials[results.trials["seed"] != seed], seeds=rest)


def budget_steps(evaluations: pd.DataFrame) -> tuple[list[int], int]:
    """The evaluation steps to recompute at (at most ``MAX_BUDGET_STEPS``, evenly spaced,
    the last always) and how many the study has, the untrained step 0 left out."""
    steps = sorted(int(s) for s in evaluations["step"].unique() if s > 0)
    if len(steps) <= MAX_BUDGET_STEPS:
        return steps, len(steps)
    picks = np.unique(np.linspace(0, len(steps) - 1, MAX_BUDGET_STEPS).round().astype(int))
    return [steps[i] for i in picks], len(steps)


def variants(
    results: StudyResults, evaluations: pd.DataFrame | None
) -> Iterator[tuple[str, int, Callable[[], StudyResults]]]:
    """Every reading the robustness checks: (kind, at, how to build it)."""
    if evaluations is not None and len(evaluations):
        for step in budget_steps(evaluations)[0]:
            values = evaluations[evaluations["step"] == step]
            yield "step", step, partial(at_step, results, values)
    resolution = grid_resolution(results)
    if resolution:
        for coarser in range(1, resolution):
            if resolution % coarser == 0 and has_grid_points(results, coarser):
                yield "sub-grid", coarser, partial(sub_grid, results, coarser)
    if len(results.seeds) >= 2:
        for seed in results.seeds:
            yield "seed left out", seed, partial(without_seed, results, seed)


def robustness(
    main: Verdict,
    found: list[tuple[str, int, dict[tuple[Claim, str], Verdict]]],
    steps: int = 0,
) -> Robustness:
    """The verdict's outcome across the variants, and what flips it."""
    parts: dict[str, list[Variant]] = {"step": [], "sub-grid": [], "seed left out": []}
    for kind, at, verdicts in found:
        if kind == "step" and main.claim is Claim.CHEAPER:
            continue  # the compute ratio does not depend on the step
        other = verdicts.get((main.claim, main.balancer))
        if other is None:
            parts[kind].append(Variant(kind, at, Outcome.INCONCLUSIVE))
            continue
        value, low, high = key_figure(other)
        parts[kind].append(Variant(kind, at, other.outcome, value, low, high))
    budget = parts["step"]
    holds_from = holds_from_step(main.outcome, budget)
    flips = budget_flips(main.outcome, budget, holds_from)
    for kind in ("sub-grid", "seed left out"):
        flips += [f"{v.outcome} {v.describe()}" for v in parts[kind] if v.outcome != main.outcome]
    return Robustness(
        robust=not flips,
        holds_from_step=holds_from,
        budget=budget,
        budget_steps=steps if budget else 0,
        sub_grids=parts["sub-grid"],
        seeds_left_out=parts["seed left out"],
        flips=flips,
    )


def holds_from_step(outcome: Outcome, budget: list[Variant]) -> int | None:
    """The first step from which every later step gives ``outcome`` (None: the last
    step does not)."""
    if not budget or budget[-1].outcome != outcome:
        return None
    holds_from = budget[-1].at
    for point in reversed(budget):
        if point.outcome != outcome:
            break
        holds_from = point.at
    return holds_from


def budget_flips(outcome: Outcome, budget: list[Variant], holds_from: int | None) -> list[str]:
    """What the training budget flips. A verdict that holds over the last half of the
    budget is robust to it (the first evaluations judge a barely trained network); the
    line still says from which step on it holds."""
    if not budget:
        return []
    last = budget[-1].at
    if holds_from is None:
        return [f"{budget[-1].outcome} at the last evaluation (step {last})"]
    if holds_from <= last / 2:
        return []
    others = sorted({str(p.outcome) for p in budget if p.at < holds_from and p.outcome != outcome})
    return [f"holds only from step {holds_from} of {last} on ({' or '.join(others)} before)"]


def study_warnings(
    results: StudyResults, comparison: Comparison, groups: pd.DataFrame
) -> list[str]:
    """Where the study's answer cannot carry weight."""
    warnings = []
    seeds = len(results.seeds)
    if seeds < MIN_SEEDS:
        spread = (
            "one seed gives no interval at all"
            if seeds < 2
            else f"a 95 % interval over {seeds} seeds (Student t with {seeds - 1} degree(s) "
            "of freedom) is too wide to carry weight"
        )
        warnings.append(f"{seeds} seed(s): {spread}; run at least {MIN_SEEDS}")
    best = comparison.static_best
    if min(best.weights) <= 1e-9:
        warnings.append(
            f"the static optimum ({format_point(best.weights)}) lies on the simplex's "
            "boundary (a task switched off): the grid may be too coarse there"
        )
    left_out = groups[groups["seeds"] < groups["seeds"].max()] if len(groups) else groups
    chosen_by = best.selection_objective
    if len(left_out) and chosen_by is not None:
        better = left_out[left_out["selection_objective"] < chosen_by]
        if len(better):
            warnings.append(
                f"{len(better)} weighting(s) run on fewer seeds score better on "
                f"{comparison.selection.get('split', 'test')} than the optimum and were left "
                "out for lack of seeds"
            )
    return warnings


def study_verdicts(
    results: StudyResults,
    comparison: Comparison,
    evaluations: pd.DataFrame | None = None,
    robust: bool = True,
) -> Verdicts:
    """Every claim for every adaptive method, with its robustness over the evaluation steps
    in ``evaluations`` (``queries.evaluation_values``; none: not checked over the budget),
    the coarser sub-grids and each seed left out (``robust=False``: none of it, the
    lines say "robustness not checked")."""
    margin = MARGINS[results.objective]
    judge_main = Judge(results, comparison, margin)
    main = list(judge_main.all())
    warnings = study_warnings(results, comparison, judge_main.all_groups)
    if not robust:
        return Verdicts(margin=margin, claims=main, warnings=warnings)
    found = [
        (kind, at, judge(build(), margin)) for kind, at, build in variants(results, evaluations)
    ]
    steps = 0 if evaluations is None or evaluations.empty else budget_steps(evaluations)[1]
    claims = [replace(verdict, robustness=robustness(verdict, found, steps)) for verdict in main]
    return Verdicts(margin=margin, claims=claims, warnings=warnings)
