"""Every metric kennel keeps, in Prometheus' text exposition format (version 0.0.4).

A scrape reads running totals and the latest metric period, never the metric history:

* **On the event loop** (:func:`read_live`, no I/O): the gateway's running totals per
  endpoint variant and per function (counters and latency histograms since the server
  started, so they reset when it restarts, as Prometheus expects of a process's counters),
  the latest period's values (what ``kennel endpoints metrics`` and the autoscaler read),
  and what is running now (instances, requests in flight, busy environments).
* **In a thread** (:func:`render`): resources by status and the latest values per
  resource, from the store: training jobs (each job's latest value of every metric it
  reports, kept on its row), tuning jobs (trial counters, best objective), endpoints,
  functions and their provisioned concurrency, notebook instances, model monitoring
  (each schedule's alarm, executions by status, the latest run's figures). Per-job series cover
  the running jobs and the :data:`RECENT_JOBS` newest, so a scrape stays bounded as
  history grows.
* The gateway process itself: ``process_*`` (CPU, memory, open files) and ``python_*``.

Latency is a histogram (buckets from 100 µs to 15 min, ``kennel.store._histogram``):
averages, rates and quantiles (``histogram_quantile``) come from it; a period's average
is ``rate(..._sum) / rate(..._count)``.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.exposition import generate_latest
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import CollectorRegistry
from sqlalchemy import func, select

from kennel import __version__
from kennel.api._context import ServerContext
from kennel.endpoints._service import VariantGauge
from kennel.functions._dispatch import RuntimeGauges
from kennel.store import (
    Endpoint,
    LambdaFunction,
    LambdaProvisioned,
    MonitoringExecution,
    MonitoringSchedule,
    TrainingJob,
    TuningJob,
)
from kennel.store._histogram import HistogramSnapshot

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
RECENT_JOBS = 100
"""Training and tuning jobs that get per-job series besides the running ones."""
ACTIVE_TRAINING = ("InProgress", "Stopping")
ACTIVE_TUNING = ("InProgress", "Stopping")


# --- what the event loop holds ---------------------------------------------------------


@dataclass(frozen=True)
class VariantTotalsView:
    endpoint: str
    variant: str
    invocations: int
    errors_4xx: int
    errors_5xx: int
    model_errors: int
    model_latency: HistogramSnapshot
    overhead_latency: HistogramSnapshot


@dataclass(frozen=True)
class FunctionTotalsView:
    function: str
    invocations: int
    errors: int
    throttles: int
    cold_starts: int
    duration: HistogramSnapshot


@dataclass(frozen=True)
class LiveState:
    endpoint_totals: list[VariantTotalsView]
    variants: list[VariantGauge]
    endpoint_period: dict[str, dict[str, float]]
    function_totals: list[FunctionTotalsView]
    function_period: dict[str, dict[str, float]]
    runtime: RuntimeGauges
    ray_state: str


def read_live(ctx: ServerContext) -> LiveState:
    """Copy the gateway's counters; call on the event loop, which alone writes them."""
    endpoint_totals = [
        VariantTotalsView(
            endpoint,
            variant,
            t.invocations,
            t.errors_4xx,
            t.errors_5xx,
            t.model_errors,
            t.model_latency.snapshot(),
            t.overhead_latency.snapshot(),
        )
        for (endpoint, variant), t in list(ctx.endpoints.totals.items())
    ]
    runtime = ctx.function_runtime
    function_totals = [
        FunctionTotalsView(
            name, t.invocations, t.errors, t.throttles, t.cold_starts, t.duration.snapshot()
        )
        for name, t in list(runtime.totals.items())
    ]
    return LiveState(
        endpoint_totals=endpoint_totals,
        variants=ctx.endpoints.variant_gauges(),
        endpoint_period=ctx.endpoints.last_period,
        function_totals=function_totals,
        function_period=runtime.last_period,
        runtime=runtime.gauges(),
        ray_state=ctx.ray.state,
    )


