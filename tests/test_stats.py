"""gradsweep.stats against scipy's Student t (the reference, present in the test extra)."""

from __future__ import annotations

import pytest
from scipy import stats

from gradsweep.stats import t_cdf, t_quantile


@pytest.mark.parametrize("df", [1, 2, 3, 4, 9, 30, 100, 1000])
def test_the_cdf_is_scipys(df: int) -> None:
    for t in (-50.0, -6.0, -2.5, -1.0, -0.1, 0.0, 0.3, 1.96, 4.0, 25.0):
        assert t_cdf(t, df) == pytest.approx(stats.t.cdf(t, df), rel=1e-10, abs=1e-14)


@pytest.mark.parametrize("df", [1, 2, 3, 5, 10, 50, 500])
def test_the_quantile_is_scipys(df: int) -> None:
    for p in (0.001, 0.025, 0.3, 0.5, 0.9, 0.975, 0.999):
        assert t_quantile(p, df) == pytest.approx(stats.t.ppf(p, df), rel=1e-9, abs=1e-12)


def test_a_probability_outside_0_1_is_refused() -> None:
    with pytest.raises(ValueError, match="p must be in"):
        t_quantile(1.0, 3)
