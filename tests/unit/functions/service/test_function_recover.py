"""After a restart no provisioned environment exists: the configs say so until started."""

from __future__ import annotations

from typing import Any

from kennel.functions._service import FunctionService
from kennel.functions._spec import ProvisionedConcurrencySpec, PublishVersionSpec


def test_recover_resets_allocated_provisioned_concurrency(
    service: FunctionService, make: Any
) -> None:
    make("fn")
    service.publish_version("fn", PublishVersionSpec())
    service.put_provisioned_concurrency(
        "fn", "1", ProvisionedConcurrencySpec(ProvisionedConcurrentExecutions=2)
    )
    service.set_provisioned_state("fn", "1", 2, "READY")  # as the dispatcher had it
    assert service.get_provisioned_concurrency("fn", "1")["Status"] == "READY"

    assert service.recover() == [("fn", "1")]

    config = service.get_provisioned_concurrency("fn", "1")
    assert config["Status"] == "IN_PROGRESS"
    assert config["AllocatedProvisionedConcurrentExecutions"] == 0
    assert config["RequestedProvisionedConcurrentExecutions"] == 2
    assert service.recover() == []
