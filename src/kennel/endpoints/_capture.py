"""Data capture: a sample of an endpoint's requests and responses, in the artifact store.

The gateway decides per request with one random draw against the variant's
:class:`CaptureSettings` (nothing is built for a request left out), then hands the sampled
request to :meth:`CaptureWriter.submit`: an append to a bounded in-memory queue, no I/O,
no encoding. A background thread drains the queue every ``flush_seconds`` (sooner once
``batch_records`` wait), encodes the records in SageMaker's capture format and writes one
JSON Lines object per (endpoint, variant, hour) per flush::

    monitoring/{endpoint}/capture/{variant}/{YYYY}/{MM}/{DD}/{HH}/{YYYYMMDDTHHMMSS}-{8 hex}.jsonl

A full queue drops the record and counts it; a failed write is logged and counted. Capture
never fails or blocks a request.
"""

from __future__ import annotations

import base64
import collections
import functools
import json
import logging
import random
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import Field

from kennel._spec import Spec
from kennel.store import ArtifactStore

log = logging.getLogger(__name__)

DEFAULT_MAX_PAYLOAD_BYTES = 1 << 20
"""Payloads above this (per side) are stored by reference, not inlined."""
QUEUE_RECORDS = 10_000
"""Records waiting to be written at most; beyond, new ones are dropped (and counted)."""
QUEUE_BYTES = 256 << 20
"""Payload bytes waiting to be written at most (large images fill memory before the
record count is reached); beyond, new records are dropped (and counted)."""
BATCH_RECORDS = 500
"""A flush starts early once this many records wait."""
FLUSH_SECONDS = 1.0
EVENT_ID_HEADER = b"x-kennel-capture-event-id"

CaptureOption = Literal["Input", "Output"]


def _both_sides() -> list[CaptureOption]:
    return ["Input", "Output"]


class DataCaptureSpec(Spec):
    """An endpoint config's ``data_capture`` (SageMaker's DataCaptureConfig, snake_case).

    Given at all, it is enabled unless ``enable_capture`` says otherwise.
    """

    enable_capture: bool = True
    sampling_percentage: int = Field(default=100, ge=0, le=100)
    capture_options: list[CaptureOption] = Field(
        default_factory=_both_sides, min_length=1, max_length=2
    )
    max_payload_bytes: int = Field(default=DEFAULT_MAX_PAYLOAD_BYTES, ge=0, le=1 << 30)


@dataclass(frozen=True, slots=True)
class CaptureSettings:
    """What the gateway needs per request: the share to sample and what to keep."""

    endpoint: str
    fraction: float
    """0 < fraction <= 1: a request is captured when ``random() < fraction``."""
    capture_input: bool
    capture_output: bool
    max_payload_bytes: int


def capture_settings(endpoint: str, data_capture: dict[str, Any] | None) -> CaptureSettings | None:
    """An endpoint config's stored ``data_capture`` as the gateway reads it; None: off."""
    if not data_capture:
        return None
    spec = DataCaptureSpec.model_validate(data_capture)
    if not spec.enable_capture or spec.sampling_percentage <= 0:
        return None
    return CaptureSettings(
        endpoint=endpoint,
        fraction=spec.sampling_percentage / 100.0,
        capture_input="Input" in spec.capture_options,
        capture_output="Output" in spec.capture_options,
        max_payload_bytes=spec.max_payload_bytes,
    )


@dataclass(slots=True)
class CapturedRequest:
    """One sampled invocation, as the gateway hands it over (raw; encoded later)."""

    settings: CaptureSettings
    variant: str
    event_id: str
    time: float
    """Epoch seconds of the inference."""
    inference_id: str | None
    request_body: bytes
    request_content_type: str
    response_body: bytes
    response_content_type: str


@dataclass
class CaptureStats:
    """Counts since the writer started (``/metrics`` shows them)."""

    captured: int = 0
    """Handed to the writer and queued."""
    dropped: int = 0
    """Refused because the queue was full."""
    written: int = 0
    """Records written to the artifact store."""
    failed: int = 0
    """Records lost to a failed write."""
    files: int = 0
    """Capture files written."""


