"""Plotly figures into one self-contained HTML page (the profiler and monitoring reports)."""

from __future__ import annotations

import plotly.graph_objects as go


class Charts:
    """Renders figures in page order; the first one carries plotly.js inline."""

    def __init__(self) -> None:
        self.drawn = 0

    def html(self, figure: go.Figure) -> str:
        include = self.drawn == 0
        self.drawn += 1
        figure.update_layout(template="plotly_white")
        rendered: str = figure.to_html(
            full_html=False,
            include_plotlyjs=include,
            config={"displaylogo": False, "responsive": True},
        )
        return rendered
