"""The data-capture writer: sampling, SageMaker's record format, partitions, failures."""

from __future__ import annotations

import base64
import json
import random
import re
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from kennel.endpoints._capture import (
    CaptureSettings,
    CaptureWriter,
    DataCaptureSpec,
    capture_settings,
    read_capture_file,
)
from kennel.store import ArtifactStore

KEY = re.compile(
    r"^monitoring/dogs/capture/AllTraffic/(\d{4})/(\d{2})/(\d{2})/(\d{2})/"
    r"(\d{8}T\d{6})-[0-9a-f]{8}\.jsonl$"
)
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256))
ANSWER = b'{"predictions": [[{"label": "001.Affenpinscher", "index": 0, "score": 0.9}]]}'
T0 = datetime(2026, 12, 3, 10, 4, 5, 123456, tzinfo=UTC).timestamp()


class Clock:
    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def settings(**changes: Any) -> CaptureSettings:
    values: dict[str, Any] = {
        "endpoint": "dogs",
        "fraction": 1.0,
        "capture_input": True,
        "capture_output": True,
        "max_payload_bytes": 1 << 20,
    }
    values.update(changes)
    return CaptureSettings(**values)


def writer(tmp_path: Path, **kwargs: Any) -> CaptureWriter:
    kwargs.setdefault("clock", Clock())
    return CaptureWriter(ArtifactStore(str(tmp_path / "artifacts")), **kwargs)


def submit(
    capture: CaptureWriter,
    which: CaptureSettings | None = None,
    *,
    event_id: str = "e-1",
    inference_id: str | None = "inf-1",
    body: bytes = PNG,
    content_type: str = "image/png",
    answer: bytes = ANSWER,
    answer_type: str = "application/json",
) -> bool:
    return capture.submit(
        which or settings(),
        "AllTraffic",
        event_id,
        inference_id,
        body,
        content_type,
        answer,
        answer_type,
    )


def records(capture: CaptureWriter) -> dict[str, list[dict[str, Any]]]:
    store = capture.artifacts
    return {
        key: list(read_capture_file(store.open(key).read().decode()))
        for key in store.list("monitoring/dogs/capture")
    }


def test_the_spec_has_sagemakers_defaults_and_refuses_nonsense() -> None:
    spec = DataCaptureSpec()
    assert spec.model_dump() == {
        "enable_capture": True,
        "sampling_percentage": 100,
        "capture_options": ["Input", "Output"],
        "max_payload_bytes": 1048576,
    }
    for bad in (
        {"sampling_percentage": 101},
        {"sampling_percentage": -1},
        {"capture_options": []},
        {"capture_options": ["Headers"]},
        {"max_payload_bytes": -1},
        {"sampling_percent": 5},
    ):
        with pytest.raises(ValidationError):
            DataCaptureSpec.model_validate(bad)


def test_settings_are_none_when_capture_is_off() -> None:
    assert capture_settings("dogs", None) is None
    assert capture_settings("dogs", {"enable_capture": False}) is None
    assert capture_settings("dogs", {"sampling_percentage": 0}) is None
    on = capture_settings("dogs", {"sampling_percentage": 25, "capture_options": ["Output"]})
    assert on == CaptureSettings("dogs", 0.25, False, True, 1 << 20)


@pytest.mark.parametrize("percentage", [10, 50, 90])
def test_sampling_takes_the_configured_share(tmp_path: Path, percentage: int) -> None:
    capture = writer(tmp_path, rng=random.Random(7))
    which = capture_settings("dogs", {"sampling_percentage": percentage})
    draws = 2000
    taken = sum(capture.sampled(which) for _ in range(draws))
    p = percentage / 100
    sigma = (draws * p * (1 - p)) ** 0.5
    assert abs(taken - draws * p) < 4 * sigma
    assert not capture.sampled(None)
    assert all(capture.sampled(settings(fraction=1.0)) for _ in range(100))


def test_a_record_is_sagemakers_capture_format(tmp_path: Path) -> None:
    capture = writer(tmp_path)
    assert submit(capture)
    assert capture.flush() == 1
    [(key, lines)] = records(capture).items()
    assert KEY.match(key).groups() == ("2026", "12", "03", "10", "20261203T100405")  # type: ignore[union-attr]
    assert lines == [
        {
            "captureData": {
                "endpointInput": {
                    "observedContentType": "image/png",
                    "mode": "INPUT",
                    "data": base64.b64encode(PNG).decode(),
                    "encoding": "BASE64",
                },
                "endpointOutput": {
                    "observedContentType": "application/json",
                    "mode": "OUTPUT",
                    "data": ANSWER.decode(),
                    "encoding": "JSON",
                },
            },
            "eventMetadata": {
                "eventId": "e-1",
                "inferenceId": "inf-1",
                "inferenceTime": "2026-12-03T10:04:05.123Z",
                "variant": "AllTraffic",
                "endpoint": "dogs",
            },
            "eventVersion": "0",
        }
    ]
    assert capture.stats.captured == capture.stats.written == 1
    assert capture.stats.files == 1


