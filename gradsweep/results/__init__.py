"""One typed view of a study's results, loaded once, for every reader: compare, query,
status, launch's later phases, the dashboard and the report."""

from gradsweep.results.study import TRIAL_COLUMNS, StudyResults, load_results
from gradsweep.results.summary import study_list

__all__ = ["TRIAL_COLUMNS", "StudyResults", "load_results", "study_list"]