# --- the exposition ----------------------------------------------------------------------


def render(ctx: ServerContext, live: LiveState) -> bytes:
    """The whole exposition (reads the store: call off the event loop)."""
    families: list[Metric] = [*_server(live)]
    families += _endpoints(ctx, live)
    families.append(_data_capture(ctx))
    families += _functions(ctx, live)
    families += _training(ctx)
    families += _tuning(ctx)
    families += _notebooks(ctx)
    families += _monitoring(ctx)
    return exposition(families, process=True)


class _Families:
    def __init__(self, families: Sequence[Metric]) -> None:
        self.families = families

    def collect(self) -> Iterable[Metric]:
        return self.families


def exposition(families: Sequence[Metric], *, process: bool = False) -> bytes:
    """``families`` (and, with ``process``, this process's own metrics) as text 0.0.4:
    HELP and TYPE lines, label values escaped (backslash, double quote, newline)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Families(families))
    if process:
        ProcessCollector(registry=registry)
        PlatformCollector(registry=registry)
        GCCollector(registry=registry)
    return generate_latest(registry)


def counter(name: str, documentation: str, labels: Sequence[str]) -> CounterMetricFamily:
    """A counter family; ``name`` without ``_total`` (the exposition adds it)."""
    return CounterMetricFamily(name, documentation, labels=labels)


def gauge(name: str, documentation: str, labels: Sequence[str]) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, labels=labels)


def histogram(
    family: HistogramMetricFamily, labels: Sequence[str], snapshot: HistogramSnapshot
) -> None:
    buckets = [(_le(bound), float(count)) for bound, count in snapshot.buckets]
    family.add_metric(labels, buckets, snapshot.sum)


def _le(bound: float) -> str:
    return "+Inf" if math.isinf(bound) else repr(bound)


def _server(live: LiveState) -> list[Metric]:
    info = gauge(
        "kennel_build_info", "The kennel version this server runs (always 1).", ["version"]
    )
    info.add_metric([__version__], 1.0)
    ray = gauge("kennel_ray_up", "1 when the server's Ray cluster is running.", [])
    ray.add_metric([], 1.0 if live.ray_state == "running" else 0.0)
    return [info, ray]


def _by_status(name: str, documentation: str, rows: Iterable[Any], label: str) -> Metric:
    family = gauge(name, documentation, [label])
    for status, count in sorted(rows):
        family.add_metric([str(status)], float(count))
    return family


# --- data capture --------------------------------------------------------------------------


def _data_capture(ctx: ServerContext) -> Metric:
    """The capture writer's counts: plain ints, safe to read from this thread."""
    stats = ctx.capture.stats
    family = counter(
        "kennel_data_capture_records",
        "Sampled invocations by outcome since the server started: captured (queued), "
        "dropped (queue full), written (to the artifact store), failed (a write failed).",
        ["outcome"],
    )
    for outcome, value in (
        ("captured", stats.captured),
        ("dropped", stats.dropped),
        ("written", stats.written),
        ("failed", stats.failed),
    ):
        family.add_metric([outcome], float(value))
    return family


# --- endpoints -----------------------------------------------------------------------------

_VARIANT = ["endpoint", "variant"]


