"""The data plane answers in AWS's shape even when something unexpected breaks."""

from __future__ import annotations

import asyncio
import io
import json
from types import SimpleNamespace
from typing import Any

from kennel.api._dataplane import DataPlane
from kennel.endpoints._routing import EndpointRoute, RoutingTable


class _AllowAll:
    """Authorization is not what these tests are about: every caller may invoke."""

    def cached(self, key: str) -> Any:
        return SimpleNamespace(arn="arn:aws:iam::123456789012:user/admin")

    def check(self, *_: Any, **__: Any) -> Any:
        return SimpleNamespace(allowed=True)


class _Broken(EndpointRoute):
    def choose_deployment(self) -> Any:
        raise RuntimeError("boom")


def _call(routes: RoutingTable, path: str) -> tuple[int, dict[bytes, bytes], dict[str, Any]]:
    ctx = SimpleNamespace(
        endpoints=SimpleNamespace(routes=routes),
        settings=SimpleNamespace(endpoint_model_timeout_seconds=5.0),
        account_id="123456789012",
        region="us-east-1",
        authorizer=_AllowAll(),
        capture=SimpleNamespace(random=lambda: 0.5),  # no variant here captures
    )
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    async def receive() -> dict[str, Any]:
        return {"type": "http.disconnect"}

    async def inner(*_: Any) -> None:
        raise AssertionError("InvokeEndpoint must not reach the app")

    scope = {
        "type": "http",
        "method": "POST",
        "path": path,
        "headers": [(b"content-type", b"application/json")],
        "state": {
            "body": SimpleNamespace(file=io.BytesIO(b"{}")),
            "identity": SimpleNamespace(access_key_id="AKIAEXAMPLE", region="us-east-1"),
            "request_id": "r-1",
        },
    }
    asyncio.run(DataPlane(inner, ctx)(scope, receive, send))  # type: ignore[arg-type]
    start, body = sent
    return start["status"], dict(start["headers"]), json.loads(body["body"])


def test_an_unknown_endpoint_is_a_validation_error() -> None:
    status, headers, body = _call(RoutingTable(), "/endpoints/nope/invocations")
    assert status == 400
    assert headers[b"x-amzn-errortype"] == b"ValidationError"
    assert body["message"] == "Endpoint nope of account 123456789012 not found."


def test_an_unexpected_failure_is_internal_failure_not_a_bare_500() -> None:
    routes = RoutingTable()
    routes.set(_Broken("e", ((None, 1.0), (None, 0.0))))  # type: ignore[arg-type]
    status, headers, body = _call(routes, "/endpoints/e/invocations")
    assert status == 500
    assert headers[b"x-amzn-errortype"] == b"InternalFailure"
    assert "RuntimeError: boom" in body["message"]


def test_an_endpoint_still_starting_is_not_ready() -> None:
    routes = RoutingTable()
    routes.set(EndpointRoute("e", (), "SystemUpdating"))
    status, headers, _ = _call(routes, "/endpoints/e/invocations")
    assert (status, headers[b"x-amzn-errortype"]) == (429, b"ModelNotReadyException")
    routes.set(EndpointRoute("e", (), "Creating"))
    status, headers, body = _call(routes, "/endpoints/e/invocations")
    assert (status, headers[b"x-amzn-errortype"]) == (400, b"ValidationError")
    assert "Creating" in body["message"]
