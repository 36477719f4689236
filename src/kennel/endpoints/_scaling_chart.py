"""Pictures of a scaling simulation: an HTML page to open, and a text chart for a terminal.

Both show the same two things, one above the other on a shared time axis: the metric a
policy tracks against its target, and the capacity (recorded vs simulated) with the
decisions that changed it. A user tuning a policy wants to see *why* capacity moved, so
the metric and the capacity are never shown apart.
"""

from __future__ import annotations

import bisect
import html
import math
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import TypeVar

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from kennel.endpoints._autoscaling import SimulationPoint, SimulationResult, TimedDecision

_SPARK_LEVELS = "▁▂▃▄▅▆▇█"
_FULL_BLOCK = "█"
_MAX_CAPACITY_ROWS = 8
"""A terminal chart draws at most this many capacity rows; more instances share a row."""
_MAX_DECISION_LINES = 20
"""Decisions listed under a terminal chart; the marks row still shows every one."""

Number = TypeVar("Number", int, float)


# --- HTML (Plotly) --------------------------------------------------------------------


def simulation_html(result: SimulationResult, *, title: str) -> str:
    """A self-contained HTML page (Plotly bundled, works offline) charting ``result``.

    Top panel: each policy metric with its target and scale-in threshold. Bottom panel:
    recorded InstanceCount, simulated desired and in-service capacity as step lines,
    with a marker per decision whose hover text is the scaling activity's cause.
    """
    figure = make_subplots(
        rows=2,
        cols=1,
        shared_xaxes=True,
        vertical_spacing=0.08,
        subplot_titles=("Metric vs target", "Capacity"),
    )
    times = [_as_datetime(point.time) for point in result.points]
    _add_metric_traces(figure, result, times)
    _add_capacity_traces(figure, result, times)
    figure.update_layout(
        title=title,
        hovermode="x unified",
        legend={"orientation": "h", "y": -0.12},
        height=720,
    )
    figure.update_yaxes(title_text="per minute / as recorded", row=1, col=1)
    figure.update_yaxes(title_text="instances", rangemode="tozero", row=2, col=1)
    page: str = figure.to_html(include_plotlyjs=True, full_html=True)
    return page.replace("<head>", f"<head><title>{html.escape(title)}</title>", 1)


def _as_datetime(timestamp: float) -> datetime:
    return datetime.fromtimestamp(timestamp, tz=UTC)


def _add_metric_traces(figure: go.Figure, result: SimulationResult, times: list[datetime]) -> None:
    metrics = dict.fromkeys(policy.metric for policy in result.policies)
    for metric in metrics:
        values = [point.metrics.get(metric) for point in result.points]
        figure.add_trace(go.Scatter(x=times, y=values, name=metric, mode="lines"), row=1, col=1)
    span = [times[0], times[-1]] if times else []
    for policy in result.policies:
        target = policy.target_value
        figure.add_trace(
            go.Scatter(
                x=span,
                y=[target] * len(span),
                name=f"{policy.policy_name} target ({target:g})",
                mode="lines",
                line={"dash": "dash"},
            ),
            row=1,
            col=1,
        )
        if not policy.disable_scale_in:
            low = policy.low_ratio * target
            figure.add_trace(
                go.Scatter(
                    x=span,
                    y=[low] * len(span),
                    name=f"{policy.policy_name} scale-in below ({low:g})",
                    mode="lines",
                    line={"dash": "dot"},
                ),
                row=1,
                col=1,
            )


def _add_capacity_traces(
    figure: go.Figure, result: SimulationResult, times: list[datetime]
) -> None:
    step_lines = {
        "recorded InstanceCount": [point.recorded_capacity for point in result.points],
        "simulated desired": [point.desired for point in result.points],
        "simulated in service": [point.in_service for point in result.points],
    }
    dashes = {"recorded InstanceCount": "solid", "simulated desired": "solid"}
    for name, values in step_lines.items():
        figure.add_trace(
            go.Scatter(
                x=times,
                y=values,
                name=name,
                mode="lines",
                line={"shape": "hv", "dash": dashes.get(name, "dot")},
            ),
            row=2,
            col=1,
        )
    for direction, symbol in (("out", "triangle-up"), ("in", "triangle-down")):
        chosen = [timed for timed in result.decisions if timed.decision.direction == direction]
        if chosen:
            figure.add_trace(_decision_markers(chosen, direction, symbol), row=2, col=1)


def _decision_markers(decisions: list[TimedDecision], direction: str, symbol: str) -> go.Scatter:
    return go.Scatter(
        x=[_as_datetime(timed.time) for timed in decisions],
        y=[timed.decision.desired for timed in decisions],
        name=f"scale-{direction}",
        mode="markers",
        marker={"symbol": symbol, "size": 12},
        hovertext=[
            f"{timed.decision.description}<br>{html.escape(timed.decision.cause)}"
            for timed in decisions
        ],
        hoverinfo="text",
    )


# --- terminal -------------------------------------------------------------------------