def test_json_is_inlined_as_text_and_anything_else_as_base64(tmp_path: Path) -> None:
    capture = writer(tmp_path)
    body = json.dumps({"url": "https://example.com/dog.jpg"}).encode()
    submit(capture, event_id="json", body=body, content_type="application/json; charset=utf-8")
    submit(capture, event_id="bad-utf8", body=b"\xff\xfe{", content_type="application/json")
    submit(capture, event_id="csv", body=b"1,2,3", content_type="text/csv", inference_id=None)
    capture.flush()
    [lines] = records(capture).values()
    by_id = {line["eventMetadata"]["eventId"]: line for line in lines}
    first = by_id["json"]["captureData"]["endpointInput"]
    assert (first["encoding"], json.loads(first["data"])) == ("JSON", json.loads(body))
    second = by_id["bad-utf8"]["captureData"]["endpointInput"]
    assert second["encoding"] == "BASE64"
    assert base64.b64decode(second["data"]) == b"\xff\xfe{"
    third = by_id["csv"]
    assert third["captureData"]["endpointInput"]["encoding"] == "BASE64"
    assert third["eventMetadata"]["inferenceId"] is None


def test_capture_options_choose_the_sides(tmp_path: Path) -> None:
    capture = writer(tmp_path)
    submit(capture, settings(capture_output=False), event_id="in")
    submit(capture, settings(capture_input=False), event_id="out")
    capture.flush()
    [lines] = records(capture).values()
    sides = {line["eventMetadata"]["eventId"]: set(line["captureData"]) for line in lines}
    assert sides == {"in": {"endpointInput"}, "out": {"endpointOutput"}}


def test_a_payload_over_the_cap_is_stored_by_reference(tmp_path: Path) -> None:
    capture = writer(tmp_path)
    big = PNG * 10
    submit(capture, settings(max_payload_bytes=len(PNG) * 5), event_id="big", body=big)
    capture.flush()
    [[line]] = records(capture).values()
    side = line["captureData"]["endpointInput"]
    assert side["data"] is None
    assert side["ref"] == "monitoring/dogs/capture-payloads/big-input"
    assert side["encoding"] == "BASE64"
    assert capture.artifacts.open(side["ref"]).read() == big
    assert line["captureData"]["endpointOutput"]["data"] == ANSWER.decode()  # under the cap


def test_records_are_partitioned_by_the_hour_of_the_inference(tmp_path: Path) -> None:
    clock = Clock()
    capture = writer(tmp_path, clock=clock)
    submit(capture, event_id="a")
    clock.now += 3600
    submit(capture, event_id="b")
    submit(capture, event_id="c")
    capture.flush()
    found = records(capture)
    hours = {
        KEY.match(k).group(4): [r["eventMetadata"]["eventId"] for r in v] for k, v in found.items()
    }  # type: ignore[union-attr]
    assert hours == {"10": ["a"], "11": ["b", "c"]}
    submit(capture, event_id="d")
    capture.flush()
    assert len(records(capture)) == 3  # one more file for the same hour, not an append


def test_a_full_queue_drops_and_counts(tmp_path: Path) -> None:
    capture = writer(tmp_path, max_queue=3, flush_seconds=3600)
    capture.start()
    try:
        results = [submit(capture, event_id=f"e{i}") for i in range(5)]
        assert results == [True, True, True, False, False]
        assert (capture.stats.captured, capture.stats.dropped) == (3, 2)
    finally:
        capture.close()
    assert capture.stats.written == 3


def test_the_queue_is_bounded_in_bytes_too(tmp_path: Path) -> None:
    capture = writer(tmp_path, max_queue_bytes=3 * (len(PNG) + len(ANSWER)), flush_seconds=3600)
    capture.start()
    try:
        assert [submit(capture, event_id=f"e{i}") for i in range(4)] == [True] * 3 + [False]
        capture.flush()
        assert submit(capture, event_id="after-a-flush")
        assert capture.stats.dropped == 1
    finally:
        capture.close()
    assert capture.stats.written == 4


def test_a_failed_write_is_counted_not_raised(tmp_path: Path) -> None:
    capture = writer(tmp_path)

    def broken(key: str, data: bytes) -> None:
        raise OSError("disk full")

    capture._put = broken  # type: ignore[method-assign]
    submit(capture, event_id="lost")
    assert capture.flush() == 0
    assert (capture.stats.failed, capture.stats.written) == (1, 0)


def test_the_thread_writes_within_a_flush_period_and_close_writes_the_rest(
    tmp_path: Path,
) -> None:
    capture = writer(tmp_path, flush_seconds=0.05, batch_records=2)
    for i in range(4):
        submit(capture, event_id=f"e{i}")
    deadline = datetime.now(UTC).timestamp() + 5
    while capture.stats.written < 4 and datetime.now(UTC).timestamp() < deadline:
        time.sleep(0.01)
    assert capture.stats.written == 4
    capture.flush_seconds = 3600
    capture.close()
    later = writer(tmp_path, flush_seconds=3600)
    later.start()
    submit(later, event_id="last")
    later.close()
    assert later.stats.written == 1
