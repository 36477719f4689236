"""A request to a variant at zero instances is held while one starts, within bounds."""

from __future__ import annotations

import asyncio
import io
import json
import time
from types import SimpleNamespace
from typing import Any

from kennel.api._dataplane import DataPlane
from kennel.endpoints._routing import (
    Backend,
    DeploymentRoute,
    EndpointRoute,
    RoutingTable,
    VariantRoute,
)
from kennel.endpoints._upstream import Response


class _AllowAll:
    def cached(self, key: str) -> Any:
        return SimpleNamespace(arn="arn:aws:iam::123456789012:user/admin")

    def check(self, *_: Any, **__: Any) -> Any:
        return SimpleNamespace(allowed=True)


class _Answering:
    """Stands in for the upstream pool of an instance: answers 200 at once."""

    def __init__(self) -> None:
        self.calls = 0

    async def request(self, *_: Any, **__: Any) -> Response:
        self.calls += 1
        return Response(200, {b"content-type": b"application/json"}, b'{"ok": true}')


def _backend(pool: _Answering) -> Backend:
    backend = Backend("i-1", "127.0.0.1", 1)
    backend._pool = pool  # type: ignore[assignment]
    return backend


def _plane(routes: RoutingTable, *, hold: float = 5.0, max_held: int = 8) -> DataPlane:
    ctx = SimpleNamespace(
        endpoints=SimpleNamespace(routes=routes),
        settings=SimpleNamespace(
            endpoint_model_timeout_seconds=5.0,
            endpoint_hold_seconds=hold,
            endpoint_hold_max_requests=max_held,
        ),
        account_id="123456789012",
        region="us-east-1",
        authorizer=_AllowAll(),
        capture=SimpleNamespace(random=lambda: 0.5),  # no variant here captures
    )

    async def inner(*_: Any) -> None:
        raise AssertionError("InvokeEndpoint must not reach the app")

    return DataPlane(inner, ctx)


async def _invoke(plane: DataPlane) -> tuple[int, dict[bytes, bytes], bytes]:
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    async def receive() -> dict[str, Any]:
        return {"type": "http.disconnect"}

    scope = {
        "type": "http",
        "method": "POST",
        "path": "/endpoints/e/invocations",
        "headers": [(b"content-type", b"application/json")],
        "state": {
            "body": SimpleNamespace(file=io.BytesIO(b"{}")),
            "identity": SimpleNamespace(access_key_id="AKIAEXAMPLE", region="us-east-1"),
            "request_id": "r-1",
        },
    }
    await plane(scope, receive, send)  # type: ignore[arg-type]
    start, body = sent
    return start["status"], dict(start["headers"]), body["body"]


def _routes(variant: VariantRoute) -> RoutingTable:
    routes = RoutingTable()
    routes.set(EndpointRoute("e", ((DeploymentRoute("cfg", (variant,)), 1.0),)))
    return routes


def test_a_held_request_is_answered_by_the_instance_that_starts_for_it() -> None:
    pool = _Answering()
    woken: list[float] = []
    variant = VariantRoute("AllTraffic", 1.0)

    def wake() -> bool:
        woken.append(time.monotonic())
        loop = asyncio.get_running_loop()
        loop.call_later(0.3, lambda: setattr(variant, "backends", (_backend(pool),)))
        return True

    variant.wake = wake
    plane = _plane(_routes(variant))

    async def scenario() -> list[tuple[int, dict[bytes, bytes], bytes]]:
        return await asyncio.gather(_invoke(plane), _invoke(plane))

    started = time.monotonic()
    answers = asyncio.run(scenario())
    assert [status for status, _, _ in answers] == [200, 200]
    assert answers[0][1][b"x-amzn-invoked-production-variant"] == b"AllTraffic"
    assert time.monotonic() - started >= 0.3
    assert pool.calls == 2
    assert variant.held == 0


def test_no_scalable_target_means_not_ready_at_once_without_holding() -> None:
    variant = VariantRoute("AllTraffic", 1.0, wake=lambda: False)
    status, headers, body = asyncio.run(_invoke(_plane(_routes(variant))))
    assert (status, headers[b"x-amzn-errortype"]) == (429, b"ModelNotReadyException")
    assert b"retry-after" not in headers
    assert "no instance ready" in json.loads(body)["message"]


def test_beyond_the_queue_bound_a_request_gets_429_with_retry_after() -> None:
    variant = VariantRoute("AllTraffic", 1.0, wake=lambda: True)
    status, headers, body = asyncio.run(_invoke(_plane(_routes(variant), max_held=0)))
    assert (status, headers[b"x-amzn-errortype"]) == (429, b"ModelNotReadyException")
    assert int(headers[b"retry-after"]) > 0
    assert "already waiting" in json.loads(body)["message"]


def test_a_request_held_past_the_wait_bound_gets_429_with_retry_after() -> None:
    variant = VariantRoute("AllTraffic", 1.0, wake=lambda: True)
    started = time.monotonic()
    status, headers, body = asyncio.run(_invoke(_plane(_routes(variant), hold=0.2)))
    assert 0.2 <= time.monotonic() - started < 2.0
    assert (status, headers[b"x-amzn-errortype"]) == (429, b"ModelNotReadyException")
    assert int(headers[b"retry-after"]) > 0
    assert "did not start within 0.2 s" in json.loads(body)["message"]
    assert variant.held == 0
