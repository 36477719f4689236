"""``/api/v1/iam``: what AWS spreads over CloudTrail and Access Analyzer, for one account.

The simulator, the access log (``explain`` a denial by its request id), the policy
generator and the unused-permission report built from that log, the audit, and
``validate-policy`` (Access Analyzer's ValidatePolicy: findings for a document, nothing
saved). ``users/NAME/login-profile`` is GetLoginProfile answering ``null`` instead of a 404
for a user without a console password, for the console. IAM's own
resources are not here: they speak AWS's Query protocol at ``POST /`` (``aws_query``).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from fastapi import APIRouter, Query
from pydantic import Field
from starlette.concurrency import run_in_threadpool

from kennel._errors import NotFoundError, ValidationError
from kennel._spec import Spec
from kennel.api._authz import authorize
from kennel.api._context import ServerContext
from kennel.api._deps import MAX_LOOKBACK_SECONDS, Context
from kennel.iam._actions import UNAUTHORIZED_ACTIONS
from kennel.iam._advisor import AccessRecord, generate_policy, unused_permissions
from kennel.iam._audit import audit
from kennel.iam._errors import NoSuchEntityError
from kennel.iam._service import build_snapshot
from kennel.iam._validate import validate_document

router = APIRouter(prefix="/api/v1/iam", tags=["iam"])


class SimulateRequest(Spec):
    principal: str
    actions: list[str] = Field(min_length=1)
    resources: list[str] = Field(default_factory=lambda: ["*"])
    context: dict[str, str | list[str]] = Field(default_factory=dict)


class GenerateRequest(Spec):
    principal: str
    since_seconds: float = Field(default=90 * 86400, gt=0, le=MAX_LOOKBACK_SECONDS)
    include_denied: bool = False


class ValidateRequest(Spec):
    document: str = Field(max_length=131_072)
    kind: Literal["identity", "trust", "resource"] = "identity"


def _since(seconds: float) -> datetime:
    return datetime.now(UTC) - timedelta(seconds=seconds)


def _records(ctx: ServerContext, principal: str, since_seconds: float) -> list[AccessRecord]:
    ctx.authorizer.principal_for_arn(principal)  # 404 for an unknown principal
    return [
        AccessRecord(
            time=datetime.fromisoformat(e["time"]),
            principal_arn=e["principal"],
            action=e["action"],
            resource=e["resource"],
            allowed=e["allowed"],
        )
        for e in ctx.access_log.entries(principal_arn=principal, since=_since(since_seconds))
    ]


@router.post("/simulate", dependencies=[authorize("iam:SimulatePrincipalPolicy")])
def simulate(spec: SimulateRequest, ctx: Context) -> dict[str, Any]:
    return {
        "results": ctx.authorizer.simulate(
            spec.principal, spec.actions, spec.resources, spec.context
        )
    }


@router.get("/access-log/{request_id}", dependencies=[authorize("sts:DecodeAuthorizationMessage")])
def explain(request_id: str, ctx: Context) -> dict[str, Any]:
    entries = ctx.access_log.get(request_id)
    if not entries:
        raise NotFoundError(
            f"No authorization decision was logged for request {request_id}.",
            hint="Request ids are in the x-amzn-RequestId header and in every denial's hint.",
        )
    return {"request_id": request_id, "decisions": entries}


@router.get("/access-log", dependencies=[authorize("cloudtrail:LookupEvents")])
def access_log(
    ctx: Context,
    principal: str | None = None,
    since_seconds: float = Query(default=3600.0, gt=0, le=MAX_LOOKBACK_SECONDS),
    denied: bool = False,
    limit: int = Query(default=200, ge=1, le=10_000),
) -> dict[str, Any]:
    entries = ctx.access_log.entries(
        principal_arn=principal,
        since=_since(since_seconds),
        allowed=False if denied else None,
        limit=limit,
    )
    return {"entries": entries}


@router.post("/generate-policy", dependencies=[authorize("access-analyzer:StartPolicyGeneration")])
async def generate(spec: GenerateRequest, ctx: Context) -> dict[str, Any]:
    records = await run_in_threadpool(_records, ctx, spec.principal, spec.since_seconds)
    try:
        document = generate_policy(
            [r for r in records if r.action not in UNAUTHORIZED_ACTIONS],
            include_denied=spec.include_denied,
        )
    except ValueError as error:
        raise ValidationError(
            str(error),
            hint="Run the workload under this principal first, or widen --since.",
        ) from error
    return {"principal": spec.principal, "calls": len(records), "policy": document}


@router.get("/unused", dependencies=[authorize("iam:GenerateServiceLastAccessedDetails")])
async def unused(
    ctx: Context,
    principal: str,
    since_seconds: float = Query(default=90 * 86400, gt=0, le=MAX_LOOKBACK_SECONDS),
) -> dict[str, Any]:
    records = await run_in_threadpool(_records, ctx, principal, since_seconds)
    policies = ctx.authorizer.principal_for_arn(principal).policies
    found = unused_permissions(policies, records, region=ctx.region, account=ctx.account_id)
    return {"principal": principal, "calls": len(records), "unused": [u.to_dict() for u in found]}


@router.get("/audit", dependencies=[authorize("access-analyzer:ListFindings")])
async def run_audit(
    ctx: Context, stale_days: int = Query(default=90, ge=1, le=3650)
) -> dict[str, Any]:
    def work() -> dict[str, Any]:
        snapshot = build_snapshot(ctx.iam, ctx.access_log.last_used())
        findings = audit(snapshot, datetime.now(UTC), stale_days=stale_days)
        return {"findings": [f.to_dict() for f in findings]}

    return await run_in_threadpool(work)


@router.get(
    "/users/{name}/login-profile", dependencies=[authorize("iam:GetLoginProfile", path="name")]
)
def login_profile(name: str, ctx: Context) -> dict[str, Any]:
    """GetLoginProfile that answers 200 with ``null`` for a user without a password: the
    console asks for every user it shows, and a 404 would be a red line in the browser."""
    ctx.iam.get_user(name)  # 404 for an unknown user
    try:
        profile = ctx.iam.get_login_profile(name)["LoginProfile"]
    except NoSuchEntityError:
        profile = None
    return {"user": name, "login_profile": profile}


@router.post("/validate-policy", dependencies=[authorize("access-analyzer:ValidatePolicy")])
def validate_policy(spec: ValidateRequest) -> dict[str, Any]:
    """Lint a policy document without saving it (Access Analyzer's ValidatePolicy)."""
    return {"findings": validate_document(spec.document, spec.kind)}
