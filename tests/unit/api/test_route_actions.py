"""Every route of the gateway is authorized: it names a catalog action before it runs."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from fastapi.routing import APIRoute

from kennel.api._app import create_control_plane
from kennel.api._authz import Authorize
from kennel.api._dataplane import INVOKE_ACTION
from kennel.api.routers.autoscaling_json import OPERATIONS as AUTOSCALING_OPERATIONS
from kennel.api.routers.aws_query import OPERATIONS, AuthorizeQuery
from kennel.iam._actions import ACTIONS


def _flatten(routes: list[Any]) -> list[APIRoute]:
    """The app's API routes, through included routers (FastAPI keeps those lazily)."""
    found: list[APIRoute] = []
    for route in routes:
        if isinstance(route, APIRoute):
            found.append(route)
        elif hasattr(route, "original_router"):
            assert not route.include_context.prefix, "routers carry their own prefix"
            found += _flatten(route.original_router.routes)
        else:
            raise AssertionError(f"unexpected route type {type(route).__name__}: {route}")
    return found


def _routes() -> list[APIRoute]:
    app = create_control_plane(SimpleNamespace())  # type: ignore[arg-type]
    return _flatten(list(app.routes))


def _authorizers(route: APIRoute) -> list[Authorize]:
    found = [d.call for d in route.dependant.dependencies if isinstance(d.call, Authorize)]
    return found


def test_the_app_has_routes_to_check() -> None:
    assert len(_routes()) >= 30


@pytest.mark.parametrize("route", _routes(), ids=lambda r: f"{sorted(r.methods)[0]} {r.path}")
def test_every_route_names_exactly_one_action(route: APIRoute) -> None:
    authorizers = _authorizers(route)
    assert len(authorizers) == 1, (
        f"{route.methods} {route.path} must declare dependencies=[authorize(...)] "
        "(kennel.api._authz) with its action and resource"
    )
    authorizer = authorizers[0]
    if not isinstance(authorizer, AuthorizeQuery):
        assert authorizer.action.full in ACTIONS


def test_the_query_protocol_route_maps_every_operation_to_a_catalog_action() -> None:
    assert set(OPERATIONS) == {"iam", "sts"}
    for service, operations in OPERATIONS.items():
        assert operations, service
        for name, operation in operations.items():
            assert operation.action in ACTIONS, f"{service} {name}"
            assert operation.action.split(":")[0] == service


def test_the_json_protocol_maps_every_autoscaling_operation_to_its_catalog_action() -> None:
    """Application Auto Scaling shares POST / (signed for application-autoscaling)."""
    assert {"RegisterScalableTarget", "PutScalingPolicy", "DescribeScalingActivities"} <= set(
        AUTOSCALING_OPERATIONS
    )
    for name, operation in AUTOSCALING_OPERATIONS.items():
        assert operation.action == f"application-autoscaling:{name}"
        assert operation.action in ACTIONS
    target = ACTIONS["application-autoscaling:RegisterScalableTarget"]
    assert target.arn("us-east-1", "123456789012", "abc") == (
        "arn:aws:application-autoscaling:us-east-1:123456789012:scalable-target/abc"
    )
    assert ACTIONS["application-autoscaling:DescribeScalableTargets"].resource == "*"


def test_invoke_endpoint_is_authorized_as_sagemaker_invoke_endpoint() -> None:
    assert INVOKE_ACTION == "sagemaker:InvokeEndpoint"
    arn = ACTIONS[INVOKE_ACTION].arn("us-east-1", "123456789012", "Dogs")
    assert arn == "arn:aws:sagemaker:us-east-1:123456789012:endpoint/dogs"


def test_resource_names_come_from_the_path_or_the_body() -> None:
    by_path = {
        (sorted(r.methods)[0], r.path): _authorizers(r)[0]
        for r in _routes()
        if not isinstance(_authorizers(r)[0], AuthorizeQuery)
    }
    create = by_path[("POST", "/api/v1/training-jobs")]
    describe = by_path[("GET", "/api/v1/training-jobs/{name}")]
    listing = by_path[("GET", "/api/v1/training-jobs")]
    assert create.action.full == "sagemaker:CreateTrainingJob" and create.name_of is not None
    assert describe.action.full == "sagemaker:DescribeTrainingJob" and describe.name_of
    assert listing.action.resource == "*" and listing.name_of is None
