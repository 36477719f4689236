"""``/api/v1/endpoint-configs`` and ``/api/v1/endpoints``: the serving control plane.

The data plane (InvokeEndpoint) is not here: it is ``kennel.api._dataplane``. Neither is
Application Auto Scaling's AWS API (``autoscaling_json``); ``/endpoints/{name}/scaling``
is kennel's own view of it: the alarms as the autoscaler holds them, and simulations.
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Query
from fastapi.responses import HTMLResponse

from kennel.api._authz import authorize
from kennel.api._deps import MAX_LOOKBACK_SECONDS, Context
from kennel.endpoints._scaling_chart import simulation_html, terminal_chart
from kennel.endpoints._scaling_spec import ScalingSpec
from kennel.endpoints._scaling_view import SimulateRequest, check_spec, replay, scaling_status
from kennel.endpoints._spec import EndpointConfigSpec, EndpointSpec, UpdateEndpointSpec

router = APIRouter(prefix="/api/v1", tags=["endpoints"])


@router.post(
    "/endpoint-configs",
    status_code=201,
    dependencies=[authorize("sagemaker:CreateEndpointConfig", body="name")],
)
def create_endpoint_config(spec: EndpointConfigSpec, ctx: Context) -> dict[str, Any]:
    return ctx.endpoints.create_config(spec)


@router.get("/endpoint-configs", dependencies=[authorize("sagemaker:ListEndpointConfigs")])
def list_endpoint_configs(ctx: Context) -> dict[str, Any]:
    return {"endpoint_configs": ctx.endpoints.list_configs()}


@router.get(
    "/endpoint-configs/{name}",
    dependencies=[authorize("sagemaker:DescribeEndpointConfig", path="name")],
)
def describe_endpoint_config(name: str, ctx: Context) -> dict[str, Any]:
    return ctx.endpoints.describe_config(name)


@router.delete(
    "/endpoint-configs/{name}",
    dependencies=[authorize("sagemaker:DeleteEndpointConfig", path="name")],
)
def delete_endpoint_config(name: str, ctx: Context) -> dict[str, Any]:
    ctx.endpoints.delete_config(name)
    return {"deleted": name}


@router.post(
    "/endpoints", status_code=201, dependencies=[authorize("sagemaker:CreateEndpoint", body="name")]
)
def create_endpoint(spec: EndpointSpec, ctx: Context) -> dict[str, Any]:
    return ctx.endpoints.create(spec)


@router.get("/endpoints", dependencies=[authorize("sagemaker:ListEndpoints")])
def list_endpoints(ctx: Context) -> dict[str, Any]:
    return {"endpoints": ctx.endpoints.list_all()}


@router.get(
    "/endpoints/{name}", dependencies=[authorize("sagemaker:DescribeEndpoint", path="name")]
)
def describe_endpoint(name: str, ctx: Context) -> dict[str, Any]:
    return ctx.endpoints.describe(name)


@router.post(
    "/endpoints/{name}/update", dependencies=[authorize("sagemaker:UpdateEndpoint", path="name")]
)
def update_endpoint(name: str, spec: UpdateEndpointSpec, ctx: Context) -> dict[str, Any]:
    return ctx.endpoints.update(name, spec)


@router.delete(
    "/endpoints/{name}", dependencies=[authorize("sagemaker:DeleteEndpoint", path="name")]
)
def delete_endpoint(name: str, ctx: Context) -> dict[str, Any]:
    return ctx.endpoints.delete(name)


@router.get("/endpoints/{name}/metrics", dependencies=[authorize("cloudwatch:GetMetricData")])
def endpoint_metrics(
    name: str,
    ctx: Context,
    since_seconds: float = Query(default=3600.0, gt=0, le=MAX_LOOKBACK_SECONDS),
) -> dict[str, Any]:
    return ctx.endpoints.metrics(name, since_seconds)


@router.get(
    "/endpoints/{name}/scaling",
    dependencies=[authorize("application-autoscaling:DescribeScalableTargets", path="name")],
)
def endpoint_scaling(name: str, ctx: Context) -> dict[str, Any]:
    """Each registered variant: bounds, instances, policies with their alarms, activities."""
    return scaling_status(
        name, endpoints=ctx.endpoints, scaling=ctx.scaling, autoscaler=ctx.autoscaler
    )


@router.post(
    "/endpoints/{name}/scaling/check",
    # Nothing is written: the checks are those of the writes, made by a reader.
    dependencies=[authorize("application-autoscaling:DescribeScalableTargets", path="name")],
)
def check_endpoint_scaling(name: str, spec: ScalingSpec, ctx: Context) -> dict[str, Any]:
    """Whether ``spec`` would apply to the endpoint as it is (400 saying why not)."""
    policies = check_spec(name, spec, endpoints=ctx.endpoints, scaling=ctx.scaling)
    return {
        "resource_id": spec.resource_id(name),
        "min_capacity": spec.min_capacity,
        "max_capacity": spec.max_capacity,
        "policies": [{"name": p.policy_name, "metric": p.metric} for p in policies],
    }


@router.post(
    "/endpoints/{name}/scaling/simulate",
    # A dry run changes nothing: reading the recorded metrics is what it needs.
    dependencies=[authorize("cloudwatch:GetMetricData", path="name")],
    response_model=None,
)
def simulate_endpoint_scaling(
    name: str,
    body: SimulateRequest,
    ctx: Context,
    output: Literal["json", "html"] = Query(
        default="json",
        alias="format",
        description="json: the result and a text chart; html: a page with an interactive chart.",
    ),
) -> dict[str, Any] | HTMLResponse:
    """What ``body.spec`` would have done over the variant's recorded metrics."""
    result = replay(name, body, endpoints=ctx.endpoints, scaling=ctx.scaling)
    if output == "html":
        return HTMLResponse(
            simulation_html(result, title=f"Scaling simulation: {result.resource_id}")
        )
    return {"result": result.to_dict(), "chart": terminal_chart(result)}
