"""A tuning job as one self-contained HTML page: how the search went and what mattered.

Three parts, in the order a user asks the questions: did the search improve (each
trial's final objective by launch order, with the best-so-far line, pruned and failed
trials marked), which hyperparameters mattered (Optuna's parameter importances on the
study), and which trial to take (the trials sorted by objective). Plotly is inlined
once, so the page opens offline and can be mailed around.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import jinja2
import optuna
import plotly.graph_objects as go

from kennel.tuning._search import REVERSE_PREFIX

if TYPE_CHECKING:
    from kennel.tuning._service import TuningService

MIN_TRIALS_FOR_IMPORTANCE = 2

_PAGE = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined).from_string(
    """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Tuning job {{ job.name }}</title>
<style>
  body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }
  table { border-collapse: collapse; width: 100%; font-size: 0.9em; }
  th, td { border-bottom: 1px solid #ddd; padding: 4px 8px; text-align: left; }
  tr.best { background: #e6f4ea; font-weight: bold; }
  .muted { color: #666; }
</style>
</head>
<body>
<h1>Tuning job {{ job.name }}</h1>
<p><b>{{ job.status }}</b>: {{ job.status_message }}</p>
{% if job.failure_reason %}<p style="color: #b00">{{ job.failure_reason }}</p>{% endif %}
<p>{{ job.strategy }} search, {{ job.objective.type }} <code>{{ job.objective.metric_name }}</code>;
{{ counters }}.
{% if best %}Best: <code>{{ best.training_job_name }}</code>
= {{ "%g" % best.objective.value }}.{% endif %}</p>
<h2>Objective over trials</h2>
{{ objective_chart | safe }}
<h2>Parameter importance</h2>
{% if importance_chart %}{{ importance_chart | safe }}
<p class="muted">Optuna's fANOVA importances over the completed trials (they sum to 1):
how much of the objective's variance each hyperparameter explains.</p>
{% else %}<p class="muted">{{ importance_missing }}</p>{% endif %}
<h2>Trials, best objective first</h2>
<table>
<tr><th>training job</th><th>status</th><th>{{ job.objective.metric_name }}</th>
<th>hyperparameters</th><th>note</th></tr>
{% for trial in trials %}
<tr{% if best and trial.training_job_name == best.training_job_name %} class="best"{% endif %}>
<td>{{ trial.training_job_name }}</td>
<td>{{ trial.status }}{% if trial.pruned %} (early stopped){% endif %}</td>
<td>{{ "" if trial.objective is none else "%g" % trial.objective }}</td>
<td>{% for k, v in trial.hyperparameters.items() %}{{ k }}={{ v }} {% endfor %}</td>
<td>{{ trial.failure_reason or "" }}</td>
</tr>
{% endfor %}
</table>
</body>
</html>
"""
)


def tuning_report(service: TuningService, name: str) -> str:
    """The report page of tuning job ``name`` (NotFoundError when there is none)."""
    job = service.describe(name)
    try:
        study = optuna.load_study(study_name=name, storage=service.storage())
    except KeyError:
        study = None
    return tuning_report_html(job, study)


def tuning_report_html(job: dict[str, Any], study: optuna.Study | None) -> str:
    """The page for ``job`` (as ``TuningService.describe`` returns it) and its study.

    ``study`` may be None (it was lost with an earlier optuna.db): the page then says the
    importances are missing and why, and shows the rest from the job's own trials.
    """
    trials: list[dict[str, Any]] = job["trials"]
    importances, missing = parameter_importances(study)
    return _PAGE.render(
        job=job,
        best=job.get("best_training_job"),
        counters=", ".join(f"{k.replace('_', ' ')} {v}" for k, v in job["counters"].items()),
        trials=trials,
        # The first figure carries plotly.js inline; the second reuses it.
        objective_chart=objective_figure(job).to_html(full_html=False, include_plotlyjs=True),
        importance_chart=(
            importance_figure(importances).to_html(full_html=False, include_plotlyjs=False)
            if importances
            else ""
        ),
        importance_missing=missing,
    )


def objective_figure(job: dict[str, Any]) -> go.Figure:
    """Each trial's final objective at its launch number (1-based, as in its name), the
    best-so-far step line over completed trials, pruned trials as crosses at their last
    reported value, and failed or stopped trials without an objective as red dotted lines."""
    metric = job["objective"]["metric_name"]
    maximize = job["objective"]["type"] == "Maximize"
    ordered = sorted(job["trials"], key=lambda t: t["number"])
    completed = [t for t in ordered if _succeeded(t)]
    pruned = [t for t in ordered if t["pruned"] and t["objective"] is not None]
    figure = go.Figure()
    figure.add_trace(_markers(completed, "completed", "circle", "#1f77b4"))
    if pruned:
        figure.add_trace(_markers(pruned, "early stopped (last value)", "x", "#ff7f0e"))
    best_x, best_y = _best_so_far(completed, maximize)
    figure.add_trace(
        go.Scatter(x=best_x, y=best_y, name="best so far", mode="lines", line={"shape": "hv"})
    )
    for trial in ordered:
        if not _succeeded(trial) and not (trial["pruned"] and trial["objective"] is not None):
            figure.add_vline(
                x=trial["number"] + 1,
                line={"color": "#d62728", "dash": "dot"},
                annotation_text=f"{trial['status'].lower()}",
                annotation_hovertext=html.escape(trial.get("failure_reason") or ""),
            )
    figure.update_layout(
        xaxis_title="trial (launch order)",
        yaxis_title=f"{metric} ({job['objective']['type']})",
        legend={"orientation": "h", "y": -0.2},
        height=480,
    )
    figure.update_xaxes(dtick=1 if len(ordered) <= 30 else None)
    return figure


def _succeeded(trial: dict[str, Any]) -> bool:
    return trial["objective_status"] == "Succeeded" and trial["objective"] is not None


def _markers(trials: Sequence[dict[str, Any]], name: str, symbol: str, colour: str) -> go.Scatter:
    return go.Scatter(
        x=[t["number"] + 1 for t in trials],
        y=[t["objective"] for t in trials],
        name=name,
        mode="markers",
        marker={"symbol": symbol, "size": 10, "color": colour},
        hovertext=[_hover(t) for t in trials],
        hoverinfo="text+y",
    )


def _hover(trial: dict[str, Any]) -> str:
    params = "<br>".join(
        f"{html.escape(str(k))}={html.escape(str(v))}" for k, v in trial["hyperparameters"].items()
    )
    return f"{html.escape(trial['training_job_name'])}<br>{params}"


def _best_so_far(
    completed: Sequence[dict[str, Any]], maximize: bool
) -> tuple[list[int], list[float]]:
    xs: list[int] = []
    ys: list[float] = []
    best: float | None = None
    for trial in completed:
        value = float(trial["objective"])
        if best is None or (value > best if maximize else value < best):
            best = value
        xs.append(trial["number"] + 1)
        ys.append(best)
    return xs, ys


def parameter_importances(study: optuna.Study | None) -> tuple[dict[str, float], str]:
    """Importances by hyperparameter name, or none and a sentence saying why.

    fANOVA with a fixed seed, so the same study always draws the same page. Names come
    back as the user wrote them (a ReverseLogarithmic range is ``1-<name>`` in the study).
    """
    if study is None:
        return {}, (
            "Parameter importance is missing: this tuning job's Optuna study was not found "
            "(optuna.db beside kennel.db was replaced or removed)."
        )
    completed = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    if len(completed) < MIN_TRIALS_FOR_IMPORTANCE:
        return {}, (
            f"Parameter importance is missing: it needs at least {MIN_TRIALS_FOR_IMPORTANCE} "
            f"completed trials to compare, and this job has {len(completed)}."
        )
    try:
        found = optuna.importance.get_param_importances(
            study, evaluator=optuna.importance.FanovaImportanceEvaluator(seed=0)
        )
    except (RuntimeError, ValueError) as exc:
        # Optuna refuses when no parameter varies across the completed trials (or they
        # share no parameter): there is nothing to attribute the objective's changes to.
        return {}, f"Parameter importance is missing: Optuna could not compute it ({exc})."
    if not found:
        return {}, (
            "Parameter importance is missing: no hyperparameter took more than one value "
            "in the completed trials."
        )
    return {_display_name(k): v for k, v in found.items()}, ""


def _display_name(key: str) -> str:
    if key.startswith(REVERSE_PREFIX):
        return f"{key[len(REVERSE_PREFIX) :]} (as 1 - value)"
    return key


def importance_figure(importances: dict[str, float]) -> go.Figure:
    """Horizontal bars, most important on top."""
    names = list(importances)[::-1]
    figure = go.Figure(
        go.Bar(x=[importances[n] for n in names], y=names, orientation="h", name="importance")
    )
    figure.update_layout(
        xaxis_title="importance (fANOVA, sums to 1)",
        height=max(240, 60 + 40 * len(names)),
        margin={"l": 160},
    )
    return figure