class CaptureWriter:
    """Queues sampled requests on the gateway's event loop and writes them in a thread.

    ``clock`` (epoch seconds) stamps each record; ``rng`` makes sampling reproducible.
    """

    def __init__(
        self,
        artifacts: ArtifactStore,
        *,
        max_queue: int = QUEUE_RECORDS,
        max_queue_bytes: int = QUEUE_BYTES,
        batch_records: int = BATCH_RECORDS,
        flush_seconds: float = FLUSH_SECONDS,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
    ) -> None:
        self.artifacts = artifacts
        self.max_queue = max_queue
        self.max_queue_bytes = max_queue_bytes
        self.batch_records = batch_records
        self.flush_seconds = flush_seconds
        self.clock = clock
        self.random: Callable[[], float] = (rng or random.Random()).random
        """The draw the gateway compares with :attr:`CaptureSettings.fraction`."""
        self.stats = CaptureStats()
        self._queue: collections.deque[CapturedRequest] = collections.deque()
        self._queued_bytes = 0
        """Payload bytes ever queued (written by the submitting thread only)."""
        self._drained_bytes = 0
        """Payload bytes ever taken off the queue (written under the write lock only);
        the difference is what waits, with no counter shared by two writers."""
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._write_lock = threading.Lock()
        self._thread: threading.Thread | None = None

    # The gateway's side: cheap, never raises, never blocks ---------------------------

    def sampled(self, settings: CaptureSettings | None) -> bool:
        """Whether to capture one request (the gateway inlines this test)."""
        return settings is not None and self.random() < settings.fraction

    def new_event_id(self) -> str:
        return str(uuid.uuid4())

    def submit(
        self,
        settings: CaptureSettings,
        variant: str,
        event_id: str,
        inference_id: str | None,
        request_body: bytes,
        request_content_type: str,
        response_body: bytes,
        response_content_type: str,
    ) -> bool:
        """Queue one sampled request; False (and counted) when the queue is full."""
        queue = self._queue
        size = len(request_body) + len(response_body)
        if (
            len(queue) >= self.max_queue
            or self._queued_bytes - self._drained_bytes + size > self.max_queue_bytes
        ):
            self.stats.dropped += 1
            return False
        self._queued_bytes += size
        queue.append(
            CapturedRequest(
                settings,
                variant,
                event_id,
                self.clock(),
                inference_id,
                request_body,
                request_content_type,
                response_body,
                response_content_type,
            )
        )
        self.stats.captured += 1
        if self._thread is None:
            self.start()
        elif len(queue) >= self.batch_records:
            self._wake.set()
        return True

    # The writer's side -----------------------------------------------------------------

    def start(self) -> None:
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(
                target=self._loop, name="kennel-capture-writer", daemon=True
            )
            self._thread.start()

    def close(self, timeout: float = 10.0) -> None:
        """Stop the thread and write what is queued (on server shutdown)."""
        self._stop.set()
        self._wake.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout)
        self.flush()

    @property
    def pending(self) -> int:
        return len(self._queue)

    def flush(self) -> int:
        """Write everything queued now; returns the records written."""
        with self._write_lock:
            records: list[CapturedRequest] = []
            queue = self._queue
            while queue:
                records.append(queue.popleft())
            if not records:
                return 0
            self._drained_bytes += sum(len(r.request_body) + len(r.response_body) for r in records)
            return self._write(records)

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.flush_seconds)
            self._wake.clear()
            try:
                self.flush()
            except Exception:  # a bug here must not end capture for the server's life
                log.exception("data capture: a flush failed")

    def _write(self, records: list[CapturedRequest]) -> int:
        groups: dict[tuple[str, str, str], list[CapturedRequest]] = {}
        for record in records:
            hour = _second(int(record.time))[0]
            groups.setdefault((record.settings.endpoint, record.variant, hour), []).append(record)
        written = 0
        for (endpoint, variant, hour), group in groups.items():
            try:
                text = "".join([self._line(r) for r in group])
                stamp = _second(int(group[0].time))[1]
                key = (
                    f"monitoring/{endpoint}/capture/{variant}/{hour}/"
                    f"{stamp}-{uuid.uuid4().hex[:8]}.jsonl"
                )
                self._put(key, text.encode())
            except Exception as error:  # noqa: BLE001 - logged and counted, never raised
                self.stats.failed += len(group)
                log.warning(
                    "data capture: could not write %d records of %s/%s: %s",
                    len(group),
                    endpoint,
                    variant,
                    error,
                )
                continue
            self.stats.written += len(group)
            self.stats.files += 1
            written += len(group)
        return written

    def _put(self, key: str, data: bytes) -> None:
        with self.artifacts.open(key, "wb") as file:
            file.write(data)

    def _line(self, record: CapturedRequest) -> str:
        """One record as a JSON line, built as text: json.dumps over a dict would scan
        every base64 payload for characters to escape, and base64 has none."""
        settings = record.settings
        sides = []
        if settings.capture_input:
            sides.append(
                '"endpointInput":'
                + self._payload(record, "INPUT", record.request_body, record.request_content_type)
            )
        if settings.capture_output:
            sides.append(
                '"endpointOutput":'
                + self._payload(
                    record, "OUTPUT", record.response_body, record.response_content_type
                )
            )
        return (
            '{"captureData":{'
            + ",".join(sides)
            + '},"eventMetadata":{"eventId":'
            + _dumps(record.event_id)
            + ',"inferenceId":'
            + _dumps(record.inference_id)
            + ',"inferenceTime":"'
            + _iso_millis(record.time)
            + '","variant":'
            + _dumps(record.variant)
            + ',"endpoint":'
            + _dumps(settings.endpoint)
            + '},"eventVersion":"0"}\n'
        )

    def _payload(self, record: CapturedRequest, mode: str, body: bytes, content_type: str) -> str:
        text = _json_text(body, content_type)
        encoding = "BASE64" if text is None else "JSON"
        head = '{"observedContentType":' + _dumps(content_type) + ',"mode":"' + mode + '","data":'
        if len(body) > record.settings.max_payload_bytes:
            ref = (
                f"monitoring/{record.settings.endpoint}/capture-payloads/"
                f"{record.event_id}-{mode.lower()}"
            )
            self._put(ref, body)
            return head + 'null,"encoding":"' + encoding + '","ref":' + _dumps(ref) + "}"
        if text is not None:
            return head + _dumps(text) + ',"encoding":"JSON"}'
        return head + '"' + base64.b64encode(body).decode("ascii") + '","encoding":"BASE64"}'


