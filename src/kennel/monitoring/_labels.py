"""Ground truth: JSON Lines of labels for captured inferences, in kennel's or SageMaker's form.

kennel's line is ``{"inference_id": "...", "label": "003.Airedale_terrier"}``; SageMaker's
is ``{"groundTruthData": {"data": "...", "encoding": "CSV"}, "eventMetadata": {"eventId":
"..."}, "eventVersion": "0"}``. Both become ``GroundTruth(key, label)``; the key is matched
to a capture's inferenceId, else its eventId.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field
from typing import Any

MAX_LABEL_CHARS = 256
MAX_REJECTIONS_SHOWN = 50


@dataclass(frozen=True)
class GroundTruth:
    key: str
    label: str


@dataclass
class ParsedLabels:
    accepted: list[GroundTruth] = field(default_factory=list)
    rejected: list[dict[str, Any]] = field(default_factory=list)
    """``{"line": n, "reason": ...}`` per refused line (1-based)."""

    def summary(self) -> dict[str, Any]:
        return {
            "accepted": len(self.accepted),
            "rejected": len(self.rejected),
            "errors": self.rejected[:MAX_REJECTIONS_SHOWN],
        }


def parse_labels(body: bytes) -> ParsedLabels:
    """Every line of ``body``: accepted as a label or rejected with the reason why."""
    parsed = ParsedLabels()
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        parsed.rejected.append({"line": 0, "reason": "the body is not UTF-8 text"})
        return parsed
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            parsed.accepted.append(parse_line(line))
        except ValueError as error:
            parsed.rejected.append({"line": number, "reason": str(error)})
    return parsed


def parse_line(line: str) -> GroundTruth:
    try:
        document = json.loads(line)
    except json.JSONDecodeError as error:
        raise ValueError(f"not JSON: {error.msg}") from None
    if not isinstance(document, dict):
        raise ValueError("a line must be a JSON object")
    if "groundTruthData" in document:
        key, label = _sagemaker(document)
    else:
        key, label = _kennel(document)
    if not key:
        raise ValueError("the inference id is empty")
    label = label.strip()
    if not label:
        raise ValueError("the label is empty")
    if len(label) > MAX_LABEL_CHARS or len(key) > MAX_LABEL_CHARS:
        raise ValueError(f"the label and the id are at most {MAX_LABEL_CHARS} characters")
    return GroundTruth(key=key, label=label)


def _kennel(document: dict[str, Any]) -> tuple[str, str]:
    key = document.get("inference_id", document.get("event_id"))
    label = document.get("label")
    if not isinstance(key, str):
        raise ValueError('a line needs "inference_id" (text) and "label", or SageMaker\'s form')
    if not isinstance(label, str | int):
        raise ValueError('"label" must be a class name (text)')
    return key, str(label)


def _sagemaker(document: dict[str, Any]) -> tuple[str, str]:
    data = document.get("groundTruthData")
    meta = document.get("eventMetadata")
    if not isinstance(data, dict) or not isinstance(meta, dict):
        raise ValueError("groundTruthData and eventMetadata must be objects")
    key = meta.get("inferenceId") or meta.get("eventId")
    if not isinstance(key, str):
        raise ValueError("eventMetadata.eventId must be text")
    value = data.get("data")
    if not isinstance(value, str):
        raise ValueError("groundTruthData.data must be text")
    encoding = str(data.get("encoding", "CSV")).upper()
    if encoding == "BASE64":
        try:
            value = base64.b64decode(value, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            raise ValueError("groundTruthData.data is not base64 of UTF-8 text") from None
    elif encoding == "JSON":
        try:
            decoded = json.loads(value)
        except json.JSONDecodeError:
            raise ValueError("groundTruthData.data is not JSON") from None
        value = decoded.get("label", "") if isinstance(decoded, dict) else decoded
        value = str(value)
    elif encoding == "CSV":
        value = value.split(",", 1)[0]
    else:
        raise ValueError(f"unknown encoding {encoding}; use CSV, JSON or BASE64")
    return key, value
