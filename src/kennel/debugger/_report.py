"""A training job's profiler report: one self-contained HTML page, as SageMaker's is.

The sections follow the questions a user asks of a slow or bad run: what did the rules
find (and what to do about it); was the machine busy (CPU, memory, I/O, GPU per
instance over time); were some steps slow (the step time distribution and its
outliers); where did step time go (data loading, forward, backward, optimizer, the
hook: an input bottleneck shows here); did it learn (train and eval loss); did the
gradients behave (per-layer norms over the saved steps). A section whose data is
missing says why and how to get it instead of drawing an empty chart.

Plotly is inlined once (in the first chart drawn), so the page opens offline and can be
mailed around. Every line is thinned to at most ``MAX_POINTS`` points (keeping each
bucket's minimum and maximum, so spikes survive) and histograms are binned here, so a
long job's page stays a few megabytes (most of it plotly.js).
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

import jinja2
import numpy as np
import plotly.graph_objects as go
from plotly.colors import qualitative
from plotly.subplots import make_subplots

from kennel._charts import REPORT_STYLE, Charts
from kennel.debugger._trial import Trial

MAX_POINTS = 2000
"""Points per line trace at most."""
MAX_LAYERS = 20
"""Layers in the gradient heatmap at most (evenly spread over the model's depth)."""
MAX_HEATMAP_STEPS = 400
MAX_SCALARS = 6
WORST_STEPS = 10
OUTLIER_SIGMAS = 3.0
OUTLIER_MEDIAN_FACTOR = 2.0
"""A step is an outlier above median + 3 robust sigma, and never below 2x the median:
on a very regular loop sigma is tiny and a step 20 % slow is not worth a look."""
DATA_BOTTLENECK_SHARE = 0.3
PHASES = ("data", "forward", "backward", "optimizer", "hook")
PHASE_LABELS = {
    "data": "data loading",
    "forward": "forward",
    "backward": "backward",
    "optimizer": "optimizer",
    "hook": "debugger hook",
    "other": "other",
}
PHASE_COLOURS = {
    "data": "#d62728",
    "forward": "#1f77b4",
    "backward": "#2ca02c",
    "optimizer": "#9467bd",
    "hook": "#7f7f7f",
    "other": "#c7c7c7",
}
STATUS_ORDER = {"IssuesFound": 0, "Error": 1, "InProgress": 2, "NoIssuesFound": 3}
HOST_COLOURS = qualitative.D3

T = TypeVar("T")

_PAGE = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined).from_string(
    """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Profiler report: {{ job.name }}</title>
<style>
{{ base_style }}
  .nodata { color: #555; background: #f6f6f6; border-left: 4px solid #bbb;
            padding: 0.6em 1em; }
  .warn { background: #fff4e5; border-left: 4px solid #f0a030; padding: 0.6em 1em; }
  .badge { display: inline-block; padding: 1px 8px; border-radius: 10px; color: #fff;
           font-size: 0.85em; white-space: nowrap; }
  .IssuesFound { background: #c62828; }
  .Error { background: #6a1b9a; }
  .InProgress { background: #1565c0; }
  .NoIssuesFound { background: #2e7d32; }
  dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: 2px 1em; }
  dl.facts dt { color: #666; }
  dl.facts dd { margin: 0; }
</style>
</head>
<body>
<h1>Profiler report: {{ job.name }}</h1>
<dl class="facts">
<dt>status</dt><dd><span class="badge {{ status_class }}">{{ job.status }}</span>
{% if job.secondary_status %}<span class="muted">({{ job.secondary_status }})</span>{% endif %}
</dd>
{% if job.failure_reason %}<dt>failure</dt><dd style="color: #b00">{{ job.failure_reason }}</dd>
{% endif %}
<dt>instances</dt><dd>{{ job.instance_type or "?" }} &times; {{ job.instance_count }}
{% if hosts %}<span class="muted">(data from {{ hosts | join(", ") }})</span>{% endif %}</dd>
<dt>duration</dt><dd>{{ duration }}</dd>
{% if hyperparameters %}<dt>hyperparameters</dt><dd><code>{{ hyperparameters }}</code></dd>
{% endif %}
</dl>
{% if skipped_lines %}<p class="muted">{{ skipped_lines }} malformed line(s) in the debug
files were skipped (a process killed mid-write leaves half a line).</p>{% endif %}

<h2 id="rules">Rules</h2>
{% if rules %}
<table>
<tr><th>rule</th><th>status</th><th>what it found</th><th>what to do</th></tr>
{% for rule in rules %}
<tr>
<td><b>{{ rule.rule_configuration_name }}</b>
{% if rule.rule_configuration_name != rule.rule %}<span class="muted">({{ rule.rule }})</span>
{% endif %}<br><span class="muted">{{ rule.kind }}: {{ rule.summary }}</span></td>
<td><span class="badge {{ rule.status }}">{{ rule.status }}</span></td>
<td>{{ rule.status_details or "" }}</td>
<td>{{ rule.todo }}</td>
</tr>
{% endfor %}
</table>
{% else %}
<p class="nodata">No rules ran for this job. Profiler rules run by default
(<code>profiler: rules: [{rule: ProfilerReport}]</code>); debugger rules are listed under
<code>debugger: rules:</code> in the job's spec.</p>
{% endif %}

{% for section in sections %}
<h2 id="{{ section.anchor }}">{{ section.title }}</h2>
{% if section.intro %}<p class="muted">{{ section.intro }}</p>{% endif %}
{% for warning in section.warnings %}<p class="warn">{{ warning }}</p>{% endfor %}
{% for chart in section.charts %}{{ chart | safe }}{% endfor %}
{% for note in section.notes %}<p class="nodata">{{ note }}</p>{% endfor %}
{% for remark in section.remarks %}<p>{{ remark }}</p>{% endfor %}
{% if section.table %}
<table>
<tr>{% for head in section.table[0] %}<th>{{ head }}</th>{% endfor %}</tr>
{% for row in section.table[1:] %}
<tr>{% for cell in row %}<td{% if cell is number %} class="num"{% endif %}>{{ cell }}</td>
{% endfor %}</tr>
{% endfor %}
</table>
{% endif %}
{% endfor %}
</body>
</html>
"""
)


