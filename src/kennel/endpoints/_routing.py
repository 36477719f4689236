"""Where an invocation goes: the routing table the gateway reads on every request.

An endpoint routes to one *deployment* (the fleets of one endpoint config), or to two
while an update shifts traffic from the old to the new (canary, linear): each deployment
has a traffic share. Within a deployment, a request goes to a production variant by the
variants' weights (or to the one ``X-Amzn-SageMaker-Target-Variant`` names), and within
the variant to the healthy instance with the fewest requests outstanding (least
outstanding requests, ties broken at random).

The controller thread builds and replaces these objects; the event loop only reads them
and bumps counters. Replacing a tuple is one reference assignment, so the loop never
sees a half-built fleet. Counters are touched only on the event loop.
"""

from __future__ import annotations

import asyncio
import random
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import TypeVar

from kennel.endpoints._capture import CaptureSettings
from kennel.endpoints._upstream import UpstreamPool
from kennel.store._histogram import Histogram

T = TypeVar("T")

LATENCY_WINDOW = 2048
"""Latencies kept per variant between two reads of the stats (for percentiles)."""


@dataclass(eq=False)
class Backend:
    """One endpoint instance as the gateway sees it."""

    instance_id: str
    host: str
    port: int
    pid: int = 0
    outstanding: int = 0
    healthy: bool = True
    failed_at: float | None = None
    _pool: UpstreamPool | None = field(default=None, repr=False)

    @property
    def pool(self) -> UpstreamPool:
        if self._pool is None:
            self._pool = UpstreamPool(self.host, self.port)
        return self._pool

    def mark_failed(self) -> None:
        if self.healthy:
            self.healthy = False
            self.failed_at = time.monotonic()

    def close(self) -> None:
        if self._pool is not None:
            self._pool.close()


@dataclass
class VariantStats:
    """Counters since the last :meth:`take`; written on the event loop only."""

    invocations: int = 0
    errors_4xx: int = 0
    errors_5xx: int = 0
    model_errors: int = 0
    model_latency_us: float = 0.0
    overhead_latency_us: float = 0.0
    latencies_ms: list[float] = field(default_factory=list)

    def record(self, status: int, model_us: float, overhead_us: float, model_error: bool) -> None:
        """One invocation; ``status`` is the instance's own (CloudWatch counts by it)."""
        self.invocations += 1
        if 400 <= status < 500:
            self.errors_4xx += 1
        elif status >= 500:
            self.errors_5xx += 1
        if model_error:
            self.model_errors += 1
        self.model_latency_us += model_us
        self.overhead_latency_us += overhead_us
        if len(self.latencies_ms) < LATENCY_WINDOW:
            self.latencies_ms.append((model_us + overhead_us) / 1000.0)

    def take(self) -> VariantStats:
        """The counters so far, and zero them (from another thread: a swap, then a copy)."""
        taken = VariantStats(
            self.invocations,
            self.errors_4xx,
            self.errors_5xx,
            self.model_errors,
            self.model_latency_us,
            self.overhead_latency_us,
            self.latencies_ms,
        )
        self.latencies_ms = []
        self.invocations = self.errors_4xx = self.errors_5xx = self.model_errors = 0
        self.model_latency_us = self.overhead_latency_us = 0.0
        return taken

    def add(self, other: VariantStats) -> None:
        self.invocations += other.invocations
        self.errors_4xx += other.errors_4xx
        self.errors_5xx += other.errors_5xx
        self.model_errors += other.model_errors
        self.model_latency_us += other.model_latency_us
        self.overhead_latency_us += other.overhead_latency_us
        self.latencies_ms.extend(other.latencies_ms)


@dataclass(eq=False)
class VariantTotals:
    """One endpoint variant's running totals since the server started, across all its
    deployments (``/metrics`` reads them); written on the event loop only, never reset."""

    invocations: int = 0
    errors_4xx: int = 0
    errors_5xx: int = 0
    model_errors: int = 0
    model_latency: Histogram = field(default_factory=Histogram)
    overhead_latency: Histogram = field(default_factory=Histogram)

    def record(self, status: int, model_us: float, overhead_us: float, model_error: bool) -> None:
        self.invocations += 1
        if 400 <= status < 500:
            self.errors_4xx += 1
        elif status >= 500:
            self.errors_5xx += 1
        if model_error:
            self.model_errors += 1
        self.model_latency.observe(model_us * 1e-6)
        self.overhead_latency.observe(overhead_us * 1e-6)


