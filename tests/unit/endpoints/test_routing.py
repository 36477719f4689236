"""Routing decisions and rollout arithmetic, without servers."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from kennel.endpoints._routing import (
    Backend,
    DeploymentRoute,
    EndpointRoute,
    RoutingTable,
    VariantRoute,
    VariantStats,
)
from kennel.endpoints._service import _alarm, _metric_values
from kennel.endpoints._spec import AlarmSpec, DeploymentSpec, EndpointConfigSpec, VariantSpec


def _variant(name: str, weight: float, *outstanding: int) -> VariantRoute:
    backends = tuple(
        Backend(f"{name}-{i}", "127.0.0.1", 1000 + i, outstanding=o)
        for i, o in enumerate(outstanding)
    )
    return VariantRoute(name, weight, backends)


def test_pick_takes_the_instance_with_fewest_outstanding_requests() -> None:
    variant = _variant("A", 1, 3, 0, 2)
    assert variant.pick() is variant.backends[1]
    variant.backends[1].mark_failed()
    assert variant.pick() is variant.backends[2]  # unhealthy instances are skipped
    assert variant.pick(exclude=variant.backends[2]) is variant.backends[0]


def test_ties_are_broken_at_random_and_no_instance_means_none() -> None:
    random.seed(1)
    variant = _variant("A", 1, 0, 0)
    assert {variant.pick() for _ in range(50)} == set(variant.backends)
    for backend in variant.backends:
        backend.mark_failed()
    assert variant.pick() is None


def test_variants_are_chosen_by_weight_and_deployments_by_share() -> None:
    random.seed(2)
    deployment = DeploymentRoute("c1", (_variant("A", 3, 0), _variant("B", 1, 0)))
    counts = Counter(deployment.choose_variant().name for _ in range(4000))
    assert 2800 < counts["A"] < 3200
    canary = DeploymentRoute("c2", (_variant("C", 1, 0),))
    route = EndpointRoute("e", ((deployment, 0.9), (canary, 0.1)))
    shares = Counter(route.choose_deployment().config_name for _ in range(4000))
    assert 300 < shares["c2"] < 500
    assert route.variant_names() == ["A", "B", "C"]


def test_the_table_swaps_routes_whole() -> None:
    table = RoutingTable()
    route = EndpointRoute("e", ())
    table.set(route)
    assert table.get("e") is route and table.names() == ["e"]
    table.remove("e")
    assert table.get("e") is None
    assert table.call_in_loop(lambda: 42) == 42  # no loop yet: runs here


def test_stats_count_by_the_instances_status_and_reset_when_taken() -> None:
    stats = VariantStats()
    stats.record(200, 1000.0, 100.0, model_error=False)
    stats.record(404, 500.0, 100.0, model_error=True)
    stats.record(500, 500.0, 100.0, model_error=True)
    taken = stats.take()
    assert (taken.invocations, taken.errors_4xx, taken.errors_5xx, taken.model_errors) == (
        3,
        1,
        1,
        2,
    )
    assert stats.invocations == 0 and stats.latencies_ms == []
    values = _metric_values(taken, instances=2)
    assert values["InvocationsPerInstance"] == 1.5
    assert values["ModelLatency"] == pytest.approx(2000 / 3)
    assert values["InstanceCount"] == 2


def test_rollout_steps() -> None:
    assert DeploymentSpec().steps() == [1.0]
    assert DeploymentSpec(type="canary", canary_percent=10).steps() == [0.1, 1.0]
    assert DeploymentSpec(type="linear", linear_step_percent=30).steps() == pytest.approx(
        [0.3, 0.6, 0.9, 1.0]
    )


def test_alarms_fire_on_error_rate_or_latency_once_there_is_enough_traffic() -> None:
    seen = VariantStats()
    for status in (200, 500, 500):
        seen.record(status, 1000.0, 0.0, model_error=status != 200)
    assert _alarm(AlarmSpec(max_error_rate=0.1, min_invocations=5), seen) is None
    alarm = _alarm(AlarmSpec(max_error_rate=0.1, min_invocations=3), seen)
    assert alarm is not None and "5XX rate 67%" in alarm
    slow = VariantStats()
    for _ in range(10):
        slow.record(200, 250_000.0, 0.0, model_error=False)
    alarm = _alarm(AlarmSpec(max_error_rate=None, max_latency_ms=100), slow)
    assert alarm is not None and "p90 latency 250.0 ms" in alarm


def test_config_specs_are_checked() -> None:
    with pytest.raises(ValueError, match="distinct"):
        EndpointConfigSpec(
            name="c", variants=[VariantSpec(model_name="m"), VariantSpec(model_name="n")]
        )
    with pytest.raises(ValueError, match="weight above 0"):
        EndpointConfigSpec(name="c", variants=[VariantSpec(model_name="m", initial_weight=0)])