@dataclass
class Section:
    title: str
    anchor: str
    intro: str = ""
    charts: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    """What is missing, why, and how to get it."""
    remarks: list[str] = field(default_factory=list)
    """Plain observations under the charts."""
    warnings: list[str] = field(default_factory=list)
    table: list[list[Any]] = field(default_factory=list)
    """Header row first, then the rows."""


def profiler_report(job: dict[str, Any], trial: Trial, rules: list[dict[str, Any]]) -> str:
    """The report page of training job ``job`` (as ``job_to_dict`` gives it), its debug
    and profiler data ``trial`` and its rule statuses (``RuleState.as_json()``)."""
    charts = Charts()
    t0 = _job_start(job, trial)
    sections = [
        system_section(trial, t0, charts),
        step_time_section(trial, charts),
        phase_section(trial, charts),
        curves_section(job, trial, charts),
        gradients_section(trial, charts),
    ]
    return _PAGE.render(
        base_style=REPORT_STYLE,
        job=_header(job),
        status_class={"Failed": "IssuesFound", "Completed": "NoIssuesFound"}.get(
            str(job.get("status")), "InProgress"
        ),
        hosts=sorted(trial.hosts),
        duration=_duration(job, trial),
        hyperparameters=", ".join(
            f"{k}={v}" for k, v in sorted((job.get("hyperparameters") or {}).items())
        ),
        skipped_lines=trial.skipped_lines,
        rules=rule_rows(rules),
        sections=sections,
    )


# Header -------------------------------------------------------------------------------------


def _header(job: dict[str, Any]) -> dict[str, Any]:
    """The job's fields the header shows, each present (a job that never started lacks
    some)."""
    keys = ("name", "status", "secondary_status", "failure_reason", "instance_type")
    return {**{k: job.get(k) or "" for k in keys}, "instance_count": job.get("instance_count") or 1}


