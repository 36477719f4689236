"""The console's endpoint page shows model monitoring: the schedule and its alarm, the
latest run's checks against their thresholds, the recent runs, and each run's report."""

from __future__ import annotations

from typing import Any

import pytest
from tests._server import RunningServer
from tests.integration.monitoring.test_monitoring_endpoint import (
    _captured,
    _inverted,
    _invoke_all,
    _test_images,
    _wait,
    monitored,
)

from kennel._client import KennelClient

__all__ = ["monitored"]  # the fixture: a trained model with a baseline, behind an endpoint

# Slow: it trains a model and computes its baseline first (about 60-90 s); CI runs it.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]


def test_the_endpoint_page_shows_the_alarm_the_checks_and_the_report(
    console: Any, server: RunningServer, api: KennelClient, monitored: dict[str, Any]
) -> None:
    endpoint = monitored["endpoint"]
    base = f"/api/v1/endpoints/{endpoint}"
    page = console.page

    # Before any schedule or run, the section says how to start.
    console.goto(f"#/endpoints/{endpoint}")
    section = page.get_by_role("region", name="Monitoring")
    section.get_by_text(f"kennel endpoints monitoring-schedule {endpoint}").first.wait_for()
    section.get_by_text(f"kennel endpoints monitor {endpoint} --run").first.wait_for()

    # Inverted digits against a baseline of upright ones: a run with violations, and ALARM.
    api.request("PUT", f"{base}/monitoring-schedule", json_body={"interval_seconds": 600})
    images = [
        (label, _inverted(data)) for label, data in _test_images(server, monitored["dataset"])
    ]
    _invoke_all(server, endpoint, images, "console")
    _wait("the captures", lambda: _captured(server, endpoint) >= len(images), 30)
    drifted = api.post(f"{base}/monitoring/run", {})
    assert drifted["status"] == "CompletedWithViolations", drifted
    checks = drifted["result"]["checks"]
    violated = {c["name"] for c in checks if c["violated"]}
    assert "embedding_drift" in violated

    # The page refreshes itself (every 10 s) and shows what the API says.
    section.get_by_text("every 600 s").first.wait_for(timeout=30_000)
    alarm = section.locator("dd .badge", has_text="ALARM")
    alarm.wait_for()
    assert "bad" in (alarm.get_attribute("class") or "")
    rows = section.get_by_role("region", name="Checks of the latest run").locator("tbody tr")
    assert rows.count() == len(checks)
    shown = {
        rows.nth(i).locator("td").first.inner_text(): rows.nth(i).inner_text()
        for i in range(rows.count())
    }
    assert set(shown) == {c["name"] for c in checks}
    for name, text in shown.items():
        assert ("Violated" in text) == (name in violated), text
    runs = section.get_by_role("region", name="Monitoring runs").locator("tbody tr")
    first = runs.first
    assert "CompletedWithViolations" in first.inner_text()
    assert "OnDemand" in first.inner_text()
    records = first.locator("td[data-label='Records']").inner_text()
    assert records == str(drifted["counts"]["images"]) == str(len(images))
    console.screenshot("endpoint-monitoring-1280")

    # The run's report opens in a new tab, authorized by the console's session.
    with page.expect_popup() as opened:
        first.get_by_role("link", name="Open").click()
    report = opened.value
    report.wait_for_load_state()
    assert report.url.endswith(f"{base}/monitoring/executions/{drifted['id']}/report")
    assert "Drift over time" in report.content()
    report.close()
