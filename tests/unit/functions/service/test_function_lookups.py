"""The dispatcher's lookups: resolve (cached, dropped by generation and TTL) and friends."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import update
from tests.unit.functions.service._helpers import ACCOUNT, Ticker

from kennel.functions._errors import ResourceNotFoundError
from kennel.functions._service import FunctionService, ProvisionedConfig, ResolvedFunction
from kennel.functions._spec import (
    CreateAliasSpec,
    CreateUrlConfigSpec,
    EventInvokeConfigSpec,
    ProvisionedConcurrencySpec,
    PublishVersionSpec,
    UpdateAliasSpec,
    UpdateConfigurationSpec,
)
from kennel.store import LambdaFunction

ARN = f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:fn"


def _config(**fields: Any) -> UpdateConfigurationSpec:
    return UpdateConfigurationSpec.model_validate(fields)


def test_resolve_latest_by_name_partial_arn_and_arn(service: FunctionService, make: Any) -> None:
    make("fn", MemorySize=256, Timeout=7, Environment={"Variables": {"STAGE": "1"}})
    fn = service.resolve("fn")
    assert isinstance(fn, ResolvedFunction)
    assert (fn.name, fn.version, fn.qualifier, fn.invoked_arn) == ("fn", "$LATEST", None, ARN)
    assert (fn.memory_mb, fn.timeout_s, fn.environment) == (256, 7, {"STAGE": "1"})
    assert (fn.handler, fn.runtime, fn.state) == ("app.handler", "python3.11", "Active")
    assert fn.code_uri.endswith(f"functions/fn/{fn.code_sha256}.zip")
    assert fn.function_arn == ARN and fn.reserved_concurrency is None
    assert service.resolve(f"{ACCOUNT}:function:fn").name == "fn"
    assert service.resolve(ARN).invoked_arn == ARN
    latest = service.resolve("fn", "$LATEST")
    assert (latest.version, latest.invoked_arn) == ("$LATEST", f"{ARN}:$LATEST")


def test_resolve_versions_and_aliases(service: FunctionService, make: Any) -> None:
    make("fn")
    service.publish_version("fn", PublishVersionSpec())
    service.update_function_configuration("fn", _config(Timeout=9))
    service.create_alias("fn", CreateAliasSpec(Name="prod", FunctionVersion="1"))
    for way in (("fn", "1"), ("fn:1", None), (f"{ARN}:1", None)):
        fn = service.resolve(*way)
        assert (fn.version, fn.timeout_s, fn.invoked_arn) == ("1", 3, f"{ARN}:1")
    prod = service.resolve("fn", "prod")
    assert (prod.version, prod.qualifier, prod.invoked_arn) == ("1", "prod", f"{ARN}:prod")
    assert service.resolve("fn").timeout_s == 9
    assert prod.revision_id != service.resolve("fn").revision_id


@pytest.mark.parametrize(
    ("name", "qualifier", "message"),
    [
        ("nope", None, f"Function not found: arn:aws:lambda:us-east-1:{ACCOUNT}:function:nope"),
        ("fn", "7", f"Function not found: {ARN}:7"),
        ("fn", "beta", f"Function not found: {ARN}:beta"),
    ],
)
def test_resolve_unknown_is_resource_not_found(
    service: FunctionService, make: Any, name: str, qualifier: str | None, message: str
) -> None:
    make("fn")
    with pytest.raises(ResourceNotFoundError) as info:
        service.resolve(name, qualifier)
    assert info.value.status == 404 and info.value.message == message


def test_resolve_is_cached_until_a_change(service: FunctionService, make: Any) -> None:
    make("fn")
    first = service.resolve("fn")
    assert service.resolve("fn") is first
    generation = service.generation
    service.update_function_configuration("fn", _config(MemorySize=512))
    assert service.generation > generation
    second = service.resolve("fn")
    assert second is not first and second.memory_mb == 512
    assert second.revision_id != first.revision_id


def test_resolve_cache_expires_for_changes_made_elsewhere(
    service: FunctionService, make: Any, ticker: Ticker
) -> None:
    make("fn")
    assert service.resolve("fn").timeout_s == 3
    with service.db.session() as session:  # another server sharing the database
        session.execute(update(LambdaFunction).values(timeout_s=60))
    assert service.resolve("fn").timeout_s == 3
    ticker.now += 2.5
    assert service.resolve("fn").timeout_s == 60


def test_alias_change_moves_what_it_resolves_to(service: FunctionService, make: Any) -> None:
    make("fn")
    service.publish_version("fn", PublishVersionSpec())
    service.update_function_configuration("fn", _config(Timeout=20))
    service.publish_version("fn", PublishVersionSpec())
    service.create_alias("fn", CreateAliasSpec(Name="live", FunctionVersion="1"))
    assert service.resolve("fn", "live").timeout_s == 3
    service.update_alias("fn", "live", UpdateAliasSpec(FunctionVersion="2"))
    assert service.resolve("fn", "live").timeout_s == 20


def test_provisioned_configs_and_their_state(service: FunctionService, make: Any) -> None:
    make("fn")
    service.publish_version("fn", PublishVersionSpec())
    service.create_alias("fn", CreateAliasSpec(Name="live", FunctionVersion="1"))
    service.put_provisioned_concurrency(
        "fn", "live", ProvisionedConcurrencySpec(ProvisionedConcurrentExecutions=3)
    )
    assert service.provisioned_configs() == [ProvisionedConfig("fn", "live", 3, 0, "IN_PROGRESS")]
    generation = service.generation
    service.set_provisioned_state("fn", "live", 3, "READY")
    assert service.generation == generation  # state is not configuration
    shown = service.get_provisioned_concurrency("fn", "live")
    assert shown["Status"] == "READY"
    assert shown["AllocatedProvisionedConcurrentExecutions"] == 3
    service.set_provisioned_state("fn", "live", 1, "FAILED", "FUNCTION_ERROR_INIT_FAILURE")
    assert service.get_provisioned_concurrency("fn", "live")["StatusReason"] == (
        "FUNCTION_ERROR_INIT_FAILURE"
    )
    service.set_provisioned_state("fn", "gone", 1, "READY")  # a deleted config: ignored


def test_url_config_lookup(service: FunctionService, make: Any) -> None:
    make("fn")
    assert service.url_config("fn") is None
    service.create_url_config(
        "fn", None, CreateUrlConfigSpec(AuthType="NONE"), base_url="http://gw:1/"
    )
    config = service.url_config("fn")
    assert config is not None
    assert (config.function, config.qualifier, config.auth_type) == ("fn", None, "NONE")
    assert len(config.url_id) == 32
    service.publish_version("fn", PublishVersionSpec())
    service.create_alias("fn", CreateAliasSpec(Name="live", FunctionVersion="1"))
    service.create_url_config(
        "fn", "live", CreateUrlConfigSpec(AuthType="AWS_IAM"), base_url="http://gw:1/"
    )
    live = service.url_config("fn:live")
    assert live is not None and (live.qualifier, live.auth_type) == ("live", "AWS_IAM")
    service.delete_url_config("fn", None)
    assert service.url_config("fn") is None


def test_event_config_defaults_and_settings(service: FunctionService, make: Any) -> None:
    make("fn")
    assert service.event_config("fn", None) == (2, 21600)
    service.put_event_invoke_config(
        "fn", None, EventInvokeConfigSpec(MaximumRetryAttempts=0, MaximumEventAgeInSeconds=60)
    )
    assert service.event_config("fn", None) == (0, 60)
    assert service.event_config("fn", "$LATEST") == (0, 60)
    service.put_event_invoke_config(
        "fn", None, EventInvokeConfigSpec(MaximumRetryAttempts=1), merge=True
    )
    assert service.event_config("fn", None) == (1, 60)


def test_concurrency_limits_and_reserved_total(service: FunctionService, make: Any) -> None:
    from kennel.functions._spec import ConcurrencySpec

    make("a")
    make("b")
    assert service.concurrency_limits() == (100, 10)
    assert service.reserved_total() == 0
    service.put_function_concurrency("a", ConcurrencySpec(ReservedConcurrentExecutions=30))
    service.put_function_concurrency("b", ConcurrencySpec(ReservedConcurrentExecutions=5))
    assert service.reserved_total() == 35
    assert service.resolve("a").reserved_concurrency == 30
    service.delete_function_concurrency("b")
    assert service.reserved_total() == 30
