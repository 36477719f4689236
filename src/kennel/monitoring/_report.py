"""A monitoring run's report: one self-contained HTML page (Plotly inlined, images as
data: URIs), so it opens offline and can be attached to an alarm e-mail.

Sections, in the order an on-call person asks: what did this run find (each check, its
statistic against its threshold, the evidence), has it been drifting for a while (the
metrics of earlier runs over time), which classes are predicted more or less than in the
baseline, what do the window's images look like, and how accurate is the model where
labels arrived.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence
from typing import Any

import jinja2
import plotly.graph_objects as go
from PIL import Image, UnidentifiedImageError
from plotly.subplots import make_subplots

from kennel._charts import REPORT_STYLE, Charts
from kennel.monitoring._baseline import STATISTICS, Baseline

SECTIONS = (
    "Checks",
    "Drift over time",
    "Class mix: baseline vs now",
    "Image statistics",
    "Sample images",
    "Accuracy",
)
MAX_SAMPLES = 24
THUMBNAIL_SIDE = 160
THUMBNAIL_HEIGHT = 96
"""Samples are shown this tall, small captures scaled up (pixelated, not smoothed)."""
MAX_MATRIX_CLASSES = 40
"""Confusion matrices larger than this show the most frequent classes only."""
HISTORY_SERIES = (
    ("embedding_p_value", "embedding drift p-value", "log"),
    ("embedding_mmd", "embedding MMD²", "linear"),
    ("class_mix_psi", "class mix PSI", "linear"),
    ("confidence_mean", "mean confidence", "linear"),
    ("accuracy", "live accuracy", "linear"),
)

_PAGE = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined).from_string(
    """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Model monitoring: {{ endpoint }}</title>
