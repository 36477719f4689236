"""Running latency histograms: bucket counts since the server started, never reset.

The metric series (``MetricSample``) keep one average per period; these keep the whole
distribution as Prometheus wants it (cumulative ``le`` buckets, a count and a sum), so
``/metrics`` reads running totals instead of scanning the series.
"""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass

LATENCY_BUCKETS_SECONDS = (
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
    300.0,
    900.0,
)
"""From the gateway's sub-millisecond overhead to a function's 15-minute timeout."""


@dataclass(frozen=True)
class HistogramSnapshot:
    buckets: tuple[tuple[float, int], ...]
    """``(upper bound, observations <= it)``, cumulative, ending with ``+Inf``."""
    count: int
    sum: float


class Histogram:
    """Observations in seconds; written by one thread (the gateway's event loop)."""

    __slots__ = ("bounds", "counts", "total")

    def __init__(self, bounds: tuple[float, ...] = LATENCY_BUCKETS_SECONDS) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)
        self.total = 0.0

    def observe(self, seconds: float) -> None:
        # bisect_left: the first bound >= the value, i.e. Prometheus' "le" bucket.
        self.counts[bisect_left(self.bounds, seconds)] += 1
        self.total += seconds

    def snapshot(self) -> HistogramSnapshot:
        counts, total = list(self.counts), self.total
        running = 0
        buckets: list[tuple[float, int]] = []
        for bound, count in zip((*self.bounds, float("inf")), counts, strict=True):
            running += count
            buckets.append((bound, running))
        return HistogramSnapshot(tuple(buckets), running, total)
