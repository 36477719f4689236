"""Autoscaling: how soon a load step brings a new instance, and that nothing fails.

One real kennel server (a subprocess, temporary home, 1 s metric periods). For each
model, an endpoint of one instance gets a scalable target 1..3 and a target-tracking
policy on SageMakerVariantInvocationsPerInstance (per instance per minute, as AWS has
it), with short cooldowns so the run ends. ``kennel.loadgen`` (signed InvokeEndpoint
requests, open loop) sends a low rate, steps up well above the target, then drops back:

* **scale-out**: from the step to the scaling activity's start, in metric periods. The
  activity then lasts as long as the new instances take to start (process, model load,
  ``GET /ping``): that start-up is the baseline printed beside it, measured in the same
  run; the figure is "periods from the step to the first new instance in service, less
  its start-up". The high alarm needs 3 periods above the target, so 3 is the goal.
* **scale-in**: from the drop to the variant being back at one instance (the low alarm
  needs 15 periods below 90% of the target, then one instance goes per scale-in).
* **failed requests**: every request of the whole run, through every scale event.
* **p99 latency** in the 5 s before, during, and the 5 s after each scale event.

    RESULT scale_out_periods <periods> goal<=3
    RESULT autoscaling_failed_requests <n> goal<=0

Knobs (environment): ``KENNEL_BENCH_SKIP_RESNET=1`` runs the echo model only.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from serving import build_archives, create_endpoint, jpeg_bodies, wait_in_service

REPO = Path(__file__).resolve().parent.parent
PERIOD = 1.0
SKIP_RESNET = os.environ.get("KENNEL_BENCH_SKIP_RESNET") == "1"
WINDOW = 5.0
"""Seconds before and after a scale event over which p99 is taken."""


@dataclass(frozen=True)
class Scenario:
    name: str
    archive_key: str
    body: bytes
    content_type: str
    target: float
    """Invocations per instance per minute."""
    low_rps: float
    high_rps: float
    low_seconds: float = 8.0
    high_seconds: float = 20.0
    tail_seconds: float = 32.0


def resource(endpoint: str) -> str:
    return f"endpoint/{endpoint}/variant/AllTraffic"


def set_up_scaling(aas: Any, endpoint: str, target: float) -> None:
    aas.register_scalable_target(
        ServiceNamespace="sagemaker",
        ResourceId=resource(endpoint),
        ScalableDimension="sagemaker:variant:DesiredInstanceCount",
        MinCapacity=1,
        MaxCapacity=3,
    )
    aas.put_scaling_policy(
        PolicyName="invocations",
        ServiceNamespace="sagemaker",
        ResourceId=resource(endpoint),
        ScalableDimension="sagemaker:variant:DesiredInstanceCount",
        PolicyType="TargetTrackingScaling",
        TargetTrackingScalingPolicyConfiguration={
            "TargetValue": target,
            "PredefinedMetricSpecification": {
                "PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"
            },
            "ScaleOutCooldown": 10,
            "ScaleInCooldown": 2,
        },
    )


def activities(aas: Any, endpoint: str) -> list[dict[str, Any]]:
    found = aas.describe_scaling_activities(
        ServiceNamespace="sagemaker", ResourceId=resource(endpoint)
    )["ScalingActivities"]
    return sorted(found, key=lambda a: a["StartTime"])


def _epoch(stamp: datetime) -> float:
    return stamp.timestamp()


def p99(records: list[Any], start: float, end: float) -> float | None:
    latencies = sorted(
        r.latency_ms for r in records if r.latency_ms is not None and start <= r.sent_s < end
    )
    if not latencies:
        return None
    return latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))]


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"


def run_scenario(
    server: Any, api: Any, aas: Any, scenario: Scenario, archive: Path
) -> dict[str, Any]:
    from kennel.loadgen import LoadPlan, run_load

    endpoint = f"bench-scale-{scenario.name}"
    create_endpoint(api, endpoint, archive)
    wait_in_service(api, endpoint)
    set_up_scaling(aas, endpoint, scenario.target)
    time.sleep(2 * PERIOD)  # the autoscaler picks the target up at the next period
    plan = LoadPlan.steps(
        [
            (scenario.low_rps, scenario.low_seconds),
            (scenario.high_rps, scenario.high_seconds),
            (scenario.low_rps, scenario.tail_seconds),
        ]
    )
    started: list[float] = []

    def on_tick(snapshot: Any) -> None:
        if not started:
            started.append(time.time() - snapshot.elapsed_s)

    with server.client() as client:
        result = run_load(
            client,
            endpoint,
            plan,
            scenario.body,
            content_type=scenario.content_type,
            on_tick=on_tick,
        )
    t0 = started[0]
    step = scenario.low_seconds
    drop = scenario.low_seconds + scenario.high_seconds
    done = activities(aas, endpoint)
    api.delete(f"/api/v1/endpoints/{endpoint}")
    events = []
    for activity in done:
        begin = _epoch(activity["StartTime"]) - t0
        end = _epoch(activity["EndTime"]) - t0 if activity.get("EndTime") else None
        events.append(
            {
                "description": activity["Description"],
                "status": activity["StatusCode"],
                "start_s": begin,
                "end_s": end,
                "p99_before": p99(result.records, begin - WINDOW, begin),
                "p99_during": p99(result.records, begin, end if end is not None else begin),
                "p99_after": p99(result.records, end or begin, (end or begin) + WINDOW),
            }
        )
    outs = [e for e in events if e["start_s"] >= step and "count to 1." not in e["description"]]
    first_out = outs[0] if outs else None
    back_to_one = [e for e in events if e["start_s"] >= drop and "count to 1." in e["description"]]
    return {
        "scenario": scenario.name,
        "events": events,
        "failed": result.totals.failed,
        "failed_by": result.totals.failed_by,
        "sent": result.totals.sent,
        "skipped": result.totals.skipped,
        "scale_out_periods": (first_out["start_s"] - step) / PERIOD if first_out else None,
        "startup_s": (
            first_out["end_s"] - first_out["start_s"]
            if first_out and first_out["end_s"] is not None
            else None
        ),
        "scale_in_s": (
            back_to_one[-1]["end_s"] - drop
            if back_to_one and back_to_one[-1]["end_s"] is not None
            else None
        ),
        "p99_ms": result.totals.p99_ms,
    }


def print_report(results: list[dict[str, Any]]) -> None:
    print()
    print(
        f"{'model':<8} {'sent':>6} {'failed':>6} {'out (periods)':>14} "
        f"{'start-up s':>10} {'back to 1 s':>11}"
    )
    for r in results:
        periods = "-" if r["scale_out_periods"] is None else f"{r['scale_out_periods']:.2f}"
        startup = "-" if r["startup_s"] is None else f"{r['startup_s']:.2f}"
        back = "-" if r["scale_in_s"] is None else f"{r['scale_in_s']:.1f}"
        print(
            f"{r['scenario']:<8} {r['sent']:>6} {r['failed']:>6} {periods:>14} "
            f"{startup:>10} {back:>11}"
        )
    for r in results:
        print(f"\n{r['scenario']}: scale events (p99 ms before / during / after)")
        for e in r["events"]:
            end = "-" if e["end_s"] is None else f"{e['end_s']:.1f}"
            print(
                f"  t={e['start_s']:6.1f}..{end:>6} s  {e['status']:<10} {e['description']:<40} "
                f"{_ms(e['p99_before'])} / {_ms(e['p99_during'])} / {_ms(e['p99_after'])}"
            )
        if r["failed_by"]:
            print(f"  failures: {json.dumps(r['failed_by'])}")


def main() -> None:
    sys.path.insert(0, str(REPO))
    sys.path.insert(0, str(REPO / "src"))
    from tests._server import start_server, stop_server

    with tempfile.TemporaryDirectory(prefix="kennel-bench-autoscaling-") as tmp:
        work = Path(tmp)
        resnet, echo = build_archives(work)
        archives = {"echo": echo, "resnet": resnet}
        scenarios = [
            Scenario("echo", "echo", b"x" * 1024, "application/octet-stream", 600.0, 3.0, 30.0),
        ]
        if not SKIP_RESNET:
            scenarios.append(
                Scenario("resnet", "resnet", jpeg_bodies(1)[0], "image/jpeg", 60.0, 0.5, 3.0)
            )
        server = start_server(
            work / "home",
            KENNEL_ENDPOINT_METRICS_PERIOD_SECONDS=str(PERIOD),
            KENNEL_ENDPOINT_HEALTH_TIMEOUT_SECONDS="300",
        )
        results: list[dict[str, Any]] = []
        try:
            aas = server.session.client(
                "application-autoscaling", endpoint_url=server.url, region_name="us-east-1"
            )
            with server.client() as api:
                for scenario in scenarios:
                    print(f"== {scenario.name}: load {scenario.low_rps}->{scenario.high_rps} rps")
                    results.append(
                        run_scenario(server, api, aas, scenario, archives[scenario.archive_key])
                    )
        finally:
            stop_server(server)
    print_report(results)
    periods = [r["scale_out_periods"] for r in results]
    worst = max(periods) if all(p is not None for p in periods) else float("inf")
    failed = sum(r["failed"] for r in results)
    print()
    print(f"RESULT scale_out_periods {worst:.2f} goal<=3")
    print(f"RESULT autoscaling_failed_requests {failed} goal<=0")


if __name__ == "__main__":
    main()
