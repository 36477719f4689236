"""The engine's up and down against a real server's stack record, with in-memory resource
kinds (fast): idempotence, a failure's story, an interruption, removal, and the
``/api/v1/stacks`` routes themselves (signed, authorized)."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.credentials import Credentials
from tests._server import RunningServer

from kennel._client import KennelClient
from kennel._errors import AuthError, ConflictError, KennelError, NotFoundError, ValidationError
from kennel.stack._engine import StackError, down, plan, up
from kennel.stack._schema import parse_stack
from kennel.stack._types import Address, StackContext, Step

pytestmark = pytest.mark.timeout(120)


class MemoryHandler:
    """A resource kind kept in a dict; it can be told to fail or be interrupted."""

    def __init__(self, kind: str, log: list[str]) -> None:
        self.kind = kind
        self.log = log
        self.made: dict[str, dict[str, Any]] = {}
        self.fail: str | None = None
        self.interrupt: str | None = None

    def references(self, block: Any) -> set[Address]:
        return set()

    def plan(self, ctx: StackContext, address: Address, spec: dict[str, Any]) -> Step:
        name = spec.get("name", address.name)
        if name not in self.made:
            return Step(address, "create", name, "does not exist")
        if self.made[name] != spec:
            return Step(address, "update", name, "differs")
        return Step(address, "none", name, "unchanged")

    def apply(self, ctx: StackContext, step: Step) -> dict[str, Any]:
        if step.address.name == self.interrupt:
            raise KeyboardInterrupt
        if step.address.name == self.fail:
            raise ValidationError(f"{step.physical} cannot be made", hint="Fix it.")
        self.log.append(f"apply {step.address}")
        ctx.progress("working")
        self.made[step.physical] = step.spec
        return self.attributes(ctx, step.physical)

    def attributes(self, ctx: StackContext, physical: str) -> dict[str, Any]:
        return {"name": physical, "arn": f"arn:fake:{physical}", "count": 3}

    def delete(self, ctx: StackContext, physical: str) -> None:
        self.log.append(f"delete {self.kind}.{physical}")
        self.made.pop(physical, None)


def stack_data(name: str, epochs: int = 1) -> dict[str, Any]:
    return {
        "name": name,
        "datasets": {"digits": {"demo": {"image_size": 16}}},
        "training_jobs": {"train": {"dataset": "digits", "hyperparameters": {"epochs": epochs}}},
        "models": {"m": {"training_job": "train"}},
        "endpoints": {"e": {"variants": [{"model": "m"}]}},
        "roles": {"r": {"description": "${endpoints.e.arn}"}},
        "outputs": {"endpoint": "${endpoints.e}", "count": "${models.m.count}"},
    }


@pytest.fixture
def log() -> list[str]:
    return []


@pytest.fixture
def handlers(log: list[str]) -> dict[str, Any]:
    kinds = ("datasets", "training_jobs", "models", "endpoints", "roles")
    return {kind: MemoryHandler(kind, log) for kind in kinds}


@pytest.fixture
def ctx(api: KennelClient, tmp_path: Path) -> Iterator[StackContext]:
    name = f"stk-{uuid.uuid4().hex[:8]}"
    yield StackContext(api=api, base=tmp_path, stack=name, aws=lambda _service: None)
    with contextlib.suppress(NotFoundError):
        api.delete(f"/api/v1/stacks/{name}")


def record(api: KennelClient, name: str) -> dict[str, Any]:
    found: dict[str, Any] = api.get(f"/api/v1/stacks/{name}")
    return found


def test_up_twice_then_down(ctx: StackContext, handlers: dict[str, Any], log: list[str]) -> None:
    stack = parse_stack(stack_data(ctx.stack))
    events: list[str] = []
    outcome = up(ctx, stack, handlers=handlers, report=lambda e: events.append(e.kind))
    assert [s["action"] for s in outcome.steps] == ["create"] * 5
    assert outcome.outputs == {"endpoint": "e", "count": 3}
    assert "progress" in events and events.count("done") == 5
    made = record(ctx.api, ctx.stack)
    assert made["status"] == "UpComplete" and made["outputs"] == outcome.outputs
    assert made["arn"].endswith(f":stack/{ctx.stack}")
    by_address = {r["address"]: r for r in made["resources"]}
    assert by_address["roles.r"]["depends_on"] == ["endpoints.e"]
    assert by_address["endpoints.e"]["attributes"]["arn"] == "arn:fake:e"
    # The role was applied with the endpoint's real ARN.
    assert handlers["roles"].made["r"]["description"] == "arn:fake:e"
    train = by_address["training_jobs.train"]
    assert train["physical"].startswith("train-") and train["status"] == "Ready"
    assert train["spec"]["hyperparameters"] == {"epochs": 1}

    log.clear()
    again = up(ctx, stack, handlers=handlers)
    assert [s["action"] for s in again.steps] == ["none"] * 5
    assert log == []
    listed = ctx.api.get("/api/v1/stacks")["stacks"]
    summary = next(s for s in listed if s["name"] == ctx.stack)
    assert (summary["status"], summary["resource_count"]) == ("UpComplete", 5)

    # The file changes after up: down still removes what the record says was made.
    gone = down(ctx, handlers=handlers)
    assert [s["address"] for s in gone.steps] == [
        "roles.r",
        "endpoints.e",
        "models.m",
        "training_jobs.train",
        "datasets.digits",
    ]
    assert all(not h.made for h in handlers.values())
    with pytest.raises(NotFoundError):
        record(ctx.api, ctx.stack)
    assert "nothing to do" in down(ctx, handlers=handlers).warnings[0]


def test_a_failure_says_what_exists_and_the_next_run_resumes(
    ctx: StackContext, handlers: dict[str, Any], log: list[str]
) -> None:
    stack = parse_stack(stack_data(ctx.stack))
    handlers["models"].fail = "m"
    with pytest.raises(StackError) as caught:
        up(ctx, stack, handlers=handlers)
    message = caught.value.message
    assert message.startswith("kennel up stopped at models.m: ")
    assert "cannot be made" in message
    assert "Exists: datasets.digits (digits), training_jobs.train (train-" in message
    assert "Failed: models.m (m-" in message
    assert "Not made: endpoints.e, roles.r." in message
    assert caught.value.hint is not None and "Fix it." in caught.value.hint
    assert "run kennel up again" in caught.value.hint.lower()
    made = record(ctx.api, ctx.stack)
    assert made["status"] == "UpFailed"
    statuses = {r["address"]: r["status"] for r in made["resources"]}
    assert statuses == {
        "datasets.digits": "Ready",
        "training_jobs.train": "Ready",
        "models.m": "Failed",
    }

    handlers["models"].fail = None
    log.clear()
    outcome = up(ctx, stack, handlers=handlers)
    assert [s["action"] for s in outcome.steps] == ["none", "none", "create", "create", "create"]
    assert log == ["apply models.m", "apply endpoints.e", "apply roles.r"]
    assert record(ctx.api, ctx.stack)["status"] == "UpComplete"
    down(ctx, handlers=handlers)


def test_an_interrupted_up_is_recorded_and_the_next_one_finishes(
    ctx: StackContext, handlers: dict[str, Any]
) -> None:
    stack = parse_stack(stack_data(ctx.stack))
    handlers["endpoints"].interrupt = "e"
    with pytest.raises(KeyboardInterrupt):
        up(ctx, stack, handlers=handlers)
    made = record(ctx.api, ctx.stack)
    assert made["status"] == "UpInterrupted"
    # Written before acting: the endpoint is in the record, so down would look for it.
    assert {r["address"]: r["status"] for r in made["resources"]}["endpoints.e"] == "Creating"
    handlers["endpoints"].interrupt = None
    assert plan(ctx, stack, handlers=handlers).changes == 2
    up(ctx, stack, handlers=handlers)
    assert plan(ctx, stack, handlers=handlers).changes == 0
    down(ctx, handlers=handlers)


def test_a_replaced_model_is_removed_after_its_dependents_moved(
    ctx: StackContext, handlers: dict[str, Any], log: list[str]
) -> None:
    up(ctx, parse_stack(stack_data(ctx.stack)), handlers=handlers)
    old_model = next(iter(handlers["models"].made))
    log.clear()
    changed = parse_stack(stack_data(ctx.stack, epochs=2))
    steps = {(s.address.kind, s.action) for s in plan(ctx, changed, handlers=handlers).steps}
    assert {
        ("training_jobs", "replace"),
        ("models", "replace"),
        ("endpoints", "update"),
        ("models", "delete"),
        ("training_jobs", "delete"),
    } <= steps
    up(ctx, changed, handlers=handlers)
    assert log.index("apply endpoints.e") < log.index(f"delete models.{old_model}")
    assert old_model not in handlers["models"].made and len(handlers["models"].made) == 1
    resources = record(ctx.api, ctx.stack)["resources"]
    assert sorted(r["address"] for r in resources) == [
        "datasets.digits",
        "endpoints.e",
        "models.m",
        "roles.r",
        "training_jobs.train",
    ]
    down(ctx, handlers=handlers)


def test_stack_routes_are_authorized(server: RunningServer, api: KennelClient) -> None:
    iam = server.session.client("iam", endpoint_url=server.url, region_name="us-east-1")
    user = f"stack-reader-{uuid.uuid4().hex[:6]}"
    iam.create_user(UserName=user)
    iam.put_user_policy(
        UserName=user,
        PolicyName="read-stacks",
        PolicyDocument=(
            '{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", '
            '"Action": ["kennel:GetStack", "kennel:ListStacks"], "Resource": "*"}]}'
        ),
    )
    key = iam.create_access_key(UserName=user)["AccessKey"]
    name = f"stk-{uuid.uuid4().hex[:8]}"
    api.request("PUT", f"/api/v1/stacks/{name}", json_body={"status": "UpComplete"})
    with KennelClient(
        server.url, Credentials(key["AccessKeyId"], key["SecretAccessKey"]), "us-east-1"
    ) as reader:
        assert reader.get(f"/api/v1/stacks/{name}")["status"] == "UpComplete"
        with pytest.raises(AuthError, match="kennel:PutStack"):
            reader.request("PUT", f"/api/v1/stacks/{name}", json_body={"status": "UpFailed"})
        with pytest.raises(AuthError, match="kennel:DeleteStack"):
            reader.delete(f"/api/v1/stacks/{name}")
        lock = {"owner": "r" * 32, "operation": "up", "lease_seconds": 30}
        with pytest.raises(AuthError, match="kennel:PutStack"):
            reader.post(f"/api/v1/stacks/{name}/lock", lock)
    with pytest.raises(KennelError) as bad:
        api.request("PUT", f"/api/v1/stacks/{name}", json_body={"status": "Sideways"})
    assert bad.value.status == 400
    api.delete(f"/api/v1/stacks/{name}")


def test_up_and_down_refuse_while_another_run_holds_the_stack(
    ctx: StackContext, handlers: dict[str, Any], log: list[str]
) -> None:
    stack = parse_stack(stack_data(ctx.stack))
    up(ctx, stack, handlers=handlers)
    log.clear()
    other = {"owner": "o" * 32, "operation": "up", "holder": "the other run", "lease_seconds": 60}
    ctx.api.post(f"/api/v1/stacks/{ctx.stack}/lock", other)
    for run in (lambda: up(ctx, stack, handlers=handlers), lambda: down(ctx, handlers=handlers)):
        with pytest.raises(ConflictError) as held:
            run()
        assert "the other run" in held.value.message
        assert (
            held.value.hint is not None and f"kennel stack describe {ctx.stack}" in held.value.hint
        )
    assert log == []
    assert record(ctx.api, ctx.stack)["status"] == "UpComplete"
    with pytest.raises(ConflictError):  # nor may anyone else write the record meanwhile
        ctx.api.request("PUT", f"/api/v1/stacks/{ctx.stack}", json_body={"status": "UpFailed"})

    ctx.api.request("DELETE", f"/api/v1/stacks/{ctx.stack}/lock", params={"owner": "o" * 32})
    assert record(ctx.api, ctx.stack)["lock"] is None
    down(ctx, handlers=handlers)
    assert log[-1] == "delete datasets.digits"
