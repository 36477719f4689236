"""The open-loop runner: requests leave when the plan's clock says so, not when the last
one came back.

A closed loop (N workers, each waiting for its answer) slows down with the server and so
hides exactly the overload a load test is for. Here arrivals follow the plan whatever the
answers do; what bounds the client is ``max_in_flight``: an arrival that finds that many
requests outstanding is recorded as skipped (the client, not the server, was the limit)
instead of queueing without end. The run as a whole is bounded too: at the plan's duration
plus ``drain_timeout`` whatever is still outstanding is cancelled and recorded.

Each request is SigV4-signed at send time (a 1-hour run outlives any pre-signed date) with
the credentials of the :class:`~kennel._client.KennelClient` given, exactly as boto3's
``sagemaker-runtime`` client signs InvokeEndpoint. Only a server on this machine is a
valid target: a load test from here must not leave it.
"""

from __future__ import annotations

import asyncio
import hashlib
import ipaddress
import math
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

import httpx
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from kennel._client import SERVICE, KennelClient, path_segment, tls_verify
from kennel._errors import KennelError, ValidationError
from kennel.loadgen._plan import MAX_DURATION_SECONDS, LoadPlan
from kennel.loadgen._result import (
    CANCELLED,
    SKIPPED,
    InstanceSample,
    LoadResult,
    LoadSnapshot,
    RequestRecord,
    build_result,
    percentile,
)

DEFAULT_MAX_IN_FLIGHT = 256
MAX_IN_FLIGHT_LIMIT = 4096
"""Each request in flight holds a connection (a file descriptor)."""
DEFAULT_DRAIN_TIMEOUT = 30.0
TICK_INTERVAL = 0.25
POLL_INTERVAL = 1.0
POLL_TIMEOUT = 5.0
"""A describe call slower than this is recorded as failed; it also bounds stopping."""
LIVE_WINDOW = 5.0
"""Seconds the live figures (rate, p50, p99) are computed over."""
CONNECT_TIMEOUT = 5.0

_CONTENT_TYPES = {
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".png": "image/png",
    ".json": "application/json",
}

TickCallback = Callable[[LoadSnapshot], None]


def content_type_for(path: Path) -> str:
    """The Content-Type a body file is sent with, from its extension."""
    return _CONTENT_TYPES.get(path.suffix.lower(), "application/octet-stream")


def check_loopback(url: str) -> None:
    """Refuse a server that is not on this machine (127.0.0.0/8, ::1 or ``localhost``)."""
    host = urlsplit(url).hostname or ""
    loopback = host.lower() == "localhost"
    if not loopback:
        try:
            loopback = ipaddress.ip_address(host).is_loopback
        except ValueError:
            loopback = False
    if not loopback:
        raise ValidationError(
            f"Refusing to send load to {url}: its host {host or '(none)'!r} is not a loopback "
            "address. Load tests must stay on this machine (127.0.0.1, localhost or ::1): "
            "up to 2000 requests/s aimed elsewhere is an attack on someone's server.",
            hint="Run kennel load on the server's machine, with KENNEL_ENDPOINT_URL="
            "http://127.0.0.1:PORT.",
        )


def run_load(
    client: KennelClient,
    endpoint: str,
    plan: LoadPlan,
    body: bytes,
    *,
    content_type: str = "application/octet-stream",
    accept: str | None = None,
    max_in_flight: int = DEFAULT_MAX_IN_FLIGHT,
    drain_timeout: float = DEFAULT_DRAIN_TIMEOUT,
    on_tick: TickCallback | None = None,
    tick_interval: float = TICK_INTERVAL,
    poll_interval: float = POLL_INTERVAL,
) -> LoadResult:
    """Send ``plan``'s InvokeEndpoint requests to ``endpoint`` and record every outcome.

    Runs its own event loop (use :func:`run_load_async` from inside one). ``on_tick`` is
    called on that loop about every ``tick_interval`` seconds and once at the end;
    whatever it raises stops the run and is raised here.
    """
    return asyncio.run(
        run_load_async(
            client,
            endpoint,
            plan,
            body,
            content_type=content_type,
            accept=accept,
            max_in_flight=max_in_flight,
            drain_timeout=drain_timeout,
            on_tick=on_tick,
            tick_interval=tick_interval,
            poll_interval=poll_interval,
        )
    )