def _endpoints(ctx: ServerContext, live: LiveState) -> list[Metric]:
    calls = counter(
        "kennel_endpoint_invocations",
        "InvokeEndpoint requests a variant's instances answered (CloudWatch Invocations), "
        "since the server started.",
        _VARIANT,
    )
    errors_4xx = counter(
        "kennel_endpoint_invocation_4xx_errors",
        "Invocations whose instance answered 4xx (Invocation4XXErrors).",
        _VARIANT,
    )
    errors_5xx = counter(
        "kennel_endpoint_invocation_5xx_errors",
        "Invocations whose instance answered 5xx, timed out or dropped (Invocation5XXErrors).",
        _VARIANT,
    )
    model_errors = counter(
        "kennel_endpoint_model_errors",
        "Invocations the model failed (answered non-2xx or timed out: ModelErrors).",
        _VARIANT,
    )
    model_latency = HistogramMetricFamily(
        "kennel_endpoint_model_latency_seconds",
        "Time the instance took to answer an invocation (ModelLatency).",
        labels=_VARIANT,
    )
    overhead_latency = HistogramMetricFamily(
        "kennel_endpoint_overhead_latency_seconds",
        "The gateway's own time per invocation before it reached the instance (OverheadLatency).",
        labels=_VARIANT,
    )
    for t in sorted(live.endpoint_totals, key=lambda t: (t.endpoint, t.variant)):
        labels = [t.endpoint, t.variant]
        calls.add_metric(labels, t.invocations)
        errors_4xx.add_metric(labels, t.errors_4xx)
        errors_5xx.add_metric(labels, t.errors_5xx)
        model_errors.add_metric(labels, t.model_errors)
        histogram(model_latency, labels, t.model_latency)
        histogram(overhead_latency, labels, t.overhead_latency)

    instances = gauge(
        "kennel_endpoint_instances",
        "A variant's healthy instances taking traffic now (InstanceCount).",
        _VARIANT,
    )
    desired = gauge(
        "kennel_endpoint_desired_instances",
        "The instance count a variant is meant to have (its config, or autoscaling).",
        _VARIANT,
    )
    outstanding = gauge(
        "kennel_endpoint_outstanding_requests",
        "Invocations a variant's instances are answering now.",
        _VARIANT,
    )
    for v in sorted(live.variants, key=lambda v: (v.endpoint, v.variant)):
        labels = [v.endpoint, v.variant]
        instances.add_metric(labels, v.healthy)
        desired.add_metric(labels, v.desired)
        outstanding.add_metric(labels, v.outstanding)

    period = ctx.settings.endpoint_metrics_period_seconds
    per_instance = gauge(
        "kennel_endpoint_invocations_per_instance",
        f"Invocations per instance in the latest metric period ({period:g} s; "
        "InvocationsPerInstance, what target tracking reads).",
        _VARIANT,
    )
    cpu = gauge(
        "kennel_endpoint_cpu_utilization_percent",
        "CPU of a variant's instances in the latest metric period, averaged over instances "
        "(CPUUtilization: 100 per vCPU).",
        _VARIANT,
    )
    memory = gauge(
        "kennel_endpoint_memory_utilization_percent",
        "Resident memory of a variant's instances as a share of the instance type's, "
        "averaged over instances, in the latest metric period (MemoryUtilization).",
        _VARIANT,
    )
    for resource, values in sorted(live.endpoint_period.items()):
        parts = resource.split("/")
        if len(parts) != 4:
            continue
        labels = [parts[1], parts[3]]
        per_instance.add_metric(labels, values.get("InvocationsPerInstance", 0.0))
        cpu.add_metric(labels, values.get("CPUUtilization", 0.0))
        memory.add_metric(labels, values.get("MemoryUtilization", 0.0))

    with ctx.db.session() as session:
        rows = session.execute(select(Endpoint.status, func.count()).group_by(Endpoint.status))
        by_status = _by_status(
            "kennel_endpoints", "Endpoints by status.", [tuple(r) for r in rows], "status"
        )
    return [
        calls,
        errors_4xx,
        errors_5xx,
        model_errors,
        model_latency,
        overhead_latency,
        instances,
        desired,
        outstanding,
        per_instance,
        cpu,
        memory,
        by_status,
    ]


# --- functions -----------------------------------------------------------------------------

_FUNCTION = ["function"]
_QUALIFIED = ["function", "qualifier"]


