"""Load plans: the CLI's spellings, the bounds, and where arrivals fall (no clock needed)."""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import kennel.loadgen
from kennel._errors import ValidationError
from kennel.loadgen import (
    MAX_REQUESTS,
    LoadPlan,
    Phase,
    check_loopback,
    content_type_for,
    parse_plan,
)


def test_public_names() -> None:
    assert sorted(kennel.loadgen.__all__) == sorted(
        [
            "CANCELLED",
            "DEFAULT_DRAIN_TIMEOUT",
            "DEFAULT_MAX_IN_FLIGHT",
            "MAX_DURATION_SECONDS",
            "MAX_REQUESTS",
            "MAX_RPS",
            "SKIPPED",
            "InstanceSample",
            "LoadPlan",
            "LoadResult",
            "LoadSnapshot",
            "LoadTotals",
            "Phase",
            "RequestRecord",
            "TimelineRow",
            "check_loopback",
            "content_type_for",
            "load_chart_html",
            "parse_plan",
            "run_load",
            "run_load_async",
        ]
    )
    for name in kennel.loadgen.__all__:
        assert hasattr(kennel.loadgen, name)


# Parsing ---------------------------------------------------------------------------------


def test_constant_rate() -> None:
    plan = parse_plan(rps=20, duration=60)
    assert plan == LoadPlan((Phase(20, 20, 60),))
    assert plan.duration == 60 and plan.total_requests == 1200
    assert plan.describe() == "20 rps for 60 s"


def test_ramp() -> None:
    plan = parse_plan(ramp="5:50", duration=10)
    assert plan.phases == (Phase(5, 50, 10),)
    assert plan.describe() == "ramp 5:50 rps over 10 s"
    assert plan.rate_at(0) == 5 and plan.rate_at(5) == 27.5 and plan.rate_at(10) == 0


def test_steps() -> None:
    plan = parse_plan(steps="5x10, 20X30,5x10")
    assert [(p.start_rps, p.seconds) for p in plan.phases] == [(5, 10), (20, 30), (5, 10)]
    assert plan.duration == 50 and plan.total_requests == 50 + 600 + 50
    assert plan.describe() == "steps 5x10,20x30,5x10"
    assert plan.rate_at(9.9) == 5 and plan.rate_at(10) == 20 and plan.rate_at(45) == 5


def test_fractional_rates_and_seconds() -> None:
    plan = parse_plan(steps="0.5x3,2.5x0.4")
    assert plan.total_requests == math.ceil(1.5 + 1.0)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({}, "Give the load"),
        ({"rps": 5}, "--rps needs --duration"),
        ({"ramp": "1:5"}, "--ramp needs --duration"),
        ({"rps": 5, "ramp": "1:5", "duration": 3}, "not both"),
        ({"steps": "5x3", "rps": 5}, "leave out --rps"),
        ({"steps": "5x3", "duration": 5}, "leave out --rps"),
        ({"rps": 0, "duration": 3}, "sends nothing"),
        ({"rps": -1, "duration": 3}, "out of range"),
        ({"rps": 2001, "duration": 3}, "at most 2000"),
        ({"rps": float("nan"), "duration": 3}, "out of range"),
        ({"rps": 5, "duration": 0}, "above 0 s"),
        ({"rps": 5, "duration": -2}, "above 0 s"),
        ({"rps": 1, "duration": 3601}, "limit is 3600 s"),
        ({"rps": 2000, "duration": 600}, "limit is 1,000,000"),
        ({"ramp": "0:0", "duration": 3}, "sends nothing"),
        ({"ramp": "5", "duration": 3}, "START:END"),
        ({"ramp": "5:fast", "duration": 3}, "'fast' is not a number"),
        ({"ramp": "5:inf", "duration": 3}, "not a finite number"),
        ({"steps": "5x10,20"}, "RPSxSECONDS"),
        ({"steps": "5x10,"}, "RPSxSECONDS"),
        ({"steps": "ax10"}, "'a' is not a number"),
        ({"steps": "5x0"}, "above 0 s"),
        ({"steps": ",".join(["1x1"] * 1001)}, "at most 1000"),
        ({"steps": "1000x1800,1000x1801"}, "limit is 3600 s"),
    ],
)
def test_bad_plans_are_refused_with_a_reason(options: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError) as caught:
        parse_plan(**options)  # type: ignore[arg-type]
    assert message in caught.value.message
    assert caught.value.status == 400


