"""Application Auto Scaling in AWS's JSON 1.1 protocol, so boto3's client works unchanged.

It shares ``POST /`` with IAM and STS (FastAPI allows one such route): ``aws_query`` hands
a request signed for ``application-autoscaling`` to :func:`authorize` (its dependency) and
:func:`respond` (its body). ``X-Amz-Target: AnyScaleFrontendService.<Operation>`` picks the
operation; each one names its catalog action and the scalable target it acts on, is
authorized like every other route, then calls
:class:`kennel.endpoints._scaling.ScalingService` with the request as sent. Answers are
JSON 1.1; errors too (``kennel.api._errors``, told by the X-Amz-Target header).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fastapi import Request, Response
from starlette.concurrency import run_in_threadpool

from kennel.api._authz import authorize_now
from kennel.api._context import ServerContext
from kennel.api._json_protocol import (
    CONTENT_TYPE,
    TARGET_HEADER,
    UnknownOperationError,
    dump,
    operation_name,
    parse_body,
)
from kennel.endpoints._scaling import ScalingService
from kennel.iam._actions import action as catalog_action
from kennel.iam._authorizer import Outcome

SERVICE = "application-autoscaling"
"""The SigV4 signing name (and IAM service prefix) of Application Auto Scaling."""
TARGET_PREFIX = "AnyScaleFrontendService"
_STATE = "autoscaling_call"

Params = dict[str, Any]
Handler = Callable[[ScalingService, Params], dict[str, Any]]
ResourceOf = Callable[[ServerContext, Params], str]


@dataclass(frozen=True)
class Operation:
    action: str
    resource: ResourceOf
    handler: Handler


def _star(ctx: ServerContext, params: Params) -> str:
    return "*"


def _scalable_target(ctx: ServerContext, params: Params) -> str:
    """The target's ARN (known before it is registered: its id comes from the resource ID)."""
    resource_id = params.get("ResourceId")
    if not isinstance(resource_id, str) or not resource_id:
        return "*"
    return ctx.scaling.target_arn(resource_id)


def _tagged(ctx: ServerContext, params: Params) -> str:
    arn = params.get("ResourceARN")
    return arn if isinstance(arn, str) and arn else "*"


def _on_target(name: str, handler: Handler) -> Operation:
    return Operation(f"{SERVICE}:{name}", _scalable_target, handler)


OPERATIONS: dict[str, Operation] = {
    "RegisterScalableTarget": _on_target(
        "RegisterScalableTarget", ScalingService.register_scalable_target
    ),
    "DescribeScalableTargets": Operation(
        f"{SERVICE}:DescribeScalableTargets", _star, ScalingService.describe_scalable_targets
    ),
    "DeregisterScalableTarget": _on_target(
        "DeregisterScalableTarget", ScalingService.deregister_scalable_target
    ),
    "PutScalingPolicy": _on_target("PutScalingPolicy", ScalingService.put_scaling_policy),
    "DescribeScalingPolicies": Operation(
        f"{SERVICE}:DescribeScalingPolicies", _star, ScalingService.describe_scaling_policies
    ),
    "DeleteScalingPolicy": _on_target("DeleteScalingPolicy", ScalingService.delete_scaling_policy),
    "DescribeScalingActivities": Operation(
        f"{SERVICE}:DescribeScalingActivities", _star, ScalingService.describe_scaling_activities
    ),
    "PutScheduledAction": _on_target("PutScheduledAction", ScalingService.put_scheduled_action),
    "DescribeScheduledActions": Operation(
        f"{SERVICE}:DescribeScheduledActions", _star, ScalingService.describe_scheduled_actions
    ),
    "DeleteScheduledAction": _on_target(
        "DeleteScheduledAction", ScalingService.delete_scheduled_action
    ),
    "ListTagsForResource": Operation(
        f"{SERVICE}:ListTagsForResource", _tagged, ScalingService.list_tags_for_resource
    ),
    "TagResource": Operation(f"{SERVICE}:TagResource", _tagged, ScalingService.tag_resource),
    "UntagResource": Operation(f"{SERVICE}:UntagResource", _tagged, ScalingService.untag_resource),
}


def _conditions(params: Params) -> dict[str, Any]:
    """Application Auto Scaling's condition keys, for the requests that carry them."""
    found: dict[str, Any] = {}
    for member, key in (
        ("ServiceNamespace", "application-autoscaling:service-namespace"),
        ("ScalableDimension", "application-autoscaling:scalable-dimension"),
    ):
        value = params.get(member)
        if isinstance(value, str):
            found[key] = value
    return found


async def authorize(request: Request) -> Outcome:
    """Pick the operation, read its input, and authorize its action on its target."""
    ctx: ServerContext = request.app.state.ctx
    name = operation_name(request.headers.get(TARGET_HEADER), TARGET_PREFIX)
    operation = OPERATIONS.get(name)
    if operation is None:
        raise UnknownOperationError(
            f"kennel's Application Auto Scaling does not implement {name}; it implements "
            f"{', '.join(OPERATIONS)}."
        )
    params = parse_body(await request.body())
    request.scope.setdefault("state", {})[_STATE] = (operation, params)
    resource = operation.resource(ctx, params)
    return await authorize_now(ctx, request.scope, operation.action, resource, _conditions(params))


async def respond(request: Request) -> Response:
    """Run the operation :func:`authorize` picked (off the event loop: it reads the DB)."""
    ctx: ServerContext = request.app.state.ctx
    operation, params = request.scope["state"][_STATE]
    result = await run_in_threadpool(operation.handler, ctx.scaling, params)
    return Response(content=dump(result), media_type=CONTENT_TYPE)


for _operation in OPERATIONS.values():
    catalog_action(_operation.action)
