"""What a load run measured: every request's outcome, then per-second rows and totals.

Latency figures are over the requests that got an HTTP answer, whatever its status: a 503
that took 2 s is latency the caller saw. Requests that got no answer (a connection error,
cancelled at the drain timeout) and arrivals that were never sent (the client was
saturated) count in the totals but have no latency to report.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from kennel.loadgen._plan import LoadPlan

SKIPPED = "ClientSaturated"
"""The error of an arrival that found ``max_in_flight`` requests outstanding: not sent."""
CANCELLED = "DrainTimeout"
"""The error of a request still outstanding when the run's time was up: cancelled."""


@dataclass(frozen=True, slots=True)
class RequestRecord:
    """One arrival. ``sent_s`` is seconds from the start of the run (when it was sent, or
    would have been for a skipped one); ``error`` is the answer's ``x-amzn-ErrorType``,
    the exception class when there was no answer, or :data:`SKIPPED` / :data:`CANCELLED`."""

    sent_s: float
    latency_ms: float | None
    status: int | None
    error: str | None

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    @property
    def skipped(self) -> bool:
        return self.error == SKIPPED

    @property
    def failed(self) -> bool:
        return not self.ok and not self.skipped

    @property
    def failure(self) -> str:
        """How it failed, as the totals group it: ``"400 ValidationError"``, ``"ConnectError"``."""
        if self.status is None:
            return self.error or "NoAnswer"
        return f"{self.status} {self.error}" if self.error else str(self.status)


@dataclass(frozen=True, slots=True)
class InstanceSample:
    """The endpoint's in-service instances (summed over its variants) at ``t_s``;
    ``instances`` is None when the describe call failed, and ``error`` says why."""

    t_s: float
    instances: int | None
    error: str | None = None


@dataclass(frozen=True)
class LoadSnapshot:
    """The run so far, handed to ``on_tick`` about 4 times a second. ``sent_rps`` and the
    percentiles are over the last few seconds (``window_s``), the counts since the start."""

    elapsed_s: float
    duration_s: float
    sent: int
    ok: int
    errors: int
    skipped: int
    in_flight: int
    sent_rps: float
    p50_ms: float | None
    p99_ms: float | None
    instances: int | None
    window_s: float
    draining: bool


@dataclass(frozen=True)
class TimelineRow:
    """Second ``t`` (requests grouped by when they were sent); ``instances`` is the last
    count known by the end of that second."""

    t: int
    sent: int
    ok: int
    errors: int
    skipped: int
    p50_ms: float | None
    p99_ms: float | None
    instances: int | None


@dataclass(frozen=True)
class LoadTotals:
    """The whole run. ``sent`` = ``ok`` + ``failed``; ``skipped`` arrivals were not sent.
    ``achieved_rps`` is requests sent per second of the send window; ``max_lag_ms`` is how
    far behind its schedule the client fell (large: the client, not the server, was the
    limit); ``client_cpu_ms_per_request`` is this process's CPU per request sent."""

    sent: int
    ok: int
    failed: int
    failed_by: dict[str, int]
    skipped: int
    cancelled: int
    achieved_rps: float
    p50_ms: float | None
    p90_ms: float | None
    p99_ms: float | None
    max_ms: float | None
    elapsed_s: float
    max_lag_ms: float
    client_cpu_ms_per_request: float | None


@dataclass(frozen=True)
class LoadResult:
    endpoint: str
    plan: LoadPlan
    max_in_flight: int
    totals: LoadTotals
    timeline: list[TimelineRow]
    records: list[RequestRecord] = field(repr=False)
    instances: list[InstanceSample]

    def to_dict(self, *, include_records: bool = True) -> dict[str, Any]:
        """Plain JSON types; records as compact rows ``[sent_s, latency_ms, status, error]``."""
        data: dict[str, Any] = {
            "endpoint": self.endpoint,
            "plan": self.plan.to_dict(),
            "max_in_flight": self.max_in_flight,
            "totals": asdict(self.totals),
            "timeline": [asdict(row) for row in self.timeline],
            "instances": [asdict(sample) for sample in self.instances],
        }
        if include_records:
            data["records_columns"] = ["sent_s", "latency_ms", "status", "error"]
            data["records"] = [
                [round(r.sent_s, 6), r.latency_ms, r.status, r.error] for r in self.records
            ]
        return data


