"""A window of captured traffic: the capture files of its hours, read back and decoded.

Records are written by the data-capture writer in SageMaker's capture format under
``monitoring/{endpoint}/capture/{variant}/{YYYY}/{MM}/{DD}/{HH}/...jsonl`` (one line per
request). A window keeps the records whose ``inferenceTime`` is in ``[start, end)``; inputs
that are images (BASE64) are kept as bytes, ``{"url": ...}`` JSON inputs are counted and
skipped; outputs become a predicted class index and a confidence.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from kennel.store import ArtifactStore

MAX_RECORDS = 5000
"""A window's records beyond this are counted but not analysed (the newest are kept)."""


@dataclass(frozen=True)
class Prediction:
    index: int
    confidence: float
    label: str | None = None


@dataclass
class CapturedRecord:
    event_id: str
    inference_id: str | None
    time: datetime
    variant: str
    image: bytes | None = None
    prediction: Prediction | None = None

    @property
    def key(self) -> str:
        """What ground truth is joined on: the client's inference id, else the event id."""
        return self.inference_id or self.event_id


@dataclass
class CapturedWindow:
    start: datetime
    end: datetime
    records: list[CapturedRecord] = field(default_factory=list)
    counts: Counter[str] = field(default_factory=Counter)


def capture_prefix(endpoint: str) -> str:
    return f"monitoring/{endpoint}/capture"


def read_window(
    artifacts: ArtifactStore,
    endpoint: str,
    start: datetime,
    end: datetime,
    *,
    variant: str | None = None,
    max_records: int = MAX_RECORDS,
) -> CapturedWindow:
    """The records captured for ``endpoint`` (one variant's, or all) with an inference
    time in ``[start, end)``."""
    window = CapturedWindow(start=start, end=end)
    hours = _hours(start, end)
    prefix = capture_prefix(endpoint) + (f"/{variant}" if variant else "")
    for key in artifacts.list(prefix):
        if not key.endswith(".jsonl") or _hour_of(key) not in hours:
            continue
        with artifacts.open(key, "rb") as f:
            lines = f.read().decode("utf-8", "replace").splitlines()
        for line in lines:
            if not line.strip():
                continue
            record = _record(artifacts, line, window.counts)
            if record is not None and start <= record.time < end:
                window.records.append(record)
    window.records.sort(key=lambda r: r.time)
    window.counts["records"] = len(window.records)
    if len(window.records) > max_records:
        window.counts["not_analysed"] = len(window.records) - max_records
        window.records = window.records[-max_records:]
    window.counts["images"] = sum(1 for r in window.records if r.image is not None)
    window.counts["predictions"] = sum(1 for r in window.records if r.prediction is not None)
    return window


def _hours(start: datetime, end: datetime) -> set[str]:
    hour = start.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    found: set[str] = set()
    while hour < end:
        found.add(hour.strftime("%Y/%m/%d/%H"))
        hour += timedelta(hours=1)
    return found


def _hour_of(key: str) -> str:
    parts = key.split("/")
    return "/".join(parts[-5:-1]) if len(parts) >= 5 else ""


def _record(artifacts: ArtifactStore, line: str, counts: Counter[str]) -> CapturedRecord | None:
    try:
        document = json.loads(line)
        meta = document["eventMetadata"]
        when = parse_time(meta["inferenceTime"])
        data = document.get("captureData") or {}
    except (ValueError, KeyError, TypeError):
        counts["unreadable"] += 1
        return None
    record = CapturedRecord(
        event_id=str(meta.get("eventId") or ""),
        inference_id=meta.get("inferenceId") or None,
        time=when,
        variant=str(meta.get("variant") or ""),
    )
    if isinstance(data.get("endpointInput"), dict):
        record.image = _image(artifacts, data["endpointInput"], counts)
    if isinstance(data.get("endpointOutput"), dict):
        payload = _payload(artifacts, data["endpointOutput"])
        record.prediction = parse_prediction(payload) if payload is not None else None
        if record.prediction is None:
            counts["unparsed_outputs"] += 1
    return record


def parse_time(text: str) -> datetime:
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _payload(artifacts: ArtifactStore, part: dict[str, Any]) -> bytes | None:
    data = part.get("data")
    if data is None:
        ref = part.get("ref")
        if not isinstance(ref, str) or not artifacts.exists(ref):
            return None
        with artifacts.open(ref, "rb") as f:
            raw: bytes = f.read()
        return raw
    if not isinstance(data, str):
        return None
    if str(part.get("encoding", "")).upper() == "BASE64":
        try:
            return base64.b64decode(data)
        except (binascii.Error, ValueError):
            return None
    return data.encode("utf-8")


def _image(artifacts: ArtifactStore, part: dict[str, Any], counts: Counter[str]) -> bytes | None:
    content_type = str(part.get("observedContentType", "")).split(";")[0].strip().lower()
    payload = _payload(artifacts, part)
    if payload is None:
        counts["missing_inputs"] += 1
        return None
    if content_type in ("application/json", "text/plain") or content_type.endswith("+json"):
        counts["url_inputs" if b"url" in payload[:200] else "json_inputs"] += 1
        return None
    if content_type == "application/x-npy":
        counts["npy_inputs"] += 1
        return None
    return payload


def parse_prediction(payload: bytes) -> Prediction | None:
    """The first prediction of a response: kennel's labelled form or a list of scores."""
    try:
        document = json.loads(payload)
    except (ValueError, UnicodeDecodeError):
        return None
    if isinstance(document, dict):
        document = document.get("predictions", document.get("scores"))
    while isinstance(document, list) and document and isinstance(document[0], list):
        document = document[0]
    if not isinstance(document, list) or not document:
        return None
    if all(isinstance(v, dict) for v in document):
        return _labelled(document)
    if all(isinstance(v, int | float) and not isinstance(v, bool) for v in document):
        return _scores([float(v) for v in document])
    return None


def _labelled(items: list[dict[str, Any]]) -> Prediction | None:
    try:
        best = max(items, key=lambda item: float(item.get("score", 0.0)))
        return Prediction(
            index=int(best["index"]),
            confidence=float(best.get("score", 0.0)),
            label=str(best["label"]) if "label" in best else None,
        )
    except (KeyError, TypeError, ValueError):
        return None


def _scores(values: list[float]) -> Prediction:
    """Scores as probabilities: logits (negative, or not summing to one) get a softmax."""
    if any(v < 0 for v in values) or abs(sum(values) - 1.0) > 1e-3:
        top = max(values)
        exps = [math.exp(v - top) for v in values]
        total = sum(exps)
        values = [e / total for e in exps]
    index = max(range(len(values)), key=values.__getitem__)
    return Prediction(index=index, confidence=values[index])