def rule_rows(rules: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rules, IssuesFound first (then Error, InProgress, NoIssuesFound), each with the
    thing to do: the advice when it fired, what it checks otherwise."""
    rows = []
    for rule in sorted(rules, key=lambda r: STATUS_ORDER.get(str(r.get("status")), 9)):
        status = rule.get("status", "")
        if status == "IssuesFound":
            todo = rule.get("advice") or ""
        elif status == "Error":
            todo = "The rule itself failed; check its parameters (the training went on)."
        else:
            todo = "Nothing."
        rows.append(
            {
                "rule_configuration_name": rule.get("rule_configuration_name")
                or rule.get("rule", "?"),
                "rule": rule.get("rule", ""),
                "kind": rule.get("kind", ""),
                "summary": rule.get("summary", ""),
                "status": status,
                "status_details": rule.get("status_details", ""),
                "todo": todo,
            }
        )
    return rows


def _timestamp(value: Any) -> float | None:
    """Epoch seconds of an ISO time; a naive one is UTC (SQLite drops the zone kennel
    stored)."""
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(str(value))
    except ValueError:
        return None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


def _data_times(trial: Trial) -> list[float]:
    times = [float(s["t"]) for h in trial.hosts.values() for s in h.system if "t" in s]
    times += [float(s["start"]) for h in trial.hosts.values() for s in h.framework if "start" in s]
    return times


def _job_start(job: dict[str, Any], trial: Trial) -> float:
    """When training started (the x origin of the timelines): the job's own time, else
    the first sample's."""
    started = _timestamp(job.get("training_started_at")) or _timestamp(job.get("created_at"))
    if started is not None:
        return started
    times = _data_times(trial)
    return min(times) if times else 0.0


def _duration(job: dict[str, Any], trial: Trial) -> str:
    start = _timestamp(job.get("training_started_at"))
    end = _timestamp(job.get("ended_at"))
    if start is not None and end is not None:
        return _format_seconds(end - start)
    times = _data_times(trial)
    if start is not None and times:
        return f"{_format_seconds(max(times) - start)} so far (to the last sample; still running)"
    if times:
        return f"{_format_seconds(max(times) - min(times))} of recorded data"
    return "unknown (the job has not started training)"


def _format_seconds(seconds: float) -> str:
    seconds = max(0.0, seconds)
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m {secs:02d}s" if hours else f"{minutes}m {secs:02d}s"


# Shared helpers ------------------------------------------------------------------------------


def thin(xs: Sequence[float], ys: Sequence[float], limit: int = MAX_POINTS) -> tuple[Any, Any]:
    """At most ``limit`` points of a line, keeping each bucket's lowest and highest point
    (in x order) so a spike or a dip is still drawn. Returns numpy arrays."""
    x = np.asarray(xs, dtype=float)
    y = np.asarray(ys, dtype=float)
    if len(x) <= limit:
        return x, y
    keep: list[int] = []
    for bucket in np.array_split(np.arange(len(x)), max(1, limit // 2)):
        values = y[bucket]
        if np.all(np.isnan(values)):
            keep.append(int(bucket[0]))
            continue
        low, high = int(bucket[np.nanargmin(values)]), int(bucket[np.nanargmax(values)])
        keep += sorted({low, high})
    index = np.asarray(keep)
    return x[index], y[index]


def _host_colour(hosts: Sequence[str], host: str) -> str:
    colour: str = HOST_COLOURS[hosts.index(host) % len(HOST_COLOURS)]
    return colour


def _time_unit(span: float) -> tuple[float, str]:
    if span > 3 * 3600:
        return 3600.0, "hours"
    if span > 600:
        return 60.0, "minutes"
    return 1.0, "seconds"


def _mean(values: Any) -> float | None:
    if isinstance(values, list | tuple):
        numbers = [float(v) for v in values if isinstance(v, int | float)]
        return sum(numbers) / len(numbers) if numbers else None
    return None


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) else None


# System utilisation ---------------------------------------------------------------------------


def system_section(trial: Trial, t0: float, charts: Charts) -> Section:
    section = Section(
        "System utilisation",
        "system",
        intro=(
            "Per instance over time since training started. CPU: solid is the instance "
            "(mean over its cores), dashed the training script's processes (as a share of "
            "all cores). I/O: solid read, dashed write. GPU: solid utilisation, dashed memory."
        ),
    )
    hosts = sorted(h for h, data in trial.hosts.items() if data.system)
    if not hosts:
        section.intro = ""
        section.notes.append(
            "No system metrics: the instance monitor writes system.jsonl while the profiler "
            "is on (it is by default; profiler: enabled: true, interval_ms: 500). A job that "
            "ended before the first sample, or ran with the profiler off, has none."
        )
        return section
    gpu = trial.has_gpu
    section.charts.append(charts.html(system_figure(trial, hosts, t0, gpu=gpu)))
    if not gpu:
        section.notes.append("No GPU on these instances (or none visible to the monitor).")
    return section


def system_figure(trial: Trial, hosts: Sequence[str], t0: float, *, gpu: bool) -> go.Figure:
    """One panel per resource, stacked on a shared time axis; one colour per host."""
    titles = ["CPU %", "memory %", "disk I/O MB/s"] + (["GPU %"] if gpu else [])
    figure = make_subplots(
        rows=len(titles), cols=1, shared_xaxes=True, subplot_titles=titles, vertical_spacing=0.06
    )
    span = max(float(s["t"]) for h in hosts for s in trial.system(h) if "t" in s) - t0
    scale, unit = _time_unit(span)
    for host in hosts:
        samples = [s for s in trial.system(host) if isinstance(s.get("t"), int | float)]
        t = [(float(s["t"]) - t0) / scale for s in samples]
        colour = _host_colour(hosts, host)
        first = True
        for row, label, values, dash in _system_lines(samples, gpu=gpu):
            points = [(x, v) for x, v in zip(t, values, strict=True) if v is not None]
            if not points:
                continue
            x, y = thin([p[0] for p in points], [p[1] for p in points])
            figure.add_trace(
                go.Scatter(
                    x=x,
                    y=y,
                    mode="lines",
                    name=host,
                    legendgroup=host,
                    showlegend=first,
                    line={"color": colour, "dash": dash, "width": 1.5},
                    hovertemplate=f"{html.escape(host)} {label}: %{{y:.1f}}<extra></extra>",
                ),
                row=row,
                col=1,
            )
            first = False
    for row in (1, 2) + ((4,) if gpu else ()):
        figure.update_yaxes(range=[0, 105], row=row, col=1)
    figure.update_xaxes(title_text=f"time since training started ({unit})", row=len(titles))
    figure.update_layout(
        height=200 + 190 * len(titles),
        margin={"t": 40, "b": 50},
        legend={"orientation": "h", "y": 1.06, "x": 0},
        hovermode="x unified",
    )
    return figure


def _system_lines(
    samples: Sequence[dict[str, Any]], *, gpu: bool
) -> list[tuple[int, str, list[float | None], str]]:
    """(panel row, label, value per sample or None, dash) of each line of one host."""
    lines: list[tuple[int, str, list[float | None], str]] = [
        (1, "CPU (instance)", [_mean(s.get("cpu")) for s in samples], "solid"),
        (1, "CPU (script)", [_script_cpu(s) for s in samples], "dash"),
        (2, "memory", [_number(s.get("mem_pct")) for s in samples], "solid"),
        (3, "read", [_number(s.get("read_mb_s")) for s in samples], "solid"),
        (3, "write", [_number(s.get("write_mb_s")) for s in samples], "dash"),
    ]
    if gpu:
        lines += [
            (4, "GPU", [_mean(s.get("gpu")) for s in samples], "solid"),
            (4, "GPU memory", [_mean(s.get("gpu_mem_pct")) for s in samples], "dash"),
        ]
    return lines


def _script_cpu(sample: dict[str, Any]) -> float | None:
    proc = _number(sample.get("proc_cpu"))
    cpus = _number(sample.get("cpus")) or (
        float(len(sample["cpu"])) if isinstance(sample.get("cpu"), list) and sample["cpu"] else None
    )
    if proc is None or not cpus:
        return None
    return proc / cpus


# Step time -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StepStats:
    host: str
    steps: list[int]
    totals: list[float]
    median: float
    threshold: float
    outliers: list[int]
    """Indexes into ``steps``/``totals``."""


def step_stats(host: str, records: Sequence[dict[str, Any]]) -> StepStats | None:
    """Step durations of one host and its outliers: slower than median + 3 robust sigma
    (1.4826 x the median absolute deviation), and than twice the median."""
    rows = [
        (int(r.get("step", i)), float(r["total"]))
        for i, r in enumerate(records)
        if isinstance(r.get("total"), int | float)
    ]
    if not rows:
        return None
    totals = np.asarray([t for _, t in rows])
    median = float(np.median(totals))
    sigma = 1.4826 * float(np.median(np.abs(totals - median)))
    threshold = max(median + OUTLIER_SIGMAS * sigma, OUTLIER_MEDIAN_FACTOR * median)
    outliers = [int(i) for i in np.flatnonzero(totals > threshold)]
    return StepStats(host, [s for s, _ in rows], totals.tolist(), median, threshold, outliers)


def step_time_section(trial: Trial, charts: Charts) -> Section:
    section = Section(
        "Step time",
        "steps",
        intro=(
            "How long each training step took (data loading through optimizer step). "
            f"Outliers (red): slower than the median + {OUTLIER_SIGMAS:g} robust sigma and "
            f"than {OUTLIER_MEDIAN_FACTOR:g}x the median, per instance."
        ),
    )
    hosts = sorted(trial.hosts)
    stats = [s for h in hosts if (s := step_stats(h, trial.steps(h))) is not None]
    if not stats:
        section.intro = ""
        section.notes.append(_no_framework_note())
        return section
    section.charts.append(charts.html(step_time_figure(stats, hosts)))
    outliers = [(s, i) for s in stats for i in s.outliers]
    worst = sorted(outliers, key=lambda p: -p[0].totals[p[1]])[:WORST_STEPS]
    if not worst:
        section.remarks.append(
            "No outlier steps: every step was within "
            + ", ".join(f"{s.threshold:.3g} s on {s.host}" for s in stats)
            + "."
        )
        return section
    by_step = {h: {int(r.get("step", -1)): r for r in trial.steps(h)} for h in hosts}
    phases = [_largest_phase(by_step[s.host].get(s.steps[i], {})) for s, i in worst]
    section.remarks.append(_outlier_remark(stats, len(worst), phases))
    section.table = [["instance", "step", "seconds", "x median", "largest phase"]]
    for (s, i), (phase, seconds) in zip(worst, phases, strict=True):
        section.table.append(
            [
                s.host,
                s.steps[i],
                round(s.totals[i], 4),
                round(s.totals[i] / s.median, 1) if s.median > 0 else "",
                f"{PHASE_LABELS[phase]} ({seconds:.3g} s)" if seconds > 0 else "",
            ]
        )
    return section


def _outlier_remark(
    stats: Sequence[StepStats], shown: int, phases: Sequence[tuple[str, float]]
) -> str:
    count = sum(len(s.outliers) for s in stats)
    remark = (
        f"{count} outlier step(s); the slowest {shown} below, with the phase that took "
        "longest. A slow first step is usually warm-up (memory allocation, compilation, "
        "workers starting)."
    )
    saving = sum(1 for phase, _ in phases if phase == "hook")
    if saving:
        remark += (
            f" In {saving} of them the debugger hook took longest: those are its save steps "
            "(every debugger.save_interval steps); a larger interval or fewer collections "
            "make them rarer or cheaper."
        )
    return remark


def step_time_figure(stats: Sequence[StepStats], hosts: Sequence[str]) -> go.Figure:
    """Left: the histogram (binned here, log counts so single slow steps show); right:
    each step's duration in order, outliers as red crosses."""
    figure = make_subplots(
        rows=1,
        cols=2,
        column_widths=[0.45, 0.55],
        subplot_titles=["distribution (count, log scale)", "over the run"],
        horizontal_spacing=0.08,
    )
    every = np.concatenate([np.asarray(s.totals) for s in stats])
    edges = np.histogram_bin_edges(every, bins=min(60, max(5, len(every) // 4)))
    for s in stats:
        colour = _host_colour(hosts, s.host)
        counts, _ = np.histogram(s.totals, bins=edges)
        figure.add_trace(
            go.Bar(
                x=(edges[:-1] + edges[1:]) / 2,
                y=counts,
                width=np.diff(edges),
                name=s.host,
                legendgroup=s.host,
                marker={"color": colour},
                opacity=0.6 if len(stats) > 1 else 0.85,
                hovertemplate=f"{html.escape(s.host)}: %{{y}} steps at ~%{{x:.3g}} s"
                "<extra></extra>",
            ),
            row=1,
            col=1,
        )
        figure.add_vline(
            x=s.threshold,
            line={"color": colour, "dash": "dot"},
            row=1,
            col=1,
        )
        x, y = thin(s.steps, s.totals)
        figure.add_trace(
            go.Scatter(
                x=x,
                y=y,
                mode="lines",
                name=s.host,
                legendgroup=s.host,
                showlegend=False,
                line={"color": colour, "width": 1},
                hovertemplate=f"{html.escape(s.host)} step %{{x}}: %{{y:.3g}} s<extra></extra>",
            ),
            row=1,
            col=2,
        )
    outliers = [(s.host, s.steps[i], s.totals[i]) for s in stats for i in s.outliers]
    if outliers:
        figure.add_trace(
            go.Scatter(
                x=[o[1] for o in outliers[:MAX_POINTS]],
                y=[o[2] for o in outliers[:MAX_POINTS]],
                text=[o[0] for o in outliers[:MAX_POINTS]],
                mode="markers",
                name="outlier step",
                marker={"color": "#d62728", "symbol": "x", "size": 9},
                hovertemplate="%{text} step %{x}: %{y:.3g} s (outlier)<extra></extra>",
            ),
            row=1,
            col=2,
        )
    figure.update_yaxes(type="log", dtick=1, title_text="steps", row=1, col=1)
    figure.update_xaxes(title_text="step duration (s); dotted: outlier threshold", row=1, col=1)
    figure.update_yaxes(title_text="seconds", rangemode="tozero", row=1, col=2)
    figure.update_xaxes(title_text="step", row=1, col=2)
    figure.update_layout(
        height=420, barmode="overlay", margin={"t": 40}, legend={"orientation": "h", "y": -0.2}
    )
    return figure


def _largest_phase(record: dict[str, Any]) -> tuple[str, float]:
    """The phase of a step record that took longest, and its seconds."""
    return max(((p, _number(record.get(p)) or 0.0) for p in PHASES), key=lambda p: p[1])


def _no_framework_note() -> str:
    return (
        "No step timings: the hook writes framework.jsonl when the training script "
        "registers its model with it (hook = debugger.get_hook(); "
        "hook.register_module(model)) and steps a torch optimizer, with the profiler's "
        "framework_metrics on (the default)."
    )


# Time split by phase -------------------------------------------------------------------------


def phase_shares(records: Sequence[dict[str, Any]]) -> dict[str, float]:
    """Each phase's share of the summed step time (``other`` is what the phases miss)."""
    total = sum(_number(r.get("total")) or 0.0 for r in records)
    if total <= 0:
        return {}
    shares = {p: sum(_number(r.get(p)) or 0.0 for r in records) / total for p in PHASES}
    shares["other"] = max(0.0, 1.0 - sum(shares.values()))
    return shares


def phase_section(trial: Trial, charts: Charts) -> Section:
    section = Section(
        "Time split by phase",
        "phases",
        intro=(
            "Share of all training step time spent in each phase, per instance. Data "
            "loading is the wait for the next batch: when it is large the model waits on "
            "input, not on compute."
        ),
    )
    hosts = sorted(trial.hosts)
    shares = {h: s for h in hosts if (s := phase_shares(trial.steps(h)))}
    if not shares:
        section.intro = ""
        section.notes.append(_no_framework_note())
        return section
    labels = {h: f"{h}<br>{_mean_step(trial.steps(h)) * 1000:.3g} ms/step" for h in shares}
    figure = go.Figure()
    for phase in (*PHASES, "other"):
        values = [shares[h][phase] * 100 for h in shares]
        if max(values) < 0.05:
            continue
        figure.add_trace(
            go.Bar(
                y=[labels[h] for h in shares],
                x=values,
                orientation="h",
                name=PHASE_LABELS[phase],
                marker={"color": PHASE_COLOURS[phase]},
                text=[f"{v:.0f}%" if v >= 4 else "" for v in values],
                textposition="inside",
                insidetextanchor="middle",
                hovertemplate=f"{PHASE_LABELS[phase]}: %{{x:.1f}}%<extra>%{{y}}</extra>",
            )
        )
    figure.update_layout(
        barmode="stack",
        height=160 + 60 * len(shares),
        xaxis={"title": "% of step time", "range": [0, 100]},
        yaxis={"autorange": "reversed"},
        margin={"t": 30, "l": 130},
        legend={
            "orientation": "h",
            "y": -0.35 if len(shares) < 3 else -0.2,
            "traceorder": "normal",
        },
    )
    section.charts.append(charts.html(figure))
    for host, share in shares.items():
        if share["data"] >= DATA_BOTTLENECK_SHARE:
            section.warnings.append(
                f"{host}: data loading takes {share['data']:.0%} of step time. The training "
                "loop waits for input: use more DataLoader workers (num_workers), "
                "pin_memory and prefetching, cache or pre-decode the data, or read it from "
                "faster storage."
            )
    return section


def _mean_step(records: Sequence[dict[str, Any]]) -> float:
    totals = [t for r in records if (t := _number(r.get("total"))) is not None]
    return sum(totals) / len(totals) if totals else 0.0


# Training and validation curves -----------------------------------------------------------------


def smooth(values: Sequence[float]) -> list[float]:
    """An exponential moving average over about 2 % of the points (none for a few)."""
    alpha = min(1.0, 2.0 / (max(1, len(values) // 50) + 1))
    out: list[float] = []
    level: float | None = None
    for value in values:
        if not math.isfinite(value):
            out.append(value)
            continue
        level = value if level is None else alpha * value + (1 - alpha) * level
        out.append(level)
    return out


def curves_section(job: dict[str, Any], trial: Trial, charts: Charts) -> Section:
    section = Section("Training and validation loss", "loss")
    train = trial.losses("train")
    evals = trial.losses("eval")
    if train or evals:
        section.charts.append(charts.html(loss_figure(train, evals)))
        if not evals:
            section.notes.append(
                "No validation loss: the hook records one per evaluation pass between "
                "hook.set_mode(debugger.modes.EVAL) and set_mode(debugger.modes.TRAIN)."
            )
    else:
        section.notes.append(
            "No losses recorded: the training script gives them to the hook with "
            "hook.register_loss(criterion) (an nn.Module loss) or hook.record_loss(loss)."
        )
        metrics = job.get("final_metrics") or {}
        if metrics:
            section.remarks.append("The job's final metrics, from its log, are below.")
            section.table = [["metric", "final value"]] + [
                [name, value] for name, value in sorted(metrics.items())
            ]
    scalars = scalar_figure(trial)
    if scalars is not None:
        section.charts.append(charts.html(scalars))
    return section


def loss_figure(train: list[tuple[int, float]], evals: list[tuple[int, float]]) -> go.Figure:
    figure = go.Figure()
    if train:
        steps = [s for s, _ in train]
        values = [v for _, v in train]
        smoothed = smooth(values)
        x, y = thin(steps, values)
        faint = smoothed != values
        figure.add_trace(
            go.Scatter(
                x=x,
                y=y,
                mode="lines",
                name="train loss",
                line={"color": "rgba(31,119,180,0.3)" if faint else "#1f77b4", "width": 1.5},
            )
        )
        if faint:
            x, y = thin(steps, smoothed)
            figure.add_trace(
                go.Scatter(
                    x=x, y=y, mode="lines", name="train loss (smoothed)", line={"color": "#1f77b4"}
                )
            )
    if evals:
        x, y = thin([s for s, _ in evals], [v for _, v in evals])
        figure.add_trace(
            go.Scatter(
                x=x,
                y=y,
                mode="lines+markers",
                name="validation loss (mean per pass)",
                line={"color": "#ff7f0e"},
                marker={"size": 8},
            )
        )
    positive = all(v > 0 for _, v in train + evals)
    spread = [v for _, v in train + evals]
    log = positive and spread and max(spread) / min(spread) > 50
    figure.update_layout(
        height=420,
        xaxis_title="training step",
        yaxis_title="loss" + (" (log scale)" if log else ""),
        yaxis_type="log" if log else "linear",
        margin={"t": 30},
        legend={"orientation": "h", "y": -0.2},
    )
    return figure


def scalar_figure(trial: Trial) -> go.Figure | None:
    """What the script saved with ``hook.save_scalar``: one small panel per name."""
    series: dict[str, dict[str, list[tuple[float, float]]]] = {}
    for record in trial.main.scalars:
        value, step = _number(record.get("value")), _number(record.get("step"))
        if value is None or step is None or "name" not in record:
            continue
        by_mode = series.setdefault(str(record["name"]), {})
        by_mode.setdefault(str(record.get("mode", "train")), []).append((step, value))
    if not series:
        return None
    names = sorted(series)[:MAX_SCALARS]
    cols = min(3, len(names))
    rows = math.ceil(len(names) / cols)
    figure = make_subplots(rows=rows, cols=cols, subplot_titles=names)
    for index, name in enumerate(names):
        for mode, points in sorted(series[name].items()):
            x, y = thin([p[0] for p in sorted(points)], [p[1] for p in sorted(points)])
            figure.add_trace(
                go.Scatter(
                    x=x,
                    y=y,
                    mode="lines+markers" if len(x) < 50 else "lines",
                    name=mode,
                    legendgroup=mode,
                    showlegend=index == 0,
                    line={"color": "#1f77b4" if mode == "train" else "#ff7f0e"},
                ),
                row=index // cols + 1,
                col=index % cols + 1,
            )
    figure.update_layout(height=80 + 240 * rows, margin={"t": 50}, title="saved scalars")
    return figure


# Gradients --------------------------------------------------------------------------------------


def gradients_section(trial: Trial, charts: Charts) -> Section:
    section = Section(
        "Gradient norms per layer",
        "gradients",
        intro=(
            "The L2 norm of each parameter's gradient at the saved steps (log10 scale). "
            "Vanishing gradients fade to dark; exploding ones glow and grow over steps."
        ),
    )
    records = [r for r in trial.tensor_records() if isinstance(r.get("gradients"), dict)]
    records = [r for r in records if r["gradients"]]
    if not records:
        section.intro = ""
        section.notes.append(
            "No gradients saved: "
            + (
                "the hook saved tensors but not the gradients collection; add gradients "
                "to debugger.collections."
                if trial.tensor_records()
                else "the hook saves them every debugger.save_interval steps when the "
                "job's debugger.collections include gradients and the script registers "
                "its model (hook.register_module(model))."
            )
        )
        return section
    layers: list[str] = []
    for record in records:
        layers += [n for n in record["gradients"] if n not in layers]
    shown = _spread(layers, MAX_LAYERS)
    records = sorted(records, key=lambda r: int(r.get("step", 0)))
    columns = _spread(records, MAX_HEATMAP_STEPS)
    norms = [
        [_number((r["gradients"].get(layer) or {}).get("norm")) for r in columns] for layer in shown
    ]
    z = [
        [math.log10(v) if v is not None and v > 0 and math.isfinite(v) else None for v in row]
        for row in norms
    ]
    text = [[("" if v is None else f"{v:.3g}") for v in row] for row in norms]
    figure = go.Figure(
        go.Heatmap(
            x=[int(r.get("step", 0)) for r in columns],
            y=shown,
            z=z,
            text=text,
            colorscale="Viridis",
            colorbar={"title": {"text": "log10 norm"}},
            hovertemplate="%{y} step %{x}: norm %{text}<extra></extra>",
            xgap=1 if len(columns) < 60 else 0,
        )
    )
    figure.update_layout(
        height=160 + 24 * len(shown),
        xaxis_title="training step",
        yaxis={"autorange": "reversed", "automargin": True},
        margin={"t": 30},
    )
    section.charts.append(charts.html(figure))
    if len(shown) < len(layers):
        section.remarks.append(
            f"Showing {len(shown)} of {len(layers)} parameters, spread evenly from the "
            "first layer to the last."
        )
    return section


def _spread(items: Sequence[T], limit: int) -> list[T]:
    """At most ``limit`` of ``items``, evenly spaced, always the first and the last."""
    if len(items) <= limit:
        return list(items)
    picks = sorted({round(i * (len(items) - 1) / (limit - 1)) for i in range(limit)})
    return [items[i] for i in picks]
