"""Plotly figures and shared styles for the self-contained HTML reports (profiler, monitoring)."""

from __future__ import annotations

import plotly.graph_objects as go
from markupsafe import Markup

REPORT_STYLE = Markup(
    """\
  body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222;
         padding: 0 1em; }
  table { border-collapse: collapse; width: 100%; font-size: 0.9em; margin: 0.5em 0 1em; }
  th, td { border-bottom: 1px solid #ddd; padding: 4px 8px; text-align: left;
           vertical-align: top; }
  th { background: #f6f6f6; }
  td.num { text-align: right; font-variant-numeric: tabular-nums; }
  .muted { color: #666; }"""
)
"""The CSS the reports share (each adds its own after it)."""


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