async def run_load_async(
    client: KennelClient,
    endpoint: str,
    plan: LoadPlan,
    body: bytes,
    *,
    content_type: str = "application/octet-stream",
    accept: str | None = None,
    max_in_flight: int = DEFAULT_MAX_IN_FLIGHT,
    drain_timeout: float = DEFAULT_DRAIN_TIMEOUT,
    on_tick: TickCallback | None = None,
    tick_interval: float = TICK_INTERVAL,
    poll_interval: float = POLL_INTERVAL,
) -> LoadResult:
    """:func:`run_load` on the running event loop."""
    check_loopback(client.endpoint_url)
    if not endpoint:
        raise ValidationError("Name the endpoint to load.")
    if not 1 <= max_in_flight <= MAX_IN_FLIGHT_LIMIT:
        raise ValidationError(
            f"max_in_flight {max_in_flight} is out of range: 1 to {MAX_IN_FLIGHT_LIMIT}."
        )
    if not math.isfinite(drain_timeout) or not 0 <= drain_timeout <= MAX_DURATION_SECONDS:
        raise ValidationError(
            f"drain_timeout {drain_timeout:g} s is out of range: 0 to {MAX_DURATION_SECONDS:g} s."
        )
    for name, interval in (("tick_interval", tick_interval), ("poll_interval", poll_interval)):
        if not math.isfinite(interval) or interval < 0.01:
            raise ValidationError(f"{name} {interval:g} s is too short: at least 0.01 s.")
    headers = {"Content-Type": content_type}
    if accept:
        headers["Accept"] = accept
    url = f"{client.endpoint_url}/endpoints/{path_segment(endpoint)}/invocations"
    signer = _Signer(url, client.credentials, client.region, body, headers)
    run = _Run(
        client,
        endpoint,
        plan,
        body,
        signer,
        max_in_flight=max_in_flight,
        drain_timeout=drain_timeout,
        on_tick=on_tick,
        tick_interval=tick_interval,
        poll_interval=poll_interval,
    )
    return await run.execute()


class _Signer:
    """SigV4 headers for one fixed request, signed anew each time (the date moves on)."""

    def __init__(
        self,
        url: str,
        credentials: Credentials,
        region: str,
        body: bytes,
        headers: dict[str, str],
    ) -> None:
        self.url = url
        self._auth = SigV4Auth(credentials, SERVICE, region)
        self._headers = {
            **headers,
            "X-Amz-Content-SHA256": hashlib.sha256(body).hexdigest(),
            "Host": urlsplit(url).netloc,
        }

    def headers(self) -> dict[str, str]:
        request = AWSRequest(method="POST", url=self.url, headers=dict(self._headers))
        self._auth.add_auth(request)
        return {k: v for k, v in request.headers.items() if k.lower() != "host"}


