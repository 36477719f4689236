"""Capture files in the data-capture format (design section A), written by tests."""

from __future__ import annotations

import base64
import io
import json
import secrets
import uuid
from datetime import datetime
from typing import Any

import numpy as np
from PIL import Image

from kennel.store import ArtifactStore


def png(seed: int = 0, side: int = 32, invert: bool = False) -> bytes:
    pixels = np.random.default_rng(seed).integers(0, 255, (side, side, 3), dtype=np.uint8)
    if invert:
        pixels = 255 - pixels
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def record(
    endpoint: str,
    when: datetime,
    *,
    body: bytes | None = None,
    content_type: str = "image/png",
    output: Any = None,
    inference_id: str | None = None,
    event_id: str | None = None,
    variant: str = "AllTraffic",
) -> dict[str, Any]:
    capture: dict[str, Any] = {}
    if body is not None:
        is_json = content_type == "application/json"
        capture["endpointInput"] = {
            "observedContentType": content_type,
            "mode": "INPUT",
            "data": body.decode() if is_json else base64.b64encode(body).decode(),
            "encoding": "JSON" if is_json else "BASE64",
        }
    if output is not None:
        capture["endpointOutput"] = {
            "observedContentType": "application/json",
            "mode": "OUTPUT",
            "data": json.dumps(output),
            "encoding": "JSON",
        }
    return {
        "captureData": capture,
        "eventMetadata": {
            "eventId": event_id or str(uuid.uuid4()),
            "inferenceId": inference_id,
            "inferenceTime": when.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
            "variant": variant,
            "endpoint": endpoint,
        },
        "eventVersion": "0",
    }


def write_capture(
    artifacts: ArtifactStore, endpoint: str, records: list[dict[str, Any]], when: datetime
) -> str:
    """One capture file (one writer flush) of ``records`` for the hour of ``when``."""
    key = (
        f"monitoring/{endpoint}/capture/AllTraffic/{when:%Y/%m/%d/%H}/"
        f"{when:%Y%m%dT%H%M%S}-{secrets.token_hex(4)}.jsonl"
    )
    with artifacts.open(key, "wb") as f:
        f.write("".join(json.dumps(r) + "\n" for r in records).encode())
    return key
