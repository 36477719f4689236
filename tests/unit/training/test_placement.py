"""How instances share a machine (local mode) or take whole instances (a cluster)."""

from __future__ import annotations

from kennel.cluster._catalog import instance_type
from kennel.training._runner import plan_placement

M5_LARGE = instance_type("ml.m5.large")  # 2 vCPU


def test_one_instance_that_fits_gets_the_whole_instance() -> None:
    plan = plan_placement(M5_LARGE, 1, 2.0, 0.0, local=True)
    assert (plan["cpus_per_instance"], plan["threads_per_instance"]) == (2.0, 2)
    assert not plan["oversubscribed"] and plan["note"] == ""


def test_two_warm_slots_share_two_cores_locally() -> None:
    plan = plan_placement(M5_LARGE, 2, 2.0, 0.0, local=True)
    assert (plan["cpus_per_instance"], plan["threads_per_instance"]) == (1.0, 1)
    assert plan["oversubscribed"] and "2 x ml.m5.large" in plan["note"]


def test_shares_never_add_up_to_more_than_the_machine() -> None:
    plan = plan_placement(M5_LARGE, 3, 2.0, 0.0, local=True)
    assert plan["cpus_per_instance"] * 3 <= 2.0
    assert plan["threads_per_instance"] == 1


def test_a_cluster_holds_whole_instances() -> None:
    plan = plan_placement(M5_LARGE, 4, 2.0, 0.0, local=False)
    assert plan["cpus_per_instance"] == 2.0 and not plan["oversubscribed"]
