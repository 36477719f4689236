"""A load plan: how many requests per second to send, and for how long.

A plan is a sequence of phases, each a straight line from one rate to another over some
seconds: a constant rate is one flat phase, a ramp one sloped phase, steps several flat
phases. Arrivals are placed deterministically where the plan's cumulative request count
reaches 0, 1, 2, ...: a run is reproducible, its request count is known before anything
is sent (so the bounds below are checked up front), and a unit test can count arrivals
without a clock.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from kennel._errors import ValidationError

MAX_RPS = 2000.0
"""Above this a Python client on this machine saturates long before the server does."""
MAX_DURATION_SECONDS = 3600.0
MAX_REQUESTS = 1_000_000
"""Every request's record is kept in memory (about 150 bytes each)."""
MAX_STEPS = 1000

_HINT = "Rates are requests/s in (0, 2000]; a plan lasts at most 3600 s."


@dataclass(frozen=True)
class Phase:
    """The rate goes in a straight line from ``start_rps`` to ``end_rps`` over ``seconds``."""

    start_rps: float
    end_rps: float
    seconds: float

    def __post_init__(self) -> None:
        for rate in (self.start_rps, self.end_rps):
            if not math.isfinite(rate) or rate < 0 or rate > MAX_RPS:
                raise ValidationError(
                    f"A rate of {rate:g} requests/s is out of range: rates must be above 0 "
                    f"and at most {MAX_RPS:g}.",
                    hint=_HINT,
                )
        if max(self.start_rps, self.end_rps) == 0:
            # A ramp may start (or end) at 0; a phase that is 0 throughout sends nothing.
            raise ValidationError("A rate of 0 requests/s sends nothing.", hint=_HINT)
        if not math.isfinite(self.seconds) or self.seconds <= 0:
            raise ValidationError(
                f"A phase of {self.seconds:g} s is not allowed: durations must be above 0 s.",
                hint=_HINT,
            )

    @property
    def requests(self) -> float:
        """The area under the rate line: how many requests the phase asks for."""
        return (self.start_rps + self.end_rps) / 2 * self.seconds

    def rate_at(self, t: float) -> float:
        return self.start_rps + (self.end_rps - self.start_rps) * t / self.seconds

    def time_of(self, count: float) -> float:
        """Seconds into the phase at which ``count`` requests are due.

        Solves ``start*t + slope*t**2/2 = count`` in the form that stays exact when the
        slope is 0 or negative and when the phase starts at 0 requests/s.
        """
        if count <= 0:
            return 0.0
        slope = (self.end_rps - self.start_rps) / self.seconds
        root = math.sqrt(max(self.start_rps**2 + 2 * slope * count, 0.0))
        return min(2 * count / (self.start_rps + root), self.seconds)


@dataclass(frozen=True)
class LoadPlan:
    """Phases run one after the other; see :func:`parse_plan` for the CLI's spellings."""

    phases: tuple[Phase, ...]

    def __post_init__(self) -> None:
        if not self.phases:
            raise ValidationError("A load plan needs at least one phase.", hint=_HINT)
        if len(self.phases) > MAX_STEPS:
            raise ValidationError(
                f"A plan of {len(self.phases)} steps is too long: at most {MAX_STEPS}.", hint=_HINT
            )
        if self.duration > MAX_DURATION_SECONDS:
            raise ValidationError(
                f"The plan lasts {self.duration:g} s: the limit is "
                f"{MAX_DURATION_SECONDS:g} s per run.",
                hint="Run several shorter loads.",
            )
        if self.total_requests > MAX_REQUESTS:
            raise ValidationError(
                f"The plan sends {self.total_requests:,} requests: the limit is "
                f"{MAX_REQUESTS:,} per run.",
                hint="Lower the rate or the duration.",
            )

    @classmethod
    def constant(cls, rps: float, duration: float) -> LoadPlan:
        return cls((Phase(rps, rps, duration),))

    @classmethod
    def ramp(cls, start_rps: float, end_rps: float, duration: float) -> LoadPlan:
        return cls((Phase(start_rps, end_rps, duration),))

    @classmethod
    def steps(cls, steps: Sequence[tuple[float, float]]) -> LoadPlan:
        """``[(rps, seconds), ...]``: flat phases one after the other."""
        return cls(tuple(Phase(rps, rps, seconds) for rps, seconds in steps))

    @property
    def duration(self) -> float:
        return sum(phase.seconds for phase in self.phases)

    @property
    def total_requests(self) -> int:
        """How many arrivals :meth:`arrivals` yields (rounding the area up)."""
        return math.ceil(sum(phase.requests for phase in self.phases) - 1e-9)

    def rate_at(self, t: float) -> float:
        """The planned requests/s at ``t`` seconds (0 outside the plan)."""
        start = 0.0
        for phase in self.phases:
            if start <= t < start + phase.seconds:
                return phase.rate_at(t - start)
            start += phase.seconds
        return 0.0

    def arrivals(self) -> Iterator[float]:
        """When each request is due, in seconds from the start, in order."""
        index, phase_start, done_before = 0, 0.0, 0.0
        for k in range(self.total_requests):
            # Move on while request k falls after this phase (bounded by the phase count).
            while index < len(self.phases) - 1 and k >= done_before + self.phases[index].requests:
                done_before += self.phases[index].requests
                phase_start += self.phases[index].seconds
                index += 1
            yield phase_start + self.phases[index].time_of(k - done_before)

    def describe(self) -> str:
        """The plan in the CLI's words: ``20 rps for 60 s``, ``ramp 5:50 over 60 s``, ..."""
        if len(self.phases) == 1:
            phase = self.phases[0]
            if phase.start_rps == phase.end_rps:
                return f"{phase.start_rps:g} rps for {phase.seconds:g} s"
            return f"ramp {phase.start_rps:g}:{phase.end_rps:g} rps over {phase.seconds:g} s"
        return "steps " + ",".join(f"{p.start_rps:g}x{p.seconds:g}" for p in self.phases)

    def to_dict(self) -> dict[str, Any]:
        return {
            "description": self.describe(),
            "duration_s": self.duration,
            "total_requests": self.total_requests,
            "phases": [
                {"start_rps": p.start_rps, "end_rps": p.end_rps, "seconds": p.seconds}
                for p in self.phases
            ],
        }