def terminal_chart(result: SimulationResult, width: int = 60) -> str:
    """A plain-text chart of ``result`` that fits in 80 columns with the default width.

    One sparkline per policy metric (with its min, max and target), then recorded and
    simulated desired capacity as block columns, one row per capacity level, then a row
    of decision marks (▲ out, ▼ in, ◆ both). When there are more samples than ``width``
    columns, a column shows the largest value of the samples it covers, so a short peak
    that triggered a scale-out stays visible.
    """
    if not result.points:
        return f"{result.resource_id}: no samples to chart\n"
    size = math.ceil(len(result.points) / max(1, width))
    buckets = [result.points[i : i + size] for i in range(0, len(result.points), size)]
    recorded = [_largest(_rounded(p.recorded_capacity) for p in bucket) for bucket in buckets]
    simulated = [_largest(p.desired for p in bucket) for bucket in buckets]
    levels = _capacity_levels(recorded + simulated)
    margin = " " * len(str(levels[0]))
    lines = [_header(result, size)]
    for metric in dict.fromkeys(policy.metric for policy in result.policies):
        lines.extend(_metric_lines(result, metric, buckets, margin))
    lines.append("recorded capacity (InstanceCount)")
    lines.extend(_capacity_rows(recorded, levels, margin))
    lines.append("simulated desired capacity")
    lines.extend(_capacity_rows(simulated, levels, margin))
    lines.append(f"{margin} │{_decision_marks(result, buckets)}")
    lines.append(f"{margin} └{'─' * len(buckets)}")
    lines.append(_time_axis(result, margin, len(buckets)))
    lines.extend(_decision_lines(result))
    return "\n".join(line.rstrip() for line in lines) + "\n"


def _header(result: SimulationResult, size: int) -> str:
    per_column = "" if size == 1 else f", {size} per column"
    return (
        f"{result.resource_id}: {len(result.points)} periods of {result.period_seconds:g} s"
        f"{per_column}; capacity {result.min_capacity}..{result.max_capacity}"
    )


def _rounded(value: float | None) -> int | None:
    return None if value is None else round(value)


def _largest(values: Iterable[Number | None]) -> Number | None:
    present = [value for value in values if value is not None]
    return max(present) if present else None


def _metric_lines(
    result: SimulationResult,
    metric: str,
    buckets: Sequence[Sequence[SimulationPoint]],
    margin: str,
) -> list[str]:
    targets = ", ".join(
        f"{policy.target_value:g} ({policy.policy_name})"
        for policy in result.policies
        if policy.metric == metric
    )
    present = [v for p in result.points if (v := p.metrics.get(metric)) is not None]
    if not present:
        return [f"{metric}: no data; target {targets}"]
    low, high = min(present), max(present)
    columns = [_largest(p.metrics.get(metric) for p in bucket) for bucket in buckets]
    return [
        f"{metric}: min {low:.4g}  max {high:.4g}  target {targets}",
        f"{margin} │{_sparkline(columns, floor=min(0.0, low), ceiling=high)}",
    ]


def _sparkline(values: Sequence[float | None], *, floor: float, ceiling: float) -> str:
    """One character per column, eight heights from ``floor`` to ``ceiling``; blank = no data."""
    span = ceiling - floor
    chars = []
    for value in values:
        if value is None:
            chars.append(" ")
        elif span <= 0:
            chars.append(_SPARK_LEVELS[0])
        else:
            index = round((value - floor) / span * (len(_SPARK_LEVELS) - 1))
            chars.append(_SPARK_LEVELS[index])
    return "".join(chars)


def _capacity_levels(values: Sequence[int | None]) -> list[int]:
    """The capacity of each row, top first; above 8 instances, several share a row.

    The top row is the largest capacity, so the highest point always shows.
    """
    top = max((value for value in values if value is not None), default=0)
    step = max(1, math.ceil(top / _MAX_CAPACITY_ROWS))
    return list(range(max(1, top), 0, -step))


def _capacity_rows(values: Sequence[int | None], levels: Sequence[int], margin: str) -> list[str]:
    """A row per level: a block where the column's capacity reaches that level."""
    rows = []
    for level in levels:
        cells = "".join(
            _FULL_BLOCK if value is not None and value >= level else " " for value in values
        )
        rows.append(f"{str(level).rjust(len(margin))} │{cells}")
    return rows


def _decision_marks(result: SimulationResult, buckets: Sequence[Sequence[SimulationPoint]]) -> str:
    """▲ under a column with a scale-out, ▼ with a scale-in, ◆ with both."""
    directions: list[set[str]] = [set() for _ in buckets]
    starts = [bucket[0].time for bucket in buckets]
    for timed in result.decisions:
        column = max(0, bisect.bisect_right(starts, timed.time) - 1)
        directions[column].add(timed.decision.direction)
    marks = {frozenset(): " ", frozenset({"out"}): "▲", frozenset({"in"}): "▼"}
    return "".join(marks.get(frozenset(found), "◆") for found in directions)


def _time_axis(result: SimulationResult, margin: str, columns: int) -> str:
    """Time since the first sample at the first and last column, under the chart's ends."""
    start = "+0 s"
    end = _elapsed(result.points[-1].time - result.points[0].time)
    gap = max(1, columns - len(start) - len(end))
    return f"{margin}  {start}{' ' * gap}{end}"


def _elapsed(seconds: float) -> str:
    """Time since the first sample, in the unit a person reads best at that size."""
    if seconds < 120:
        return f"+{seconds:.0f} s" if seconds >= 10 else f"+{seconds:.1f} s"
    if seconds < 7200:
        return f"+{seconds / 60:.3g} min"
    return f"+{seconds / 3600:.3g} h"


def _decision_lines(result: SimulationResult) -> list[str]:
    """One line per decision: when, the change, and the policy that asked."""
    if not result.decisions:
        return ["no scaling decisions"]
    start = result.points[0].time
    lines = [f"{len(result.decisions)} scaling decision(s):"]
    for timed in result.decisions[:_MAX_DECISION_LINES]:
        decision = timed.decision
        arrow = "▲" if decision.direction == "out" else "▼"
        lines.append(
            f"  {_elapsed(timed.time - start)} {arrow} {decision.previous} -> {decision.desired}"
            f"  {decision.policy_name} ({decision.alarm}, value {decision.metric_value:.4g})"
        )
    if len(result.decisions) > _MAX_DECISION_LINES:
        lines.append(f"  ... and {len(result.decisions) - _MAX_DECISION_LINES} more")
    return lines