def _functions(ctx: ServerContext, live: LiveState) -> list[Metric]:
    with ctx.db.session() as session:
        functions = [
            (str(name), str(state), reserved)
            for name, state, reserved in session.execute(
                select(
                    LambdaFunction.name, LambdaFunction.state, LambdaFunction.reserved_concurrency
                )
            )
        ]
        provisioned: list[tuple[str, str, int, int]] = [
            (str(function), str(qualifier), int(asked), int(ready))
            for function, qualifier, asked, ready in session.execute(
                select(
                    LambdaProvisioned.function,
                    LambdaProvisioned.qualifier,
                    LambdaProvisioned.requested,
                    LambdaProvisioned.allocated,
                )
            )
        ]
    names = {name for name, _, _ in functions}

    calls = counter(
        "kennel_function_invocations",
        "Invocations that ran (Invocations), since the server started.",
        _FUNCTION,
    )
    errors = counter(
        "kennel_function_errors",
        "Invocations that ended in a function error (Errors).",
        _FUNCTION,
    )
    throttles = counter(
        "kennel_function_throttles",
        "Invocations refused for concurrency, Lambda's 429 (Throttles).",
        _FUNCTION,
    )
    cold_starts = counter(
        "kennel_function_cold_starts",
        "Invocations that had to start a new execution environment.",
        _FUNCTION,
    )
    duration = HistogramMetricFamily(
        "kennel_function_duration_seconds",
        "Time the handler ran per invocation (Duration).",
        labels=_FUNCTION,
    )
    for t in sorted(live.function_totals, key=lambda t: t.function):
        if t.function not in names:
            continue  # deleted
        calls.add_metric([t.function], t.invocations)
        errors.add_metric([t.function], t.errors)
        throttles.add_metric([t.function], t.throttles)
        cold_starts.add_metric([t.function], t.cold_starts)
        histogram(duration, [t.function], t.duration)

    concurrent = gauge(
        "kennel_function_concurrent_executions",
        "Invocations running now (ConcurrentExecutions).",
        _FUNCTION,
    )
    peak = gauge(
        "kennel_function_max_concurrent_executions",
        "The most invocations running at once in the latest metric period (CloudWatch's "
        "ConcurrentExecutions as kennel records it).",
        _FUNCTION,
    )
    environments = gauge(
        "kennel_function_environments",
        "Execution environments alive now (idle, busy and provisioned).",
        _FUNCTION,
    )
    reserved = gauge(
        "kennel_function_reserved_concurrency",
        "A function's reserved concurrency (functions that have one).",
        _FUNCTION,
    )
    runtime = live.runtime
    for name, _state, reservation in sorted(functions):
        concurrent.add_metric([name], runtime.concurrent.get(name, 0))
        environments.add_metric([name], runtime.environments.get(name, 0))
        if reservation is not None:
            reserved.add_metric([name], reservation)
        last = live.function_period.get(name, {})
        peak.add_metric([name], last.get("ConcurrentExecutions", 0.0))

    requested = gauge(
        "kennel_function_provisioned_concurrency_requested",
        "Provisioned concurrency asked for, per version or alias.",
        _QUALIFIED,
    )
    allocated = gauge(
        "kennel_function_provisioned_concurrency_allocated",
        "Provisioned environments initialised and ready (as the config reports them).",
        _QUALIFIED,
    )
    busy = gauge(
        "kennel_function_provisioned_concurrent_executions",
        "Provisioned environments running an invocation now.",
        _QUALIFIED,
    )
    utilization = gauge(
        "kennel_function_provisioned_concurrency_utilization",
        "Busy provisioned environments over ready ones, now, 0..1 "
        "(ProvisionedConcurrencyUtilization).",
        _QUALIFIED,
    )
    for function, qualifier, asked, ready in sorted(provisioned):
        labels = [function, qualifier]
        requested.add_metric(labels, asked)
        allocated.add_metric(labels, ready)
        alive, running = runtime.provisioned.get((function, qualifier), (0, 0))
        busy.add_metric(labels, running)
        utilization.add_metric(labels, running / alive if alive else 0.0)

    state_counts: dict[str, int] = defaultdict(int)
    for _name, state, _reserved in functions:
        state_counts[state] += 1
    by_state = _by_status("kennel_functions", "Functions by state.", state_counts.items(), "state")
    return [
        calls,
        errors,
        throttles,
        cold_starts,
        duration,
        concurrent,
        peak,
        environments,
        reserved,
        requested,
        allocated,
        busy,
        utilization,
        by_state,
    ]


