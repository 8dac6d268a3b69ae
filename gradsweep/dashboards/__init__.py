"""Plotly figures of a study, the Dash app and the self-contained HTML report."""
