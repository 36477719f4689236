"""``kennel load`` against the session server: the library on an echo endpoint, then the
command as a user types it. One endpoint serves the whole module (creating one costs
seconds; the loads are what is under test)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests._server import RunningServer
from tests.e2e.test_cli import kennel
from tests.integration.endpoints.conftest import Models

from kennel._client import KennelClient
from kennel.loadgen import SKIPPED, LoadPlan, run_load

pytestmark = pytest.mark.timeout(120)

JSON = "application/json"


@pytest.fixture(scope="module")
def echo_endpoint(server: RunningServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with server.client() as api:
        made = Models(api, tmp_path_factory.mktemp("load-models"))
        try:
            yield made.simple("v1")
        finally:
            made.cleanup()


def test_a_constant_rate_is_sent_answered_and_timed(api: KennelClient, echo_endpoint: str) -> None:
    result = run_load(
        api, echo_endpoint, LoadPlan.constant(20, 2), b'{"echo": 1}', content_type=JSON
    )
    totals = result.totals
    assert (totals.sent, totals.ok, totals.failed, totals.skipped) == (40, 40, 0, 0), totals
    assert all(r.status == 200 and r.latency_ms and r.latency_ms > 0 for r in result.records)
    assert totals.p50_ms is not None and totals.p99_ms is not None and totals.max_ms is not None
    assert 0 < totals.p50_ms <= totals.p99_ms <= totals.max_ms
    assert [row.sent for row in result.timeline] == [20, 20]
    assert [row.instances for row in result.timeline] == [1, 1]
    assert result.instances and {s.instances for s in result.instances} == {1}


def test_a_saturated_client_counts_skipped_arrivals(api: KennelClient, echo_endpoint: str) -> None:
    result = run_load(
        api,
        echo_endpoint,
        LoadPlan.constant(10, 1),
        b'{"sleep": 0.5}',
        content_type=JSON,
        max_in_flight=2,
    )
    totals = result.totals
    assert totals.sent + totals.skipped == 10
    # Two slots, each held >= 0.5 s, arrivals every 0.1 s: 0.2, 0.3, 0.4 s find both taken.
    assert totals.skipped >= 3 and totals.sent >= 2
    assert totals.ok == totals.sent
    assert all(r.latency_ms is None for r in result.records if r.error == SKIPPED)
    assert all(r.latency_ms and r.latency_ms >= 500 for r in result.records if r.ok)


def test_a_missing_endpoint_is_a_recorded_error_per_request(api: KennelClient) -> None:
    result = run_load(api, "no-such-endpoint", LoadPlan.constant(10, 1), b"{}", content_type=JSON)
    assert result.totals.failed_by == {"400 ValidationError": 10}
    assert all((r.status, r.error) == (400, "ValidationError") for r in result.records)
    assert result.instances and all(s.instances is None and s.error for s in result.instances)


@pytest.mark.e2e
def test_the_command(server: RunningServer, echo_endpoint: str, tmp_path: Path) -> None:
    body = tmp_path / "body.json"
    body.write_text(json.dumps({"echo": "load"}))
    chart = tmp_path / "out.html"
    run = kennel(
        server.env, "load", echo_endpoint, "--rps", "10", "--duration", "2",
        "--file", str(body), "--chart", str(chart),
    )  # fmt: skip
    assert f"kennel load {echo_endpoint}: 10 rps for 2 s" in run.stdout
    assert "20 of 20 planned" in run.stdout and "latency p50" in run.stdout
    assert f"chart: {chart}" in run.stdout
    page = chart.read_text()
    assert len(page) > 1_000_000 and "plotly" in page and "<script src=" not in page

    answer = kennel(
        server.env, "load", echo_endpoint, "--steps", "10x0.5,20x0.5", "--file", str(body),
        "--json",
    )  # fmt: skip
    summary = json.loads(answer.stdout)
    assert summary["totals"]["sent"] == summary["totals"]["ok"] == 15
    assert summary["plan"]["description"] == "steps 10x0.5,20x0.5"
    assert [row["sent"] for row in summary["timeline"]] == [15]
    assert summary["chart"] is None and "records" not in summary

    bad = kennel(server.env, "load", echo_endpoint, "--rps", "0", "--duration", "1",
                 "--file", str(body), check=False)  # fmt: skip
    assert bad.returncode == 1 and "sends nothing" in bad.stderr
    missing = kennel(server.env, "load", "no-such-endpoint", "--rps", "1", "--duration", "1",
                     "--file", str(body), check=False)  # fmt: skip
    assert missing.returncode == 1 and "no-such-endpoint" in missing.stderr
    usage = kennel(server.env, "load", echo_endpoint, "--rps", "1", check=False)
    assert usage.returncode == 2 and "--file" in usage.stderr