# --- training and tuning -------------------------------------------------------------------


def _recent(session: Any, model: Any, columns: Sequence[Any], active: Sequence[str]) -> list[Any]:
    """The rows of running jobs and of the RECENT_JOBS newest (name is the first column)."""
    rows = {
        row[0]: row for row in session.execute(select(*columns).where(model.status.in_(active)))
    }
    newest = select(*columns).order_by(model.created_at.desc()).limit(RECENT_JOBS)
    for row in session.execute(newest):
        rows.setdefault(row[0], row)
    return [rows[name] for name in sorted(rows)]


def _training(ctx: ServerContext) -> list[Metric]:
    with ctx.db.session() as session:
        counts = [
            tuple(r)
            for r in session.execute(
                select(TrainingJob.status, func.count()).group_by(TrainingJob.status)
            )
        ]
        jobs = _recent(
            session,
            TrainingJob,
            (TrainingJob.name, TrainingJob.final_metrics, TrainingJob.billable_seconds),
            ACTIVE_TRAINING,
        )
    by_status = _by_status("kennel_training_jobs", "Training jobs by status.", counts, "status")
    latest = gauge(
        "kennel_training_job_metric",
        "The latest value of each metric a training job reports (its final metrics once "
        f"it ends); running jobs and the {RECENT_JOBS} newest.",
        ["training_job", "metric"],
    )
    billable = gauge(
        "kennel_training_job_billable_seconds",
        "Billable instance seconds of an ended training job (instances x seconds).",
        ["training_job"],
    )
    for name, final_metrics, seconds in jobs:
        for metric, value in sorted((final_metrics or {}).items()):
            if isinstance(value, int | float):
                latest.add_metric([name, str(metric)], float(value))
        if seconds:
            billable.add_metric([name], float(seconds))
    return [by_status, latest, billable]


def _tuning(ctx: ServerContext) -> list[Metric]:
    with ctx.db.session() as session:
        counts = [
            tuple(r)
            for r in session.execute(
                select(TuningJob.status, func.count()).group_by(TuningJob.status)
            )
        ]
        jobs = _recent(
            session,
            TuningJob,
            (TuningJob.name, TuningJob.counters, TuningJob.best_training_job),
            ACTIVE_TUNING,
        )
    by_status = _by_status("kennel_tuning_jobs", "Tuning jobs by status.", counts, "status")
    trials = gauge(
        "kennel_tuning_job_training_jobs",
        "A tuning job's trials by status (TrainingJobStatusCounters; pruned: stopped early).",
        ["tuning_job", "status"],
    )
    best = gauge(
        "kennel_tuning_job_best_objective",
        "The objective metric's value of a tuning job's best trial so far.",
        ["tuning_job", "metric"],
    )
    for name, job_counters, best_job in jobs:
        for status, value in sorted((job_counters or {}).items()):
            if isinstance(value, int | float):
                trials.add_metric([name, str(status)], float(value))
        objective = (best_job or {}).get("objective") or {}
        if isinstance(objective.get("value"), int | float):
            best.add_metric([name, str(objective.get("metric_name", ""))], objective["value"])
    return [by_status, trials, best]


# --- notebooks -----------------------------------------------------------------------------


