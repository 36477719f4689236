"""Load generation for endpoints: ``kennel load`` as a library.

A :class:`LoadPlan` (constant, ramp or steps) says how many InvokeEndpoint requests per
second to send and for how long; :func:`run_load` sends them open-loop (arrivals keep the
plan's clock whatever the server does), SigV4-signed with a
:class:`~kennel._client.KennelClient`'s credentials, to a server on this machine only,
while polling the endpoint's instance count; the :class:`LoadResult` holds every
request's outcome, per-second rows and totals, and :func:`load_chart_html` draws it.
"""

from kennel.loadgen._chart import load_chart_html
from kennel.loadgen._plan import (
    MAX_DURATION_SECONDS,
    MAX_REQUESTS,
    MAX_RPS,
    LoadPlan,
    Phase,
    parse_plan,
)
from kennel.loadgen._result import (
    CANCELLED,
    SKIPPED,
    InstanceSample,
    LoadResult,
    LoadSnapshot,
    LoadTotals,
    RequestRecord,
    TimelineRow,
)
from kennel.loadgen._runner import (
    DEFAULT_DRAIN_TIMEOUT,
    DEFAULT_MAX_IN_FLIGHT,
    check_loopback,
    content_type_for,
    run_load,
    run_load_async,
)

__all__ = [
    "CANCELLED",
    "DEFAULT_DRAIN_TIMEOUT",
    "DEFAULT_MAX_IN_FLIGHT",
    "MAX_DURATION_SECONDS",
    "MAX_REQUESTS",
    "MAX_RPS",
    "SKIPPED",
    "InstanceSample",
    "LoadPlan",
    "LoadResult",
    "LoadSnapshot",
    "LoadTotals",
    "Phase",
    "RequestRecord",
    "TimelineRow",
    "check_loopback",
    "content_type_for",
    "load_chart_html",
    "parse_plan",
    "run_load",
    "run_load_async",
]
