"""The verdict rules on constructed studies whose answers are known in advance: clearly
better, clearly worse, inside the noise, a flip over the budget, a flip on a coarser
sub-grid, and two seeds (warned). The CLI's table and JSON carry the same verdicts."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from gradsweep.arms import Claim, ObjectiveKind, Outcome
from gradsweep.cli import app
from gradsweep.results.answer import compare_study
from gradsweep.results.verdicts import MARGINS, Verdict, Verdicts, on_sub_grid
from gradsweep.storage.engine import open_engine
from tests.results.verdict_study import STEPS, build_study, static_curve


def linear(final: float) -> list[float]:
    return static_curve(final)


def verdicts_of(url: str, study: str) -> Verdicts:
    verdicts = compare_study(open_engine(url), study).verdicts
    assert verdicts is not None
    return verdicts


def claim(verdicts: Verdicts, which: Claim) -> Verdict:
    (found,) = [v for v in verdicts.claims if v.claim is which and v.balancer == "gradnorm"]
    return found


def test_clearly_better_is_confirmed_and_robust(sqlite_url: str) -> None:
    finals = {0: 0.401, 1: 0.399, 2: 0.402}
    build_study(sqlite_url, "better", {s: linear(f) for s, f in finals.items()})
    verdicts = verdicts_of(sqlite_url, "better")
    for which in (Claim.BEATS_EQUAL, Claim.MATCHES_OPTIMUM, Claim.BEATS_STATIC):
        verdict = claim(verdicts, which)
        assert verdict.outcome is Outcome.CONFIRMED, verdict.line()
        assert verdict.robustness is not None and verdict.robustness.robust, verdict.line()
    c1 = claim(verdicts, Claim.BEATS_EQUAL)
    # worked out here: gradnorm minus equal weights (0.50 + seed/1000), seed by seed
    differences = [finals[s] - (0.50 + s / 1000) for s in (0, 1, 2)]
    assert c1.figures["mean"] == pytest.approx(sum(differences) / 3)
    assert c1.figures["high"] < 0 and c1.figures["wins"] == 3
    assert "below 0" in c1.reason and "robust" in c1.line()
    assert claim(verdicts, Claim.NEARER_IS_BETTER).outcome is Outcome.CONFIRMED
    c6 = claim(verdicts, Claim.CHEAPER)  # 3 × 2 s against 9 × 1 s
    assert c6.outcome is Outcome.CONFIRMED and c6.figures["ratio"] == pytest.approx(6 / 9)
    c5 = claim(verdicts, Claim.STATIC_AT_ITS_WEIGHTS)
    assert c5.outcome is Outcome.INCONCLUSIVE and "no retrain arm" in c5.reason
    budget = c1.robustness.budget if c1.robustness else []
    assert [point.at for point in budget] == list(STEPS[1:])
    assert verdicts.warnings == []  # 3 seeds, an interior optimum


def test_clearly_worse_is_refuted(sqlite_url: str) -> None:
    build_study(sqlite_url, "worse", {s: linear(0.60 + s / 500) for s in (0, 1, 2)})
    verdicts = verdicts_of(sqlite_url, "worse")
    for which in (Claim.BEATS_EQUAL, Claim.MATCHES_OPTIMUM, Claim.BEATS_STATIC):
        assert claim(verdicts, which).outcome is Outcome.REFUTED, claim(verdicts, which).line()
    c2 = claim(verdicts, Claim.MATCHES_OPTIMUM)
    margin = MARGINS[ObjectiveKind.NORMALIZED_LOSS]
    assert c2.figures["low"] > margin and "above the margin" in c2.reason


def test_inside_the_noise_is_inconclusive_and_warned(sqlite_url: str) -> None:
    finals = {0: 0.55, 1: 0.45, 2: 0.51}
    build_study(sqlite_url, "noise", {s: linear(f) for s, f in finals.items()})
    c1 = claim(verdicts_of(sqlite_url, "noise"), Claim.BEATS_EQUAL)
    assert c1.outcome is Outcome.INCONCLUSIVE and "holds 0" in c1.reason
    assert c1.figures["low"] < 0 < c1.figures["high"]
    assert any("seed spread" in warning for warning in c1.warnings)


def test_a_flip_over_the_budget_says_from_which_step_it_holds(sqlite_url: str) -> None:
    # worse than equal weights (1.0, 0.875, 0.75, 0.625 at steps 0–30) until the last step
    curve = {s: [1.0, 0.95, 0.85, 0.70, 0.46 + s / 1000] for s in (0, 1, 2)}
    build_study(sqlite_url, "budget", curve)
    c1 = claim(verdicts_of(sqlite_url, "budget"), Claim.BEATS_EQUAL)
    assert c1.outcome is Outcome.CONFIRMED
    assert c1.robustness is not None and not c1.robustness.robust
    assert c1.robustness.holds_from_step == 40
    assert [p.outcome for p in c1.robustness.budget] == [Outcome.REFUTED] * 3 + [Outcome.CONFIRMED]
    assert "holds only from step 40 of 40 on (refuted before)" in c1.line()


def test_a_flip_on_a_coarser_sub_grid_is_named(sqlite_url: str) -> None:
    # 0.47: 0.02 worse than the grid's best (0.45), better than equal weights (0.50), the
    # only static weighting left on the resolution-2 sub-grid
    build_study(sqlite_url, "coarse", {s: linear(0.47 + s / 1000) for s in (0, 1, 2)})
    c2 = claim(verdicts_of(sqlite_url, "coarse"), Claim.MATCHES_OPTIMUM)
    assert c2.outcome is Outcome.REFUTED
    assert c2.robustness is not None
    assert [(v.at, v.outcome) for v in c2.robustness.sub_grids] == [(2, Outcome.CONFIRMED)]
    assert "confirmed on the resolution-2 sub-grid" in c2.line()


def test_two_seeds_are_warned_and_leaving_one_out_flips(sqlite_url: str) -> None:
    build_study(sqlite_url, "two", {0: linear(0.40), 1: linear(0.41)}, seeds=(0, 1))
    verdicts = verdicts_of(sqlite_url, "two")
    assert any("2 seed(s)" in warning for warning in verdicts.warnings)
    c1 = claim(verdicts, Claim.BEATS_EQUAL)
    assert c1.robustness is not None
    left_out = [(v.at, v.outcome) for v in c1.robustness.seeds_left_out]
    assert left_out == [(0, Outcome.INCONCLUSIVE), (1, Outcome.INCONCLUSIVE)]
    assert "inconclusive without seed 0" in c1.line()


def test_the_cli_table_and_json_carry_the_same_verdicts(sqlite_url: str) -> None:
    build_study(sqlite_url, "cli", {s: linear(0.47 + s / 1000) for s in (0, 1, 2)})
    verdicts = verdicts_of(sqlite_url, "cli")
    runner = CliRunner()
    table = runner.invoke(app, ["compare", "cli", "--db", sqlite_url])
    assert table.exit_code == 0, table.output
    first = table.output.splitlines()[1 : 1 + len(verdicts.claims)]
    assert first == verdicts.lines()  # compare opens with them
    data = json.loads(
        runner.invoke(app, ["compare", "cli", "--db", sqlite_url, "--format", "json"]).output
    )
    assert [c["line"] for c in data["verdict"]["claims"]] == verdicts.lines()
    assert [c["outcome"] for c in data["verdict"]["claims"]] == [
        str(v.outcome) for v in verdicts.claims
    ]


@pytest.mark.parametrize(
    ("weights", "resolution", "on"),
    [((1.0, 1.0), 2, True), ((0.5, 1.5), 2, False), ((0.5, 1.5), 4, True), ((2.0, 0.0), 1, True)],
)
def test_a_weighting_is_on_a_sub_grid_when_its_lattice_counts_are_whole(
    weights: tuple[float, float], resolution: int, on: bool
) -> None:
    assert on_sub_grid(weights, resolution) is on