def _notebooks(ctx: ServerContext) -> list[Metric]:
    instances = ctx.notebooks.list_all()  # settles silent ones, as every read does
    state_counts: dict[str, int] = defaultdict(int)
    running = gauge(
        "kennel_notebook_instance_running_seconds",
        "Seconds a notebook instance has run, over all its starts.",
        ["notebook_instance"],
    )
    cost = gauge(
        "kennel_notebook_instance_cost_usd",
        "A notebook instance's cost so far (running time at its type's price).",
        ["notebook_instance"],
    )
    for info in sorted(instances, key=lambda i: str(i["name"])):
        state_counts[str(info["status"])] += 1
        running.add_metric([info["name"]], float(info["running_seconds"]))
        cost.add_metric([info["name"]], float(info["cost_usd"]))
    by_status = _by_status(
        "kennel_notebook_instances", "Notebook instances by status.", state_counts.items(), "status"
    )
    return [by_status, running, cost]


# --- model monitoring ----------------------------------------------------------------------

ALARM_STATES = ("OK", "ALARM", "INSUFFICIENT_DATA")
FINISHED_RUNS = ("Completed", "CompletedWithViolations")


def _monitoring(ctx: ServerContext) -> list[Metric]:
    """Per monitored endpoint: its alarm as a state set, its executions by status, and the
    figures of its latest finished run (drift statistics, accuracy, records, violations)."""
    with ctx.db.session() as session:
        schedules = [
            (
                row.endpoint,
                str((row.alarm or {}).get("state") or "INSUFFICIENT_DATA"),
                row.last_run_at,
            )
            for row in session.scalars(select(MonitoringSchedule))
        ]
        counts: list[tuple[str, str, int]] = [
            (str(r[0]), str(r[1]), int(r[2]))
            for r in session.execute(
                select(
                    MonitoringExecution.endpoint, MonitoringExecution.status, func.count()
                ).group_by(MonitoringExecution.endpoint, MonitoringExecution.status)
            )
        ]
        newest = (
            select(
                MonitoringExecution.endpoint,
                func.max(MonitoringExecution.started_at).label("started_at"),
            )
            .where(MonitoringExecution.status.in_(FINISHED_RUNS))
            .group_by(MonitoringExecution.endpoint)
            .subquery()
        )
        latest = [
            (endpoint, dict(metrics or {}))
            for endpoint, metrics in session.execute(
                select(MonitoringExecution.endpoint, MonitoringExecution.metrics).join(
                    newest,
                    (MonitoringExecution.endpoint == newest.c.endpoint)
                    & (MonitoringExecution.started_at == newest.c.started_at),
                )
            )
        ]
    alarm = gauge(
        "kennel_monitoring_alarm",
        "A monitoring schedule's alarm: 1 for the state it is in, 0 for the others.",
        ["endpoint", "state"],
    )
    last_run = gauge(
        "kennel_monitoring_last_run_timestamp_seconds",
        "When a monitoring schedule last ran (Unix time).",
        ["endpoint"],
    )
    for endpoint, state, last_run_at in sorted(schedules, key=lambda s: s[0]):
        for candidate in ALARM_STATES:
            alarm.add_metric([endpoint, candidate], 1.0 if candidate == state else 0.0)
        if last_run_at is not None:
            last_run.add_metric([endpoint], last_run_at.timestamp())
    executions = gauge(
        "kennel_monitoring_executions",
        "Monitoring executions kept, by endpoint and status.",
        ["endpoint", "status"],
    )
    for name, status, count in sorted(counts):
        executions.add_metric([str(name), str(status)], float(count))
    figures = gauge(
        "kennel_monitoring_metric",
        "The figures of an endpoint's latest finished monitoring run (drift statistics and "
        "p-values, confidence, accuracy against labels, records, violations).",
        ["endpoint", "metric"],
    )
    for endpoint, metrics in sorted(latest, key=lambda item: str(item[0])):
        for metric, value in sorted(metrics.items()):
            if isinstance(value, int | float) and math.isfinite(value):
                figures.add_metric([str(endpoint), str(metric)], float(value))
    return [alarm, last_run, executions, figures]
