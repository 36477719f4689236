"""The runner against a tiny stand-in server on loopback (fast, no kennel server): signing,
outcomes, the drain bound, the tick hook; then the result's rows, totals and chart."""

from __future__ import annotations

import hashlib
import json
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from botocore.credentials import Credentials
from tests._server import free_port

from kennel._client import KennelClient
from kennel._errors import ValidationError
from kennel.loadgen import (
    CANCELLED,
    SKIPPED,
    InstanceSample,
    LoadPlan,
    LoadSnapshot,
    RequestRecord,
    load_chart_html,
    run_load,
)
from kennel.loadgen._result import build_result, percentile

SLOW_SECONDS = 3.0


class _Handler(BaseHTTPRequestHandler):
    """``/endpoints/ok/...`` answers 200, ``broken`` 424 ModelError, ``slow`` after 3 s;
    describing any endpoint says it has 2 instances over two variants."""

    protocol_version = "HTTP/1.1"
    seen: list[dict[str, str]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        headers = dict(self.headers.items())
        headers["body-sha256"] = hashlib.sha256(body).hexdigest()
        self.seen.append(headers)
        name = self.path.split("/")[2]
        if name == "slow":
            time.sleep(SLOW_SECONDS)
        if name == "broken":
            self._answer(424, b'{"message": "boom"}', {"x-amzn-ErrorType": "ModelError:http://x"})
        else:
            self._answer(200, body, {})

    def do_GET(self) -> None:
        variants = [{"current_instance_count": 1}, {"current_instance_count": 1}]
        self._answer(200, json.dumps({"production_variants": variants}).encode(), {})

    def _answer(self, status: int, body: bytes, headers: dict[str, str]) -> None:
        self.send_response(status)
        for key, value in {**headers, "Content-Length": str(len(body))}.items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the test reads ``seen`` instead."""


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that hung up (the drain timeout cancelled it) is expected here."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


@pytest.fixture(scope="module")
def stand_in() -> Iterator[str]:
    server = _Server(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _client(url: str) -> KennelClient:
    return KennelClient(url, Credentials("AKIDLOADTEST", "secret"), "us-east-1")


def test_every_request_is_signed_sent_and_recorded(stand_in: str) -> None:
    _Handler.seen.clear()
    ticks: list[LoadSnapshot] = []
    body = b'{"echo": 1}'
    with _client(stand_in) as api:
        result = run_load(
            api,
            "ok",
            LoadPlan.constant(50, 1),
            body,
            content_type="application/json",
            accept="application/json",
            on_tick=ticks.append,
            poll_interval=0.2,
        )
    totals = result.totals
    assert (totals.sent, totals.ok, totals.failed, totals.skipped) == (50, 50, 0, 0)
    assert totals.p50_ms is not None and 0 < totals.p50_ms <= totals.p99_ms <= totals.max_ms  # type: ignore[operator]
    assert 45 <= totals.achieved_rps <= 51
    assert len(_Handler.seen) == 50
    for headers in _Handler.seen:
        assert headers["Authorization"].startswith("AWS4-HMAC-SHA256 Credential=AKIDLOADTEST/")
        assert "/us-east-1/sagemaker/aws4_request" in headers["Authorization"]
        assert headers["X-Amz-Content-SHA256"] == headers["body-sha256"]
        assert headers["Content-Type"] == "application/json"
        assert headers["Accept"] == "application/json"
    assert all(r.ok and r.latency_ms is not None and r.latency_ms > 0 for r in result.records)
    assert [r.sent for r in result.timeline] == [50]
    assert result.instances and all(s.instances == 2 for s in result.instances)
    assert result.timeline[0].instances == 2
    assert len(ticks) >= 3 and ticks[-1].sent == 50 and ticks[-1].in_flight == 0
    assert ticks[-1].instances == 2 and ticks[-1].sent_rps > 0


def test_answers_with_errors_are_recorded_by_status_and_code(stand_in: str) -> None:
    with _client(stand_in) as api:
        result = run_load(api, "broken", LoadPlan.constant(20, 0.5), b"{}")
    assert result.totals.failed_by == {"424 ModelError": 10}
    assert all(r.status == 424 and r.error == "ModelError" for r in result.records)
    assert result.totals.p50_ms is not None  # an answer is latency the caller saw


def test_outstanding_requests_are_cancelled_at_the_drain_timeout(stand_in: str) -> None:
    started = time.monotonic()
    with _client(stand_in) as api:
        result = run_load(api, "slow", LoadPlan.constant(5, 0.4), b"{}", drain_timeout=0.5)
    assert time.monotonic() - started < SLOW_SECONDS  # bounded by 0.4 + 0.5 s, not the server
    assert [r.error for r in result.records] == [CANCELLED, CANCELLED]
    assert result.totals.cancelled == 2 and result.totals.failed_by == {CANCELLED: 2}
    assert result.totals.p50_ms is None  # no answers, no latency


def test_a_saturated_client_skips_arrivals_instead_of_queueing(stand_in: str) -> None:
    with _client(stand_in) as api:
        result = run_load(
            api, "slow", LoadPlan.constant(10, 0.5), b"{}", max_in_flight=1, drain_timeout=0.2
        )
    assert result.totals.sent == 1 and result.totals.skipped == 4
    assert [r.error for r in result.records].count(SKIPPED) == 4


def test_connection_errors_are_recorded_not_raised() -> None:
    with _client(f"http://127.0.0.1:{free_port()}") as api:
        result = run_load(api, "ok", LoadPlan.constant(10, 0.3), b"{}", poll_interval=0.1)
    assert result.totals.failed_by == {"ConnectError": 3}
    assert result.instances and all(s.instances is None for s in result.instances)
    assert result.instances[0].error and "ServiceUnavailable" in result.instances[0].error


def test_a_server_elsewhere_is_refused_before_anything_is_sent() -> None:
    with (
        _client("http://192.0.2.10:7733") as api,
        pytest.raises(ValidationError, match="must stay on this machine"),
    ):
        run_load(api, "ok", LoadPlan.constant(10, 1), b"{}")


def test_an_error_in_the_tick_hook_stops_the_run(stand_in: str) -> None:
    def explode(snapshot: LoadSnapshot) -> None:
        raise RuntimeError("view broke")

    started = time.monotonic()
    with _client(stand_in) as api, pytest.raises(RuntimeError, match="view broke"):
        run_load(api, "ok", LoadPlan.constant(10, 5), b"{}", on_tick=explode)
    assert time.monotonic() - started < 2


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"max_in_flight": 0}, "max_in_flight"),
        ({"drain_timeout": -1.0}, "drain_timeout"),
        ({"tick_interval": 0.0}, "tick_interval"),
    ],
)
def test_bad_runner_options_are_refused(options: dict[str, Any], message: str) -> None:
    with _client("http://127.0.0.1:9") as api, pytest.raises(ValidationError, match=message):
        run_load(api, "ok", LoadPlan.constant(1, 1), b"{}", **options)


# Results -----------------------------------------------------------------------------------


def _result() -> Any:
    records = [
        RequestRecord(0.1, 10.0, 200, None),
        RequestRecord(0.5, 30.0, 200, None),
        RequestRecord(0.9, 5.0, 400, "ValidationError"),
        RequestRecord(1.2, None, None, SKIPPED),
        RequestRecord(1.4, 2.0, None, "ConnectError"),
        RequestRecord(2.5, 20.0, 200, None),
    ]
    samples = [InstanceSample(0.0, 1), InstanceSample(1.5, None, "x"), InstanceSample(2.2, 3)]
    return build_result(
        endpoint="ep",
        plan=LoadPlan.constant(2, 3),
        max_in_flight=8,
        records=list(reversed(records)),
        instances=samples,
        elapsed_s=3.2,
        max_lag_ms=1.5,
        client_cpu_s=0.005,
    )


def test_totals_and_per_second_rows() -> None:
    result = _result()
    totals = result.totals
    assert (totals.sent, totals.ok, totals.failed, totals.skipped) == (5, 3, 2, 1)
    assert totals.failed_by == {"400 ValidationError": 1, "ConnectError": 1}
    assert totals.achieved_rps == pytest.approx(5 / 3, abs=1e-3)
    # latency over answered requests (5, 10, 20, 30 ms); the connection error has none
    assert (totals.p50_ms, totals.p90_ms, totals.max_ms) == (10.0, 30.0, 30.0)
    assert totals.client_cpu_ms_per_request == 1.0
    rows = [(r.t, r.sent, r.ok, r.errors, r.skipped, r.instances) for r in result.timeline]
    assert rows == [(0, 3, 2, 1, 0, 1), (1, 1, 0, 1, 1, 1), (2, 1, 1, 0, 0, 3)]
    assert (result.timeline[0].p50_ms, result.timeline[0].p99_ms) == (10.0, 30.0)
    assert result.timeline[1].p50_ms is None


def test_to_dict_is_plain_json() -> None:
    data = json.loads(json.dumps(_result().to_dict()))
    assert data["totals"]["sent"] == 5 and len(data["timeline"]) == 3
    assert data["records"][0] == [0.1, 10.0, 200, None]
    assert data["plan"]["description"] == "2 rps for 3 s"
    assert "records" not in _result().to_dict(include_records=False)


def test_percentile_is_nearest_rank() -> None:
    assert percentile([], 0.5) is None
    assert percentile([1.0], 0.99) == 1.0
    values = [float(v) for v in range(1, 101)]
    assert (percentile(values, 0.5), percentile(values, 0.99)) == (50.0, 99.0)


def test_chart_is_one_self_contained_page() -> None:
    page = load_chart_html(_result(), "kennel load ep")
    assert page.startswith("<!doctype html>") and len(page) > 1_000_000  # plotly.js inside
    assert "<script src=" not in page  # nothing fetched from elsewhere
    names = page.replace("\\u002f", "/")  # the figure's JSON escapes slashes
    for text in ("kennel load ep", "sent/s", "errors/s", "p50 ms", "p99 ms", '"hv"', '"y3"'):
        assert text in names