def parse_plan(
    *,
    rps: float | None = None,
    duration: float | None = None,
    ramp: str | None = None,
    steps: str | None = None,
) -> LoadPlan:
    """The plan the CLI's options describe: ``--rps R --duration S``, ``--ramp R0:R1
    --duration S`` or ``--steps RxS,RxS,...``; any other combination is refused by name."""
    if steps is not None:
        if rps is not None or duration is not None or ramp is not None:
            raise ValidationError(
                "--steps says the rates and durations itself: leave out --rps, --ramp "
                "and --duration.",
                hint="e.g. --steps 5x10,20x30,5x10 (requests/s x seconds).",
            )
        return LoadPlan.steps(parse_steps(steps))
    if ramp is not None and rps is not None:
        raise ValidationError(
            "Give --rps or --ramp, not both.", hint="--ramp 5:50 --duration 60 goes 5 -> 50 rps."
        )
    if rps is None and ramp is None:
        raise ValidationError(
            "Give the load: --rps R --duration S, --ramp R0:R1 --duration S, or --steps RxS,...",
            hint="e.g. kennel load my-endpoint --rps 20 --duration 60 --file body.json",
        )
    if duration is None:
        raise ValidationError(
            f"{'--ramp' if ramp is not None else '--rps'} needs --duration SECONDS.",
            hint=_HINT,
        )
    if ramp is not None:
        start, end = parse_ramp(ramp)
        return LoadPlan.ramp(start, end, duration)
    assert rps is not None
    return LoadPlan.constant(rps, duration)


def parse_ramp(text: str) -> tuple[float, float]:
    """``"5:50"`` -> ``(5.0, 50.0)``."""
    start, sep, end = text.partition(":")
    if not sep:
        raise ValidationError(
            f"--ramp {text!r} must look like START:END (requests/s), e.g. 5:50.", hint=_HINT
        )
    return _number(start, f"--ramp {text!r}"), _number(end, f"--ramp {text!r}")


def parse_steps(text: str) -> list[tuple[float, float]]:
    """``"5x10,20x30"`` -> ``[(5.0, 10.0), (20.0, 30.0)]``: requests/s x seconds."""
    items = [item.strip() for item in text.split(",")]
    if len(items) > MAX_STEPS:
        raise ValidationError(f"--steps has {len(items)} steps: at most {MAX_STEPS}.", hint=_HINT)
    found: list[tuple[float, float]] = []
    for item in items:
        rate, sep, seconds = item.lower().partition("x")
        if not sep:
            raise ValidationError(
                f"--steps item {item!r} must look like RPSxSECONDS, e.g. 20x30.",
                hint="e.g. --steps 5x10,20x30,5x10",
            )
        where = f"--steps item {item!r}"
        found.append((_number(rate, where), _number(seconds, where)))
    return found


def _number(text: str, where: str) -> float:
    try:
        value = float(text.strip())
    except ValueError:
        raise ValidationError(f"{where}: {text.strip()!r} is not a number.", hint=_HINT) from None
    if not math.isfinite(value):
        raise ValidationError(f"{where}: {text.strip()!r} is not a finite number.", hint=_HINT)
    return value