class _InstancePoller:
    """Describes the endpoint every ``interval`` seconds in a thread of its own (so a
    slow describe never delays an arrival) and keeps the in-service instance count."""

    def __init__(
        self,
        client: KennelClient,
        endpoint: str,
        interval: float,
        limit_s: float,
        clock: Callable[[], float],
    ) -> None:
        self.samples: list[InstanceSample] = []
        self._api = KennelClient(
            client.endpoint_url,
            client.credentials,
            client.region,
            timeout=POLL_TIMEOUT,
            ca_bundle=client.ca_bundle,
        )
        self._path = f"/api/v1/endpoints/{path_segment(endpoint)}"
        self._interval = interval
        self._polls = math.ceil(limit_s / interval) + 2
        self._clock = clock
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="kennel-load-poller", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(POLL_TIMEOUT + 1.0)

    def latest(self) -> int | None:
        for sample in reversed(self.samples[-5:]):
            if sample.instances is not None:
                return sample.instances
        return None

    def _loop(self) -> None:
        try:
            for number in range(1, self._polls + 1):
                self.samples.append(self._poll())
                if self._stop.wait(max(number * self._interval - self._clock(), 0.0)):
                    return
        finally:
            self._api.close()

    def _poll(self) -> InstanceSample:
        t = round(self._clock(), 3)
        try:
            info = self._api.get(self._path)
        except KennelError as err:
            return InstanceSample(t, None, f"{err.aws_code}: {err.message}")
        variants = info.get("production_variants") or []
        return InstanceSample(t, sum(int(v.get("current_instance_count") or 0) for v in variants))