def percentile(ordered: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile of already sorted values (None when there are none)."""
    if not ordered:
        return None
    rank = max(math.ceil(q * len(ordered)), 1)
    return ordered[min(rank, len(ordered)) - 1]


def build_result(
    *,
    endpoint: str,
    plan: LoadPlan,
    max_in_flight: int,
    records: list[RequestRecord],
    instances: list[InstanceSample],
    elapsed_s: float,
    max_lag_ms: float,
    client_cpu_s: float | None,
) -> LoadResult:
    records = sorted(records, key=lambda r: r.sent_s)
    return LoadResult(
        endpoint=endpoint,
        plan=plan,
        max_in_flight=max_in_flight,
        totals=_totals(records, plan, elapsed_s, max_lag_ms, client_cpu_s),
        timeline=_timeline(records, instances, plan),
        records=records,
        instances=instances,
    )


def _totals(
    records: list[RequestRecord],
    plan: LoadPlan,
    elapsed_s: float,
    max_lag_ms: float,
    client_cpu_s: float | None,
) -> LoadTotals:
    sent = [r for r in records if not r.skipped]
    failures = Counter(r.failure for r in sent if r.failed)
    latencies = _answered_latencies(sent)
    window = max([plan.duration, *(r.sent_s for r in sent)])
    cpu = None if client_cpu_s is None or not sent else round(client_cpu_s * 1000 / len(sent), 3)
    return LoadTotals(
        sent=len(sent),
        ok=sum(1 for r in sent if r.ok),
        failed=sum(failures.values()),
        failed_by=dict(failures.most_common()),
        skipped=len(records) - len(sent),
        cancelled=sum(1 for r in sent if r.error == CANCELLED),
        achieved_rps=round(len(sent) / window, 3) if window > 0 else 0.0,
        p50_ms=_rounded(percentile(latencies, 0.50)),
        p90_ms=_rounded(percentile(latencies, 0.90)),
        p99_ms=_rounded(percentile(latencies, 0.99)),
        max_ms=_rounded(latencies[-1] if latencies else None),
        elapsed_s=round(elapsed_s, 3),
        max_lag_ms=round(max_lag_ms, 3),
        client_cpu_ms_per_request=cpu,
    )


def _timeline(
    records: list[RequestRecord], instances: list[InstanceSample], plan: LoadPlan
) -> list[TimelineRow]:
    last = max([plan.duration, *(r.sent_s for r in records[-1:])])
    seconds = max(math.ceil(last - 1e-9), 1)
    buckets: list[list[RequestRecord]] = [[] for _ in range(seconds)]
    for record in records:
        buckets[min(int(record.sent_s), seconds - 1)].append(record)
    samples = sorted(instances, key=lambda s: s.t_s)
    rows, known, cursor = [], None, 0
    for t, bucket in enumerate(buckets):
        while cursor < len(samples) and samples[cursor].t_s <= t + 1:
            if samples[cursor].instances is not None:
                known = samples[cursor].instances
            cursor += 1
        latencies = _answered_latencies(bucket)
        rows.append(
            TimelineRow(
                t=t,
                sent=sum(1 for r in bucket if not r.skipped),
                ok=sum(1 for r in bucket if r.ok),
                errors=sum(1 for r in bucket if r.failed),
                skipped=sum(1 for r in bucket if r.skipped),
                p50_ms=_rounded(percentile(latencies, 0.50)),
                p99_ms=_rounded(percentile(latencies, 0.99)),
                instances=known,
            )
        )
    return rows


def _answered_latencies(records: list[RequestRecord]) -> list[float]:
    """Sorted latencies of the requests that got an HTTP answer (see the module docstring)."""
    return sorted(
        r.latency_ms for r in records if r.status is not None and r.latency_ms is not None
    )


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 3)
