"""A load run as one self-contained HTML page: three panels over one time axis, so a
reader sees the load, what it did to latency, and how the fleet answered, lined up.

The page embeds plotly.js (about 4 MB): it opens offline and can be attached to a report
as it is. Plotly is imported here only, so runs without a chart do not pay for it.
"""

from __future__ import annotations

from typing import Any

from kennel.loadgen._result import LoadResult


def load_chart_html(result: LoadResult, title: str) -> str:
    """Requests/s sent and errors/s; latency p50 and p99; instance count (a step line)."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    figure: Any = make_subplots(
        rows=3,
        cols=1,
        shared_xaxes=True,
        vertical_spacing=0.06,
        subplot_titles=("requests/s", "latency (ms)", "in-service instances"),
    )
    seconds = [row.t for row in result.timeline]
    figure.add_trace(
        go.Scatter(x=seconds, y=[row.sent for row in result.timeline], name="sent/s"), 1, 1
    )
    figure.add_trace(
        go.Scatter(
            x=seconds,
            y=[row.errors for row in result.timeline],
            name="errors/s",
            line={"color": "crimson"},
        ),
        1,
        1,
    )
    if any(row.skipped for row in result.timeline):
        figure.add_trace(
            go.Scatter(
                x=seconds,
                y=[row.skipped for row in result.timeline],
                name="skipped/s (client saturated)",
                line={"color": "orange", "dash": "dot"},
            ),
            1,
            1,
        )
    for name, values, dash in (
        ("p50", [row.p50_ms for row in result.timeline], "solid"),
        ("p99", [row.p99_ms for row in result.timeline], "dash"),
    ):
        figure.add_trace(
            go.Scatter(x=seconds, y=values, name=f"{name} ms", line={"dash": dash}), 2, 1
        )
    figure.add_trace(
        go.Scatter(
            x=[sample.t_s for sample in result.instances],
            y=[sample.instances for sample in result.instances],
            name="instances",
            line={"shape": "hv", "color": "seagreen"},
            connectgaps=False,
        ),
        3,
        1,
    )
    figure.update_yaxes(rangemode="tozero")
    figure.update_yaxes(dtick=1, row=3, col=1)
    figure.update_xaxes(title_text="seconds since start", row=3, col=1)
    figure.update_layout(title=title, height=860, hovermode="x unified")
    return str(figure.to_html(include_plotlyjs=True, full_html=True))