def test_the_request_bound_is_exactly_the_limit() -> None:
    assert LoadPlan.constant(1000, MAX_REQUESTS / 1000).total_requests == MAX_REQUESTS
    with pytest.raises(ValidationError):
        LoadPlan.constant(1000, MAX_REQUESTS / 1000 + 0.01)


def test_a_plan_needs_a_phase() -> None:
    with pytest.raises(ValidationError, match="at least one phase"):
        LoadPlan(())


# Arrivals --------------------------------------------------------------------------------


def test_constant_rate_arrivals_are_evenly_spaced() -> None:
    arrivals = list(LoadPlan.constant(20, 3).arrivals())
    assert len(arrivals) == 60
    assert arrivals[0] == 0
    assert all(b - a == pytest.approx(0.05) for a, b in itertools.pairwise(arrivals))
    assert arrivals[-1] == pytest.approx(2.95)


def test_ramp_arrivals_follow_the_rate() -> None:
    plan = LoadPlan.ramp(5, 50, 10)
    arrivals = list(plan.arrivals())
    assert len(arrivals) == plan.total_requests == 275  # (5 + 50) / 2 * 10
    first_second = sum(1 for t in arrivals if t < 1)
    last_second = sum(1 for t in arrivals if t >= 9)
    assert first_second in (7, 8)  # 5 + 45/20 = 7.25 requests
    assert last_second in (47, 48)  # 50 - 45/20 = 47.75 requests
    assert arrivals[-1] < 10


def test_ramps_may_start_or_end_at_zero() -> None:
    up = list(LoadPlan.ramp(0, 10, 4).arrivals())
    down = list(LoadPlan.ramp(10, 0, 4).arrivals())
    assert len(up) == len(down) == 20
    assert up[1] == pytest.approx(math.sqrt(2 * 0.4))  # 10/4 * t**2 / 2 = 1
    assert down[-1] < 4 and up[-1] < 4


def test_steps_arrivals_change_rate_at_the_step() -> None:
    arrivals = list(LoadPlan.steps([(5, 10), (20, 30), (5, 10)]).arrivals())
    assert len(arrivals) == 700
    assert sum(1 for t in arrivals if t < 10) == 50
    assert sum(1 for t in arrivals if 10 <= t < 40) == 600
    assert sum(1 for t in arrivals if t >= 40) == 50


@settings(max_examples=80, deadline=None)
@given(
    st.lists(
        st.tuples(st.floats(min_value=0.1, max_value=200), st.floats(min_value=0.05, max_value=20)),
        min_size=1,
        max_size=6,
    )
)
def test_any_steps_plan_yields_its_count_in_order_within_the_plan(
    steps: list[tuple[float, float]],
) -> None:
    plan = LoadPlan.steps(steps)
    arrivals = list(plan.arrivals())
    assert len(arrivals) == plan.total_requests
    assert all(a <= b for a, b in itertools.pairwise(arrivals))
    assert all(0 <= t < plan.duration + 1e-6 for t in arrivals)
    start = 0.0
    for rps, seconds in steps:  # each step holds its share, give or take the rounding
        inside = sum(1 for t in arrivals if start <= t < start + seconds)
        assert abs(inside - rps * seconds) <= 2
        start += seconds


# Target and body -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    ["http://127.0.0.1:7733", "http://localhost:7733/", "http://[::1]:80", "http://127.0.0.2"],
)
def test_loopback_servers_are_allowed(url: str) -> None:
    check_loopback(url)


@pytest.mark.parametrize(
    "url",
    [
        "http://10.0.0.5:7733",
        "https://api.example.com",
        "http://0.0.0.0:7733",
        "http://127.0.0.1.example.com",
        "http://[2001:db8::1]:80",
        "not a url",
    ],
)
def test_other_servers_are_refused_saying_why(url: str) -> None:
    with pytest.raises(ValidationError) as caught:
        check_loopback(url)
    assert "must stay on this machine" in caught.value.message
    assert caught.value.hint and "127.0.0.1" in caught.value.hint


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("dog.jpg", "image/jpeg"),
        ("DOG.JPEG", "image/jpeg"),
        ("cat.png", "image/png"),
        ("body.json", "application/json"),
        ("tensor.npy", "application/octet-stream"),
        ("noext", "application/octet-stream"),
    ],
)
def test_content_type_from_the_extension(name: str, kind: str) -> None:
    assert content_type_for(Path(name)) == kind