<style>
{{ base_style }}
  .nodata { color: #555; background: #f6f6f6; border-left: 4px solid #bbb; padding: 0.6em 1em; }
  .badge { display: inline-block; padding: 1px 8px; border-radius: 10px; color: #fff;
           font-size: 0.85em; white-space: nowrap; }
  .violated { background: #c62828; }
  .ok { background: #2e7d32; }
  .skipped { background: #757575; }
  dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: 2px 1em; }
  dl.facts dt { color: #666; }
  dl.facts dd { margin: 0; }
  .samples { display: flex; flex-wrap: wrap; gap: 6px; }
  .samples img { height: {{ thumbnail_height }}px; width: auto; max-width: {{ thumbnail }}px;
                 border: 1px solid #ddd; image-rendering: pixelated; }
</style>
</head>
<body>
<h1>Model monitoring: {{ endpoint }}</h1>
<dl class="facts">
{% for key, value in facts %}<dt>{{ key }}</dt><dd>{{ value }}</dd>
{% endfor %}
</dl>

<h2 id="checks">Checks</h2>
{% if checks %}
<table>
<tr><th>check</th><th>result</th><th>statistic</th><th>threshold</th><th>p-value</th>
<th>n</th><th>evidence</th></tr>
{% for check in checks %}
<tr>
<td><b>{{ check.name }}</b></td>
<td><span class="badge {{ check.state }}">{{ check.state }}</span></td>
<td class="num">{{ check.statistic }}</td>
<td class="num">{{ check.threshold }}</td>
<td class="num">{{ check.p_value }}</td>
<td class="num">{{ check.n }}</td>
<td>{{ check.summary }}</td>
</tr>
{% endfor %}
</table>
{% else %}<p class="nodata">This run recorded no checks{% if failure %}:
{{ failure }}{% endif %}.</p>
{% endif %}

<h2 id="history">Drift over time</h2>
{{ history_chart | safe }}
<p class="muted">This run and up to {{ history_count }} earlier ones. Red markers: runs
with violations. The p-value panel is on a log scale; the dotted line is alpha.</p>

<h2 id="class-mix">Class mix: baseline vs now</h2>
{{ class_chart | safe }}
{% if class_note %}<p class="nodata">{{ class_note }}</p>{% endif %}

<h2 id="image-statistics">Image statistics</h2>
{% if stats_rows %}
<table>
<tr><th>statistic</th><th>baseline mean</th><th>window mean</th><th>KS</th>
<th>p (Bonferroni)</th><th></th></tr>
{% for row in stats_rows %}
<tr><td>{{ row.name }}</td><td class="num">{{ row.baseline }}</td>
<td class="num">{{ row.window }}</td>
<td class="num">{{ row.ks }}</td><td class="num">{{ row.p }}</td>
<td>{% if row.drifted %}<span class="badge violated">drifted</span>{% endif %}</td></tr>
{% endfor %}
</table>
{% else %}<p class="nodata">No image statistics for this window (it held no decodable
images, or too few).</p>{% endif %}

<h2 id="samples">Sample images</h2>
{% if samples %}<div class="samples">
{% for uri in samples %}<img src="{{ uri }}" alt="window sample {{ loop.index }}">{% endfor %}
</div>{% else %}<p class="nodata">No images were captured in this window (capture the
endpoint's Input to see them here).</p>{% endif %}

<h2 id="accuracy">Accuracy</h2>
{% if quality %}
<p>Live accuracy <b>{{ quality.accuracy }}</b> on {{ quality.n }} labelled predictions
{% if baseline_accuracy %}(baseline: {{ baseline_accuracy }} on the {{ split }}
split){% endif %}.</p>
{{ quality_chart | safe }}
<table>
<tr><th>class</th><th>precision</th><th>recall</th><th>support</th></tr>
{% for row in quality.rows %}
<tr><td>{{ row.label }}</td><td class="num">{{ row.precision }}</td>
<td class="num">{{ row.recall }}</td><td class="num">{{ row.support }}</td></tr>
{% endfor %}
</table>
{% else %}<p class="nodata">No ground truth joined to this window's predictions. Send labels
with <code>kennel endpoints labels {{ endpoint }} --file labels.jsonl</code>.</p>{% endif %}
</body>
</html>
"""
)


def render_report(
    *,
    endpoint: str,
    execution: dict[str, Any],
    history: Sequence[dict[str, Any]],
    baseline: Baseline,
    samples: Sequence[bytes],
) -> str:
    """The report page of one monitoring run.

    ``execution`` is the run as stored: ``id``, ``status``, ``started``, ``window_start``,
    ``window_end``, ``failure_reason``, ``counts`` (dict), ``result`` (``DriftResult.
    to_dict()``), ``metrics`` and ``quality`` (``model_quality(...)`` or None); missing
    keys are shown as such. ``history`` holds earlier runs (``started``, ``status``,
    ``metrics``), any order. ``samples`` are a few window images (PNG/JPEG bytes).
    """
    charts = Charts()
    result = execution.get("result") or {}
    checks = [c for c in result.get("checks", []) if isinstance(c, dict)]
    quality = execution.get("quality") or result.get("quality")
    runs = _runs(execution, history)
    class_check = _find(checks, "class_mix")
    return _PAGE.render(
        base_style=REPORT_STYLE,
        endpoint=endpoint,
        thumbnail=THUMBNAIL_SIDE,
        thumbnail_height=THUMBNAIL_HEIGHT,
        facts=_facts(execution, baseline),
        checks=[_check_row(c) for c in checks],
        failure=execution.get("failure_reason") or "",
        history_chart=charts.html(history_figure(runs, _alpha(result))),
        history_count=len(runs) - 1,
        class_chart=charts.html(class_mix_figure(baseline, class_check)),
        class_note=_class_note(class_check),
        stats_rows=_stats_rows(_find(checks, "image_statistics")),
        samples=[uri for uri in (_data_uri(s) for s in samples[:MAX_SAMPLES]) if uri],
        quality=_quality_view(quality),
        quality_chart=charts.html(confusion_figure(quality))
        if isinstance(quality, dict) and _has_quality(quality)
        else "",
        baseline_accuracy=_fmt(baseline.accuracy),
        split=baseline.split,
    )


# Facts and checks -----------------------------------------------------------------------------


def _facts(execution: dict[str, Any], baseline: Baseline) -> list[tuple[str, str]]:
    facts = [
        ("run", str(execution.get("id", "?"))),
        ("status", str(execution.get("status", "?"))),
        ("window", f"{execution.get('window_start', '?')} to {execution.get('window_end', '?')}"),
    ]
    counts = execution.get("counts") or {}
    if counts:
        facts.append(("records", ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))))
    if execution.get("failure_reason"):
        facts.append(("failure", str(execution["failure_reason"])))
    model = ", ".join(f"{k} {v}" for k, v in baseline.model.items())
    facts.append(
        (
            "baseline",
            f"{baseline.n} images of the {baseline.split} split"
            + (f" ({model})" if model else "")
            + (f", computed {baseline.created}" if baseline.created else ""),
        )
    )
    return facts


def _check_row(check: dict[str, Any]) -> dict[str, Any]:
    violated = bool(check.get("violated"))
    state = "violated" if violated else ("skipped" if check.get("note") else "ok")
    return {
        "name": check.get("name", "?"),
        "state": state,
        "statistic": _fmt(check.get("statistic")),
        "threshold": _fmt(check.get("threshold")),
        "p_value": _fmt(check.get("p_value")),
        "n": check.get("n", ""),
        "summary": check.get("note") or _evidence_summary(check),
    }


def _evidence_summary(check: dict[str, Any]) -> str:
    evidence = check.get("evidence") or {}
    name = check.get("name")
    if name == "image_statistics":
        drifted = evidence.get("drifted") or []
        return "drifted: " + ", ".join(drifted) if drifted else "no statistic moved"
    if name == "class_mix":
        shifts = evidence.get("top_shifts") or []
        parts = [
            f"{s['class']} {s['baseline_share']:.0%} → {s['window_share']:.0%}" for s in shifts[:3]
        ]
        return f"vs {evidence.get('reference', 'baseline')}: " + "; ".join(parts)
    if name == "confidence":
        return f"mean {_fmt(evidence.get('baseline_mean'))} → {_fmt(evidence.get('window_mean'))}"
    if name == "embedding_drift":
        return (
            f"{evidence.get('window_samples', '?')} vs {evidence.get('baseline_samples', '?')} "
            f"samples in {evidence.get('dimensions', '?')} dimensions, "
            f"{evidence.get('permutations', '?')} permutations"
        )
    return ""


def _find(checks: list[dict[str, Any]], name: str) -> dict[str, Any] | None:
    return next((c for c in checks if c.get("name") == name), None)


def _alpha(result: dict[str, Any]) -> float:
    value = (result.get("thresholds") or {}).get("alpha", 0.01)
    return float(value) if isinstance(value, int | float) else 0.01


# Drift over time ------------------------------------------------------------------------------


def _runs(execution: dict[str, Any], history: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Earlier runs plus this one, oldest first, each once."""
    seen = {execution.get("id")} if execution.get("id") is not None else set()
    earlier = [run for run in history if run.get("id") is None or run.get("id") not in seen]
    return sorted([*earlier, execution], key=lambda run: str(run.get("started") or ""))


def _metrics_of(run: dict[str, Any]) -> dict[str, Any]:
    metrics = dict(run.get("metrics") or {})
    quality = run.get("quality") or {}
    if "accuracy" not in metrics and isinstance(quality.get("accuracy"), int | float):
        metrics["accuracy"] = quality["accuracy"]
    return metrics


def history_figure(runs: list[dict[str, Any]], alpha: float) -> go.Figure:
    series = [
        (key, title, scale)
        for key, title, scale in HISTORY_SERIES
        if any(isinstance(_metrics_of(r).get(key), int | float) for r in runs)
    ] or [HISTORY_SERIES[0]]
    figure = make_subplots(
        rows=len(series),
        cols=1,
        shared_xaxes=True,
        subplot_titles=[title for _, title, _ in series],
        vertical_spacing=0.08,
    )
    times = [str(r.get("started") or f"run {i + 1}") for i, r in enumerate(runs)]
    for row, (key, title, scale) in enumerate(series, start=1):
        values = [_number(_metrics_of(r).get(key)) for r in runs]
        colours = [
            "#c62828" if r.get("status") == "CompletedWithViolations" else "#1f77b4" for r in runs
        ]
        figure.add_trace(
            go.Scatter(
                x=times,
                y=values,
                mode="lines+markers",
                name=title,
                marker={"color": colours, "size": 8},
                line={"color": "#1f77b4"},
                connectgaps=True,
                showlegend=False,
            ),
            row=row,
            col=1,
        )
        if scale == "log":
            figure.update_yaxes(type="log", row=row, col=1)
            figure.add_hline(y=alpha, line_dash="dot", line_color="#c62828", row=row, col=1)
    figure.update_layout(height=140 + 170 * len(series), margin={"t": 40})
    return figure


# Class mix -----------------------------------------------------------------------------------


def class_mix_figure(baseline: Baseline, check: dict[str, Any] | None) -> go.Figure:
    classes = baseline.classes
    figure = go.Figure()
    bars: list[tuple[str, list[float], str]] = [
        ("train split labels", baseline.class_counts.tolist(), "#9e9e9e"),
        ("baseline predictions", baseline.predicted_counts.tolist(), "#1f77b4"),
    ]
    window = ((check or {}).get("evidence") or {}).get("window_counts")
    if isinstance(window, dict) and window:
        counts = [float(window.get(c, 0)) for c in classes]
        bars.append(("this window's predictions", counts, "#d62728"))
    for name, counts, colour in bars:
        total = float(sum(counts)) or 1.0
        figure.add_trace(
            go.Bar(x=classes, y=[c / total for c in counts], name=name, marker_color=colour)
        )
    figure.update_layout(
        barmode="group",
        height=420,
        yaxis={"title": "share", "tickformat": ".0%"},
        margin={"t": 30},
        legend={"orientation": "h", "y": 1.1},
    )
    return figure


def _class_note(check: dict[str, Any] | None) -> str:
    if check is None:
        return "This run did not check the class mix."
    note = check.get("note")
    return f"Class mix not checked: {note}." if note else ""


def _stats_rows(check: dict[str, Any] | None) -> list[dict[str, Any]]:
    per_stat = ((check or {}).get("evidence") or {}).get("statistics") or {}
    drifted = set(((check or {}).get("evidence") or {}).get("drifted") or [])
    return [
        {
            "name": name,
            "baseline": _fmt(per_stat[name].get("baseline_mean")),
            "window": _fmt(per_stat[name].get("window_mean")),
            "ks": _fmt(per_stat[name].get("ks")),
            "p": _fmt(per_stat[name].get("p_adjusted")),
            "drifted": name in drifted,
        }
        for name in STATISTICS
        if name in per_stat
    ]


# Samples -------------------------------------------------------------------------------------


def _data_uri(raw: bytes) -> str | None:
    """A PNG thumbnail of ``raw`` as a data: URI (re-encoded, so whatever a client sent
    is shown as a plain small PNG); None when it is not an image."""
    try:
        with Image.open(io.BytesIO(raw)) as image:
            image.thumbnail((THUMBNAIL_SIDE, THUMBNAIL_SIDE))
            buffer = io.BytesIO()
            image.convert("RGB").save(buffer, format="PNG")
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError):
        return None
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


# Accuracy ------------------------------------------------------------------------------------


def _has_quality(quality: Any) -> bool:
    return isinstance(quality, dict) and bool(quality.get("n"))


def _quality_view(quality: Any) -> dict[str, Any] | None:
    if not _has_quality(quality):
        return None
    per_class = quality.get("per_class") or {}
    return {
        "n": quality["n"],
        "accuracy": _fmt(quality.get("accuracy")),
        "rows": [
            {
                "label": label,
                "precision": _fmt(v.get("precision")),
                "recall": _fmt(v.get("recall")),
                "support": v.get("support", 0),
            }
            for label, v in per_class.items()
            if v.get("support") or v.get("predicted")
        ],
    }


def confusion_figure(quality: dict[str, Any]) -> go.Figure:
    labels: list[str] = list(quality.get("labels") or [])
    matrix: list[list[int]] = quality.get("confusion_matrix") or []
    keep = list(range(len(labels)))
    if len(labels) > MAX_MATRIX_CLASSES:
        weight = [sum(matrix[i]) + sum(row[i] for row in matrix) for i in keep]
        keep = sorted(sorted(keep, key=lambda i: -weight[i])[:MAX_MATRIX_CLASSES])
    shown = [labels[i] for i in keep]
    z = [[matrix[i][j] for j in keep] for i in keep]
    figure = go.Figure(
        go.Heatmap(
            x=shown,
            y=shown,
            z=z,
            colorscale="Blues",
            text=z,
            texttemplate="%{text}",
            hovertemplate="true %{y}, predicted %{x}: %{z}<extra></extra>",
        )
    )
    figure.update_layout(
        height=180 + 22 * len(shown),
        xaxis_title="predicted",
        yaxis={"title": "true label", "autorange": "reversed", "automargin": True},
        margin={"t": 30},
    )
    return figure


# Formatting ------------------------------------------------------------------------------------


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _fmt(value: Any) -> str:
    number = _number(value)
    if number is None:
        return "" if value is None else str(value)
    if number != 0 and (abs(number) < 1e-3 or abs(number) >= 1e5):
        return f"{number:.3g}"
    return f"{number:.4g}"
