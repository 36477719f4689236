"""The Prometheus exposition: escaping, histograms, and the JSON log formatter."""

from __future__ import annotations

import json
import logging
import sys
from typing import Any

from prometheus_client.core import HistogramMetricFamily
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from kennel._logging import FIELDS, REQUEST_ID, JsonFormatter
from kennel.api._metrics import counter, exposition, gauge, histogram
from kennel.store._histogram import Histogram

AWKWARD = ['say "woof"', "back\\slash", "two\nlines", "ünïcode", 'all \\ " \n of them']


def _samples(text: str) -> list[Sample]:
    return [s for family in text_string_to_metric_families(text) for s in family.samples]


def test_label_values_are_escaped_and_parse_back_unchanged() -> None:
    family = counter("kennel_test_things", "Things (with a \\ and a\nnewline in the help).", ["x"])
    for value in AWKWARD:
        family.add_metric([value], 1.0)
    text = exposition([family]).decode()

    assert 'x="say \\"woof\\""' in text
    assert 'x="back\\\\slash"' in text
    assert 'x="two\\nlines"' in text
    assert "# HELP kennel_test_things_total Things (with a \\\\ and a\\nnewline" in text
    assert "# TYPE kennel_test_things_total counter" in text
    # One sample per line: no raw newline inside a label value.
    assert sum(line.startswith("kennel_test_things_total{") for line in text.splitlines()) == 5
    parsed = {s.labels["x"]: s.value for s in _samples(text)}
    assert parsed == dict.fromkeys(AWKWARD, 1.0)


def test_histograms_are_cumulative_with_count_and_sum() -> None:
    latency = Histogram((0.001, 0.01, 0.1))
    for seconds in (0.0005, 0.001, 0.002, 0.05, 3.0):
        latency.observe(seconds)
    snapshot = latency.snapshot()
    assert snapshot.buckets == ((0.001, 2), (0.01, 3), (0.1, 4), (float("inf"), 5))
    assert snapshot.count == 5
    assert abs(snapshot.sum - 3.0535) < 1e-9

    family = HistogramMetricFamily("kennel_test_latency_seconds", "Latency.", labels=["v"])
    histogram(family, ["a"], snapshot)
    text = exposition([family, gauge("kennel_test_empty", "No samples.", ["v"])]).decode()
    samples = {(s.name, s.labels.get("le")): s.value for s in _samples(text)}
    assert samples[("kennel_test_latency_seconds_bucket", "0.001")] == 2
    assert samples[("kennel_test_latency_seconds_bucket", "+Inf")] == 5
    assert samples[("kennel_test_latency_seconds_count", None)] == 5
    assert "# TYPE kennel_test_latency_seconds histogram" in text
    assert "# TYPE kennel_test_empty gauge" in text


def test_process_metrics_come_with_the_exposition() -> None:
    names = {s.name for s in _samples(exposition([], process=True).decode())}
    if sys.platform == "linux":
        assert {"process_cpu_seconds_total", "process_resident_memory_bytes"} <= names
    assert "python_info" in names


def _record(message: str, exc_info: Any = None, extra: Any = None) -> logging.LogRecord:
    return logging.getLogger("kennel.test").makeRecord(
        "kennel.test", logging.ERROR, __file__, 1, message, (), exc_info, extra=extra
    )


def test_json_log_lines_carry_the_request_id_and_the_traceback() -> None:
    formatter = JsonFormatter()
    outside = json.loads(formatter.format(_record("plain")))
    assert outside["message"] == "plain" and "request_id" not in outside
    assert {"time", "level", "logger"} <= outside.keys() and outside["level"] == "ERROR"

    token = REQUEST_ID.set("req-123")
    try:
        try:
            raise ValueError("multi\nline")
        except ValueError:
            record = _record("failed", exc_info=sys.exc_info(), extra={FIELDS: {"status": 500}})
        line = formatter.format(record)
    finally:
        REQUEST_ID.reset(token)
    assert "\n" not in line
    entry = json.loads(line)
    assert entry["request_id"] == "req-123"
    assert entry["status"] == 500
    assert "ValueError: multi\nline" in entry["exc_info"]
