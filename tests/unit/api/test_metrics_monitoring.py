"""Model monitoring in the Prometheus exposition: each schedule's alarm as a state set,
executions by status, and the figures of the latest finished run, on both back ends."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from kennel.api._metrics import _monitoring, exposition
from kennel.store import Database, MonitoringExecution, MonitoringSchedule

T0 = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)


def _run(endpoint: str, n: int, status: str, metrics: dict[str, Any]) -> MonitoringExecution:
    start = T0 + timedelta(hours=n)
    return MonitoringExecution(
        id=f"{endpoint}-{n}",
        endpoint=endpoint,
        status=status,
        window_start=start - timedelta(hours=1),
        window_end=start,
        metrics=metrics,
        started_at=start,
        ended_at=start + timedelta(seconds=5),
    )


def _scrape(db: Database) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = exposition(_monitoring(SimpleNamespace(db=db))).decode()  # type: ignore[arg-type]
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_alarm_executions_and_the_latest_finished_runs_figures(db: Database) -> None:
    with db.session() as session:
        session.add_all(
            [
                MonitoringSchedule(
                    endpoint="dogs",
                    alarm={"state": "ALARM", "reason": "Violations: embedding_drift."},
                    last_run_at=T0 + timedelta(hours=3),
                ),
                MonitoringSchedule(endpoint="cats", alarm={}),
                _run("dogs", 0, "Completed", {"embedding_p_value": 0.84, "records": 100.0}),
                _run("dogs", 1, "CompletedWithViolations", {"embedding_p_value": 0.002}),
                _run(
                    "dogs",
                    2,
                    "CompletedWithViolations",
                    {"embedding_p_value": 0.001, "accuracy": 0.5, "violations": 2.0},
                ),
                _run("dogs", 3, "Failed", {}),  # newest, but it has no figures to show
            ]
        )
    samples = _scrape(db)

    def alarm(endpoint: str, state: str) -> float:
        key = ("kennel_monitoring_alarm", (("endpoint", endpoint), ("state", state)))
        return samples[key]

    assert [alarm("dogs", s) for s in ("OK", "ALARM", "INSUFFICIENT_DATA")] == [0, 1, 0]
    # A schedule that never ran has no data yet.
    assert [alarm("cats", s) for s in ("OK", "ALARM", "INSUFFICIENT_DATA")] == [0, 0, 1]
    assert (
        samples[("kennel_monitoring_last_run_timestamp_seconds", (("endpoint", "dogs"),))]
        == (T0 + timedelta(hours=3)).timestamp()
    )

    def executions(status: str) -> float:
        return samples[("kennel_monitoring_executions", (("endpoint", "dogs"), ("status", status)))]

    assert (
        executions("Completed"),
        executions("CompletedWithViolations"),
        executions("Failed"),
    ) == (
        1,
        2,
        1,
    )
    figures = {
        dict(labels)["metric"]: value
        for (name, labels), value in samples.items()
        if name == "kennel_monitoring_metric"
    }
    # The latest run that finished (the Failed one after it has none), not an older one.
    assert figures == {"embedding_p_value": 0.001, "accuracy": 0.5, "violations": 2.0}


def test_nothing_monitored_gives_empty_families(db: Database) -> None:
    names = {name for name, _ in _scrape(db)}
    assert names == set()