@dataclass(eq=False)
class VariantRoute:
    name: str
    weight: float
    backends: tuple[Backend, ...] = ()
    stats: VariantStats = field(default_factory=VariantStats)
    """Everything this variant served (flushed to the metric series)."""
    watch: VariantStats = field(default_factory=VariantStats)
    """The same counts, read separately by a rollout's alarms."""
    totals: VariantTotals = field(default_factory=VariantTotals)
    """The same again as running totals, shared by the variant's routes in every
    deployment of the endpoint (the service hands the one object to each)."""
    wake: Callable[[], bool] | None = field(default=None, repr=False)
    """Asks for a first instance when a request finds none (scale from zero); True when
    one is being started, so the request may wait for it. Called on the event loop."""
    held: int = 0
    """Requests waiting for a first instance (event loop only)."""
    capture: CaptureSettings | None = None
    """Data capture of the deployment's endpoint config; None: nothing is captured."""

    def healthy(self) -> list[Backend]:
        return [b for b in self.backends if b.healthy]

    def pick(self, exclude: Backend | None = None) -> Backend | None:
        """The healthy instance with the fewest outstanding requests (random among ties)."""
        best: list[Backend] = []
        least = 1 << 30
        for backend in self.backends:
            if not backend.healthy or backend is exclude:
                continue
            if backend.outstanding < least:
                least = backend.outstanding
                best = [backend]
            elif backend.outstanding == least:
                best.append(backend)
        if not best:
            return None
        return best[0] if len(best) == 1 else random.choice(best)


@dataclass(eq=False)
class DeploymentRoute:
    """The variants of one endpoint config, as deployed."""

    config_name: str
    variants: tuple[VariantRoute, ...]

    def variant(self, name: str) -> VariantRoute | None:
        for variant in self.variants:
            if variant.name == name:
                return variant
        return None

    def choose_variant(self) -> VariantRoute:
        variants = self.variants
        if len(variants) == 1:
            return variants[0]
        total = sum(v.weight for v in variants)
        if total <= 0:
            return random.choice(variants)
        point = random.random() * total
        for variant in variants:
            point -= variant.weight
            if point < 0:
                return variant
        return variants[-1]


@dataclass(eq=False)
class EndpointRoute:
    """An endpoint's traffic: ``(deployment, share)`` pairs whose shares add up to 1."""

    name: str
    deployments: tuple[tuple[DeploymentRoute, float], ...]
    status: str = "InService"

    def choose_deployment(self) -> DeploymentRoute:
        deployments = self.deployments
        if len(deployments) == 1:
            return deployments[0][0]
        point = random.random()
        for deployment, share in deployments:
            point -= share
            if point < 0:
                return deployment
        return deployments[-1][0]

    def variant_names(self) -> list[str]:
        names: list[str] = []
        for deployment, _ in self.deployments:
            names += [v.name for v in deployment.variants if v.name not in names]
        return names


class RoutingTable:
    """Endpoint name -> route; written by controllers, read by the gateway's event loop."""

    def __init__(self) -> None:
        self._routes: dict[str, EndpointRoute] = {}
        self._lock = threading.Lock()
        self.loop: asyncio.AbstractEventLoop | None = None
        """The gateway's event loop, recorded by the data plane at startup."""

    def call_in_loop(self, function: Callable[[], T], timeout: float = 10.0) -> T:
        """Run ``function`` on the gateway's event loop (where counters and sockets live)."""
        loop = self.loop
        if loop is None or loop.is_closed() or not loop.is_running():
            return function()
        future: Future[T] = Future()

        def run() -> None:
            try:
                future.set_result(function())
            except Exception as error:  # noqa: BLE001 - handed to the waiting thread
                future.set_exception(error)

        loop.call_soon_threadsafe(run)
        return future.result(timeout)

    def close_backends(self, backends: list[Backend]) -> None:
        """Close retired instances' connections on the loop that owns them."""
        if backends:

            def close_all() -> None:
                for backend in backends:
                    backend.close()

            self.call_in_loop(close_all)

    def get(self, name: str) -> EndpointRoute | None:
        return self._routes.get(name)

    def set(self, route: EndpointRoute) -> None:
        with self._lock:
            routes = dict(self._routes)
            routes[route.name] = route
            self._routes = routes

    def remove(self, name: str) -> None:
        with self._lock:
            routes = dict(self._routes)
            routes.pop(name, None)
            self._routes = routes

    def names(self) -> list[str]:
        return list(self._routes)