class _Run:
    """The state of one run; :meth:`execute` drives it."""

    def __init__(
        self,
        client: KennelClient,
        endpoint: str,
        plan: LoadPlan,
        body: bytes,
        signer: _Signer,
        *,
        max_in_flight: int,
        drain_timeout: float,
        on_tick: TickCallback | None,
        tick_interval: float,
        poll_interval: float,
    ) -> None:
        self.endpoint = endpoint
        self.plan = plan
        self.body = body
        self.signer = signer
        self.ca_bundle = client.ca_bundle
        self.max_in_flight = max_in_flight
        self.drain_timeout = drain_timeout
        self.on_tick = on_tick
        self.tick_interval = tick_interval
        self.limit_s = plan.duration + drain_timeout
        self.records: list[RequestRecord] = []
        self.tasks: set[asyncio.Task[None]] = set()
        self.failure: BaseException | None = None
        self.in_flight = self.sent = self.ok = self.errors = self.skipped = 0
        self.max_lag_s = 0.0
        self.draining = False
        self.started = time.perf_counter()
        self.poller = _InstancePoller(
            client, endpoint, poll_interval, self.limit_s + poll_interval, self.now
        )
        # Room for twice the plan's peak rate over the live window: bounded memory.
        peak = max(max(p.start_rps, p.end_rps) for p in plan.phases)
        recent = math.ceil(LIVE_WINDOW * peak * 2) + 16
        self.recent_sent: deque[float] = deque(maxlen=recent)
        self.recent_latency: deque[tuple[float, float]] = deque(maxlen=recent)

    def now(self) -> float:
        return time.perf_counter() - self.started

    async def execute(self) -> LoadResult:
        limits = httpx.Limits(
            max_connections=self.max_in_flight, max_keepalive_connections=self.max_in_flight
        )
        timeout = httpx.Timeout(self.limit_s, connect=min(CONNECT_TIMEOUT, self.limit_s))
        cpu_before = time.process_time()
        self.started = time.perf_counter()
        self.poller.start()
        background: list[asyncio.Task[None]] = []
        try:
            async with httpx.AsyncClient(
                trust_env=False, limits=limits, timeout=timeout, verify=tls_verify(self.ca_bundle)
            ) as http:
                if self.on_tick is not None:
                    background.append(asyncio.create_task(self._tick(self.on_tick)))
                    background[-1].add_done_callback(self._note_failure)
                try:
                    await self._schedule(http)
                    await self._drain()
                finally:
                    await self._cancel([*self.tasks, *background])
        finally:
            self.poller.stop()
        if self.failure is not None:
            raise self.failure
        elapsed = self.now()
        if self.on_tick is not None:
            self.on_tick(self.snapshot())
        return build_result(
            endpoint=self.endpoint,
            plan=self.plan,
            max_in_flight=self.max_in_flight,
            records=self.records,
            instances=list(self.poller.samples),
            elapsed_s=elapsed,
            max_lag_ms=self.max_lag_s * 1000,
            client_cpu_s=time.process_time() - cpu_before,
        )

    async def _schedule(self, http: httpx.AsyncClient) -> None:
        arrivals = self.plan.arrivals()
        for due in arrivals:
            # sleep(0) when behind still lets the requests already started make progress.
            await asyncio.sleep(max(due - self.now(), 0.0))
            if self.failure is not None:
                raise self.failure
            now = self.now()
            self.max_lag_s = max(self.max_lag_s, now - due)
            if now >= self.limit_s:
                # So far behind that the run's time is up: the rest were never sent.
                self._record(RequestRecord(due, None, None, SKIPPED))
                for late in arrivals:
                    self._record(RequestRecord(late, None, None, SKIPPED))
                return
            if self.in_flight >= self.max_in_flight:
                self._record(RequestRecord(now, None, None, SKIPPED))
                continue
            self.in_flight += 1  # counted now: the task starts only at the next await
            self.sent += 1
            self.recent_sent.append(now)
            task = asyncio.create_task(self._send(http))
            self.tasks.add(task)
            task.add_done_callback(self._finished)

    async def _send(self, http: httpx.AsyncClient) -> None:
        headers = self.signer.headers()
        sent_s = self.now()
        status: int | None = None
        error: str | None = None
        try:
            response = await http.post(self.signer.url, content=self.body, headers=headers)
            status = response.status_code
            if status >= 300:
                error = response.headers.get("x-amzn-ErrorType", "").split(":")[0] or None
        except httpx.HTTPError as exc:
            error = type(exc).__name__
        except asyncio.CancelledError:
            error = CANCELLED
            raise
        finally:
            self.in_flight -= 1
            latency_ms = (self.now() - sent_s) * 1000
            self._record(RequestRecord(sent_s, latency_ms, status, error))

    async def _drain(self) -> None:
        self.draining = True
        remaining = self.limit_s - self.now()
        if self.tasks and remaining > 0:
            await asyncio.wait(set(self.tasks), timeout=remaining)

    async def _cancel(self, tasks: list[asyncio.Task[None]]) -> None:
        """Cancel and await: a cancelled request records itself as :data:`CANCELLED`."""
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks)

    async def _tick(self, on_tick: TickCallback) -> None:
        for _ in range(math.ceil(self.limit_s / self.tick_interval) + 2):
            await asyncio.sleep(self.tick_interval)
            on_tick(self.snapshot())

    def _finished(self, task: asyncio.Task[None]) -> None:
        self.tasks.discard(task)
        self._note_failure(task)

    def _note_failure(self, task: asyncio.Task[None]) -> None:
        """Keep the first unexpected exception (a bug, or ``on_tick`` raising) to raise."""
        if not task.cancelled() and task.exception() is not None and self.failure is None:
            self.failure = task.exception()

    def _record(self, record: RequestRecord) -> None:
        self.records.append(record)
        if record.skipped:
            self.skipped += 1
            return
        if record.ok:
            self.ok += 1
        else:
            self.errors += 1
        if record.status is not None and record.latency_ms is not None:
            self.recent_latency.append((self.now(), record.latency_ms))

    def snapshot(self) -> LoadSnapshot:
        now = self.now()
        horizon = now - LIVE_WINDOW
        while self.recent_sent and self.recent_sent[0] < horizon:
            self.recent_sent.popleft()
        while self.recent_latency and self.recent_latency[0][0] < horizon:
            self.recent_latency.popleft()
        latencies = sorted(latency for _, latency in self.recent_latency)
        window = min(LIVE_WINDOW, now)
        return LoadSnapshot(
            elapsed_s=now,
            duration_s=self.plan.duration,
            sent=self.sent,
            ok=self.ok,
            errors=self.errors,
            skipped=self.skipped,
            in_flight=self.in_flight,
            sent_rps=len(self.recent_sent) / window if window > 0 else 0.0,
            p50_ms=percentile(latencies, 0.50),
            p99_ms=percentile(latencies, 0.99),
            instances=self.poller.latest(),
            window_s=LIVE_WINDOW,
            draining=self.draining,
        )
