"""The answer a study exists for, whole: the comparison (``comparison.py``), its Pareto
view (``pareto.py``) and each claim's verdict with its robustness (``verdicts.py``).
``gradsweep compare``, the dashboard and the report read it here, so they agree."""

from __future__ import annotations

from dataclasses import replace

import pandas as pd
from sqlalchemy import Engine

from gradsweep.arms import Checkpoint
from gradsweep.results.comparison import Comparison, comparison_of
from gradsweep.results.pareto import study_pareto
from gradsweep.results.study import StudyResults, collector_paused, load_results
from gradsweep.results.verdicts import study_verdicts
from gradsweep.storage import queries
from gradsweep.storage.writer import ResultsWriter


def evaluations(engine: Engine, results: StudyResults) -> pd.DataFrame:
    """Every completed trial's values at every evaluation step (the budget robustness)."""
    return queries.evaluation_values(engine, results.id)


def compare_results(
    results: StudyResults, evaluated: pd.DataFrame | None = None, robust: bool = True
) -> Comparison:
    """The comparison of a loaded study, with its Pareto view and verdicts; ``evaluated``
    (``evaluations``) lets the verdicts be checked over the training budget too;
    ``robust=False`` leaves the robustness out (each variant re-scores the whole study)."""
    comparison = comparison_of(results)
    comparison = replace(comparison, pareto=study_pareto(results))
    verdicts = study_verdicts(results, comparison, evaluated, robust)
    return replace(comparison, verdicts=verdicts)


def compare_study(
    engine: Engine, study: str | int, store: bool = False, checkpoint: Checkpoint | None = None
) -> Comparison:
    """Compare a stored study; ``store`` also saves the result in ``gs_comparisons``;
    ``checkpoint`` overrides the spec's ``selection.checkpoint``."""
    with collector_paused():
        results = load_results(engine, study, checkpoint=checkpoint)
        comparison = compare_results(results, evaluations(engine, results))
    if store:
        ResultsWriter(engine).save_comparison(results.id, comparison.to_dict())
    return comparison