_dumps = json.JSONEncoder(ensure_ascii=False).encode
"""A value as JSON text (strings escaped; None -> null)."""


def _json_text(body: bytes, content_type: str) -> str | None:
    """The body as text when it is JSON content in UTF-8, else None (stored as base64)."""
    kind = content_type.split(";", 1)[0].strip().lower()
    if not (kind == "application/json" or kind.endswith("+json")):
        return None
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        return None


@functools.lru_cache(maxsize=16)
def _second(second: int) -> tuple[str, str, str]:
    """One UTC second as the hour's folders, a file stamp and an ISO prefix (cached: a
    flush formats the same few seconds thousands of times)."""
    stamp = datetime.fromtimestamp(second, UTC)
    return (
        stamp.strftime("%Y/%m/%d/%H"),
        stamp.strftime("%Y%m%dT%H%M%S"),
        stamp.strftime("%Y-%m-%dT%H:%M:%S"),
    )


def _iso_millis(epoch: float) -> str:
    return f"{_second(int(epoch))[2]}.{int(epoch * 1000) % 1000:03d}Z"


def read_capture_file(text: str) -> Iterable[dict[str, Any]]:
    """The records of one capture file (for readers and tests)."""
    for line in text.splitlines():
        if line.strip():
            yield json.loads(line)
