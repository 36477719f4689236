"""``POST /``: IAM and STS in AWS's Query protocol, so boto3's ``iam``/``sts`` clients work.

The signed service (``iam`` or ``sts``) and the form's ``Action`` pick the operation;
each operation names its catalog action and the resource it acts on, is authorized like
every other route, then calls :class:`kennel.iam._service.IamService`. Answers and errors
are XML, as the Query protocol has them.

A request signed for ``application-autoscaling`` (AWS JSON 1.1, also a POST to ``/``) is
handed to :mod:`kennel.api.routers.autoscaling_json` instead, by both the dependency and
the route: FastAPI allows only one ``POST /``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Request, Response
from starlette.concurrency import run_in_threadpool

from kennel.api._authz import Authorize, authorize_now
from kennel.api._context import ServerContext
from kennel.api._query import QueryMap, QueryProtocolError, parse_query_body, xml_response
from kennel.api.routers import autoscaling_json
from kennel.iam._actions import action as catalog_action
from kennel.iam._authorizer import Outcome
from kennel.iam._errors import IamValidationError, InvalidUserTypeError
from kennel.iam._password_policy import PasswordPolicy
from kennel.iam._service import Principal, PrincipalKind

router = APIRouter(tags=["iam"])

Params = dict[str, Any]
Handler = Callable[[ServerContext, Params, Principal], dict[str, Any] | None]
ResourceOf = Callable[[ServerContext, Params, Principal], str]

_ENCODED_DOCUMENTS = ("PolicyDocument", "AssumeRolePolicyDocument", "Document")


@dataclass(frozen=True)
class Operation:
    action: str
    resource: ResourceOf
    handler: Handler


def _required(params: Params, name: str) -> str:
    value = params.get(name)
    if value is None or value == "":
        field = name[0].lower() + name[1:]
        raise IamValidationError(
            f"1 validation error detected: Value null at '{field}' failed to satisfy "
            "constraint: Member must not be null"
        )
    return str(value)


def _int(params: Params, name: str, default: int) -> int:
    raw = params.get(name)
    if raw in (None, ""):
        return default
    try:
        return int(raw)
    except ValueError:
        raise IamValidationError(f"{name} must be a whole number, not {raw!r}.") from None


def _optional_int(params: Params, name: str) -> int | None:
    """A number the caller may leave out (None), as the password policy's."""
    return None if params.get(name) in (None, "") else _int(params, name, 0)


def _bool(params: Params, name: str) -> bool:
    return str(params.get(name, "false")).lower() == "true"


def _optional_bool(params: Params, name: str) -> bool | None:
    """A boolean the caller may leave out (None), as UpdateLoginProfile's reset flag."""
    raw = params.get(name)
    if raw in (None, ""):
        return None
    return str(raw).lower() == "true"


def _list(params: Params, name: str) -> list[Any]:
    value = params.get(name)
    return value if isinstance(value, list) else []


def _user_name(params: Params, caller: Principal) -> str:
    """``UserName``, defaulting to the caller (AWS does so for a user's own keys and MFA)."""
    name = params.get("UserName")
    if name:
        return str(name)
    if caller.kind == "user":
        return caller.name
    raise IamValidationError(
        "Must specify userName when calling with non-User credentials",
    )


def _iam_arn(kind: str, key: str) -> ResourceOf:
    def resource(ctx: ServerContext, params: Params, caller: Principal) -> str:
        name = _user_name(params, caller) if key == "UserName" else _required(params, key)
        return f"arn:aws:iam::{ctx.account_id}:{kind}/{name}"

    return resource


def _param(key: str) -> ResourceOf:
    def resource(ctx: ServerContext, params: Params, caller: Principal) -> str:
        return _required(params, key)

    return resource


def _star(ctx: ServerContext, params: Params, caller: Principal) -> str:
    return "*"


def _policy_arn(ctx: ServerContext, params: Params, caller: Principal) -> str:
    return f"arn:aws:iam::{ctx.account_id}:policy{params.get('Path') or '/'}" + _required(
        params, "PolicyName"
    )


def _mfa_arn(ctx: ServerContext, params: Params, caller: Principal) -> str:
    name = _required(params, "VirtualMFADeviceName")
    return f"arn:aws:iam::{ctx.account_id}:mfa{params.get('Path') or '/'}{name}"


def _own_user_arn(ctx: ServerContext, params: Params, caller: Principal) -> str:
    """The caller's own user: ChangePassword acts on no other, and only a user may call it."""
    if caller.kind != "user":
        raise InvalidUserTypeError(
            f"{caller.arn} is not an IAM user: only an IAM user can change their own password."
        )
    return f"arn:aws:iam::{ctx.account_id}:user/{caller.name}"


_USER = _iam_arn("user", "UserName")
_GROUP = _iam_arn("group", "GroupName")
_ROLE = _iam_arn("role", "RoleName")
_POLICY = _param("PolicyArn")


def _principal_ops(kind: PrincipalKind, key: str, resource: ResourceOf) -> dict[str, Operation]:
    """Attach/Detach/ListAttached and Put/Get/Delete/List inline policies for one kind."""
    noun = kind.capitalize()

    def name(p: Params, c: Principal) -> str:
        return _user_name(p, c) if kind == "user" else _required(p, key)

    return {
        f"Attach{noun}Policy": Operation(
            f"iam:Attach{noun}Policy",
            resource,
            lambda x, p, c: x.iam.attach(kind, name(p, c), _required(p, "PolicyArn")),
        ),
        f"Detach{noun}Policy": Operation(
            f"iam:Detach{noun}Policy",
            resource,
            lambda x, p, c: x.iam.detach(kind, name(p, c), _required(p, "PolicyArn")),
        ),
        f"ListAttached{noun}Policies": Operation(
            f"iam:ListAttached{noun}Policies",
            resource,
            lambda x, p, c: x.iam.list_attached(kind, name(p, c)),
        ),
        f"Put{noun}Policy": Operation(
            f"iam:Put{noun}Policy",
            resource,
            lambda x, p, c: x.iam.put_inline(
                kind,
                name(p, c),
                _required(p, "PolicyName"),
                _required(p, "PolicyDocument"),
            ),
        ),
        f"Get{noun}Policy": Operation(
            f"iam:Get{noun}Policy",
            resource,
            lambda x, p, c: x.iam.get_inline(kind, name(p, c), _required(p, "PolicyName")),
        ),
        f"Delete{noun}Policy": Operation(
            f"iam:Delete{noun}Policy",
            resource,
            lambda x, p, c: x.iam.delete_inline(kind, name(p, c), _required(p, "PolicyName")),
        ),
        f"List{noun}Policies": Operation(
            f"iam:List{noun}Policies",
            resource,
            lambda x, p, c: x.iam.list_inline(kind, name(p, c)),
        ),
    }


def _update_password_policy(ctx: ServerContext, params: Params, caller: Principal) -> None:
    """Every parameter left out takes AWS's default: the call replaces the whole policy."""
    ctx.iam.update_account_password_policy(
        PasswordPolicy.given(
            minimum_password_length=_optional_int(params, "MinimumPasswordLength"),
            require_symbols=_bool(params, "RequireSymbols"),
            require_numbers=_bool(params, "RequireNumbers"),
            require_uppercase_characters=_bool(params, "RequireUppercaseCharacters"),
            require_lowercase_characters=_bool(params, "RequireLowercaseCharacters"),
            allow_users_to_change_password=_bool(params, "AllowUsersToChangePassword"),
            max_password_age=_optional_int(params, "MaxPasswordAge"),
            password_reuse_prevention=_optional_int(params, "PasswordReusePrevention"),
            hard_expiry=_bool(params, "HardExpiry"),
        )
    )


def _simulate(ctx: ServerContext, params: Params, caller: Principal) -> dict[str, Any]:
    context: dict[str, Any] = {}
    for entry in _list(params, "ContextEntries"):
        values = entry.get("ContextKeyValues") or []
        context[entry["ContextKeyName"]] = values if len(values) != 1 else values[0]
    results = ctx.authorizer.simulate(
        _required(params, "PolicySourceArn"),
        _list(params, "ActionNames"),
        _list(params, "ResourceArns") or ["*"],
        context,
    )
    decisions = {"allowed": "allowed", "explicit-deny": "explicitDeny"}
    return {
        "EvaluationResults": [
            {
                "EvalActionName": r["action"],
                "EvalResourceName": r["resource"],
                "EvalDecision": decisions.get(r["reason"], "implicitDeny"),
                "MatchedStatements": (
                    [
                        {
                            "SourcePolicyId": r["statement"].get("policy") or "",
                            "SourcePolicyType": "IAM Policy",
                        }
                    ]
                    if r["statement"]
                    else []
                ),
                "MissingContextValues": [],
                "EvalDecisionDetails": QueryMap(),
            }
            for r in results
        ],
        "IsTruncated": False,
    }


IAM_OPERATIONS: dict[str, Operation] = {
    "CreateUser": Operation(
        "iam:CreateUser",
        _USER,
        lambda x, p, c: x.iam.create_user(_required(p, "UserName"), p.get("Path")),
    ),
    "GetUser": Operation("iam:GetUser", _USER, lambda x, p, c: x.iam.get_user(_user_name(p, c))),
    "ListUsers": Operation("iam:ListUsers", _star, lambda x, p, c: x.iam.list_users()),
    "DeleteUser": Operation(
        "iam:DeleteUser",
        _USER,
        lambda x, p, c: x.iam.delete_user(_required(p, "UserName")),
    ),
    "CreateAccessKey": Operation(
        "iam:CreateAccessKey", _USER, lambda x, p, c: x.iam.create_access_key(_user_name(p, c))
    ),
    "ListAccessKeys": Operation(
        "iam:ListAccessKeys", _USER, lambda x, p, c: x.iam.list_access_keys(_user_name(p, c))
    ),
    "UpdateAccessKey": Operation(
        "iam:UpdateAccessKey",
        _USER,
        lambda x, p, c: x.iam.update_access_key(
            _required(p, "AccessKeyId"), _required(p, "Status"), _user_name(p, c)
        ),
    ),
    "DeleteAccessKey": Operation(
        "iam:DeleteAccessKey",
        _USER,
        lambda x, p, c: x.iam.delete_access_key(_required(p, "AccessKeyId"), _user_name(p, c)),
    ),
    "GetAccessKeyLastUsed": Operation(
        "iam:GetAccessKeyLastUsed",
        lambda x, p, c: (
            f"arn:aws:iam::{x.account_id}:user/"
            + (x.iam.user_of_key(_required(p, "AccessKeyId")) or "*")
        ),
        lambda x, p, c: x.iam.get_access_key_last_used(_required(p, "AccessKeyId")),
    ),
    "CreateLoginProfile": Operation(
        "iam:CreateLoginProfile",
        _USER,
        lambda x, p, c: x.iam.create_login_profile(
            _user_name(p, c), _required(p, "Password"), _bool(p, "PasswordResetRequired")
        ),
    ),
    "GetLoginProfile": Operation(
        "iam:GetLoginProfile", _USER, lambda x, p, c: x.iam.get_login_profile(_user_name(p, c))
    ),
    "UpdateLoginProfile": Operation(
        "iam:UpdateLoginProfile",
        _USER,
        lambda x, p, c: x.iam.update_login_profile(
            _required(p, "UserName"),
            password=p.get("Password"),
            password_reset_required=_optional_bool(p, "PasswordResetRequired"),
        ),
    ),
    "DeleteLoginProfile": Operation(
        "iam:DeleteLoginProfile",
        _USER,
        lambda x, p, c: x.iam.delete_login_profile(_user_name(p, c)),
    ),
    "ChangePassword": Operation(
        "iam:ChangePassword",
        _own_user_arn,
        lambda x, p, c: x.iam.change_password(
            c.name, _required(p, "OldPassword"), _required(p, "NewPassword")
        ),
    ),
    "UpdateAccountPasswordPolicy": Operation(
        "iam:UpdateAccountPasswordPolicy", _star, _update_password_policy
    ),
    "GetAccountPasswordPolicy": Operation(
        "iam:GetAccountPasswordPolicy",
        _star,
        lambda x, p, c: x.iam.get_account_password_policy(),
    ),
    "DeleteAccountPasswordPolicy": Operation(
        "iam:DeleteAccountPasswordPolicy",
        _star,
        lambda x, p, c: x.iam.delete_account_password_policy(),
    ),
    "CreateGroup": Operation(
        "iam:CreateGroup",
        _GROUP,
        lambda x, p, c: x.iam.create_group(_required(p, "GroupName"), p.get("Path")),
    ),
    "GetGroup": Operation(
        "iam:GetGroup", _GROUP, lambda x, p, c: x.iam.get_group(_required(p, "GroupName"))
    ),
    "ListGroups": Operation("iam:ListGroups", _star, lambda x, p, c: x.iam.list_groups()),
    "DeleteGroup": Operation(
        "iam:DeleteGroup",
        _GROUP,
        lambda x, p, c: x.iam.delete_group(_required(p, "GroupName")),
    ),
    "AddUserToGroup": Operation(
        "iam:AddUserToGroup",
        _GROUP,
        lambda x, p, c: x.iam.add_user_to_group(
            _required(p, "GroupName"), _required(p, "UserName")
        ),
    ),
    "RemoveUserFromGroup": Operation(
        "iam:RemoveUserFromGroup",
        _GROUP,
        lambda x, p, c: x.iam.remove_user_from_group(
            _required(p, "GroupName"), _required(p, "UserName")
        ),
    ),
    "ListGroupsForUser": Operation(
        "iam:ListGroupsForUser",
        _USER,
        lambda x, p, c: x.iam.list_groups_for_user(_user_name(p, c)),
    ),
    "CreateRole": Operation(
        "iam:CreateRole",
        _ROLE,
        lambda x, p, c: x.iam.create_role(
            _required(p, "RoleName"),
            _required(p, "AssumeRolePolicyDocument"),
            description=p.get("Description") or "",
            path=p.get("Path"),
            max_session_duration=_int(p, "MaxSessionDuration", 3600),
            permissions_boundary=p.get("PermissionsBoundary") or None,
        ),
    ),
    "GetRole": Operation(
        "iam:GetRole", _ROLE, lambda x, p, c: x.iam.get_role(_required(p, "RoleName"))
    ),
    "ListRoles": Operation("iam:ListRoles", _star, lambda x, p, c: x.iam.list_roles()),
    "DeleteRole": Operation(
        "iam:DeleteRole",
        _ROLE,
        lambda x, p, c: x.iam.delete_role(_required(p, "RoleName")),
    ),
    "UpdateAssumeRolePolicy": Operation(
        "iam:UpdateAssumeRolePolicy",
        _ROLE,
        lambda x, p, c: x.iam.update_assume_role_policy(
            _required(p, "RoleName"), _required(p, "PolicyDocument")
        ),
    ),
    "CreatePolicy": Operation(
        "iam:CreatePolicy",
        _policy_arn,
        lambda x, p, c: x.iam.create_policy(
            _required(p, "PolicyName"),
            _required(p, "PolicyDocument"),
            description=p.get("Description") or "",
            path=p.get("Path"),
        ),
    ),
    "GetPolicy": Operation(
        "iam:GetPolicy", _POLICY, lambda x, p, c: x.iam.get_policy(_required(p, "PolicyArn"))
    ),
    "GetPolicyVersion": Operation(
        "iam:GetPolicyVersion",
        _POLICY,
        lambda x, p, c: x.iam.get_policy_version(
            _required(p, "PolicyArn"), _required(p, "VersionId")
        ),
    ),
    "ListPolicyVersions": Operation(
        "iam:ListPolicyVersions",
        _POLICY,
        lambda x, p, c: x.iam.list_policy_versions(_required(p, "PolicyArn")),
    ),
    "CreatePolicyVersion": Operation(
        "iam:CreatePolicyVersion",
        _POLICY,
        lambda x, p, c: x.iam.create_policy_version(
            _required(p, "PolicyArn"),
            _required(p, "PolicyDocument"),
            set_as_default=_bool(p, "SetAsDefault"),
        ),
    ),
    "ListPolicies": Operation(
        "iam:ListPolicies",
        _star,
        lambda x, p, c: x.iam.list_policies(
            p.get("Scope") or "All", only_attached=_bool(p, "OnlyAttached")
        ),
    ),
    "DeletePolicy": Operation(
        "iam:DeletePolicy",
        _POLICY,
        lambda x, p, c: x.iam.delete_policy(_required(p, "PolicyArn")),
    ),
    "ListEntitiesForPolicy": Operation(
        "iam:ListEntitiesForPolicy",
        _POLICY,
        lambda x, p, c: x.iam.list_entities_for_policy(_required(p, "PolicyArn")),
    ),
    **_principal_ops("user", "UserName", _USER),
    **_principal_ops("group", "GroupName", _GROUP),
    **_principal_ops("role", "RoleName", _ROLE),
    "PutUserPermissionsBoundary": Operation(
        "iam:PutUserPermissionsBoundary",
        _USER,
        lambda x, p, c: x.iam.put_boundary(
            "user", _required(p, "UserName"), _required(p, "PermissionsBoundary")
        ),
    ),
    "DeleteUserPermissionsBoundary": Operation(
        "iam:DeleteUserPermissionsBoundary",
        _USER,
        lambda x, p, c: x.iam.delete_boundary("user", _required(p, "UserName")),
    ),
    "PutRolePermissionsBoundary": Operation(
        "iam:PutRolePermissionsBoundary",
        _ROLE,
        lambda x, p, c: x.iam.put_boundary(
            "role", _required(p, "RoleName"), _required(p, "PermissionsBoundary")
        ),
    ),
    "DeleteRolePermissionsBoundary": Operation(
        "iam:DeleteRolePermissionsBoundary",
        _ROLE,
        lambda x, p, c: x.iam.delete_boundary("role", _required(p, "RoleName")),
    ),
    "CreateVirtualMFADevice": Operation(
        "iam:CreateVirtualMFADevice",
        _mfa_arn,
        lambda x, p, c: x.iam.create_virtual_mfa_device(
            _required(p, "VirtualMFADeviceName"), p.get("Path")
        ),
    ),
    "EnableMFADevice": Operation(
        "iam:EnableMFADevice",
        _USER,
        lambda x, p, c: x.iam.enable_mfa_device(
            _user_name(p, c),
            _required(p, "SerialNumber"),
            _required(p, "AuthenticationCode1"),
            _required(p, "AuthenticationCode2"),
        ),
    ),
    "DeactivateMFADevice": Operation(
        "iam:DeactivateMFADevice",
        _USER,
        lambda x, p, c: x.iam.deactivate_mfa_device(_user_name(p, c), _required(p, "SerialNumber")),
    ),
    "ListMFADevices": Operation(
        "iam:ListMFADevices", _USER, lambda x, p, c: x.iam.list_mfa_devices(_user_name(p, c))
    ),
    "ListVirtualMFADevices": Operation(
        "iam:ListVirtualMFADevices", _star, lambda x, p, c: x.iam.list_virtual_mfa_devices()
    ),
    "DeleteVirtualMFADevice": Operation(
        "iam:DeleteVirtualMFADevice",
        _param("SerialNumber"),
        lambda x, p, c: x.iam.delete_virtual_mfa_device(_required(p, "SerialNumber")),
    ),
    "SimulatePrincipalPolicy": Operation("iam:SimulatePrincipalPolicy", _star, _simulate),
}


def _caller_identity(ctx: ServerContext, params: Params, caller: Principal) -> dict[str, Any]:
    user_id = caller.id if caller.kind == "user" else f"{caller.id}:{caller.session_name}"
    return {"UserId": user_id, "Account": ctx.account_id, "Arn": caller.arn}


STS_OPERATIONS: dict[str, Operation] = {
    "AssumeRole": Operation(
        "sts:AssumeRole",
        _param("RoleArn"),
        lambda x, p, c: x.iam.assume_role(
            c,
            _required(p, "RoleArn"),
            _required(p, "RoleSessionName"),
            duration_seconds=_int(p, "DurationSeconds", 3600),
            policy=p.get("Policy") or None,
            serial_number=p.get("SerialNumber") or None,
            token_code=p.get("TokenCode") or None,
        ),
    ),
    "GetSessionToken": Operation(
        "sts:GetSessionToken",
        _star,
        lambda x, p, c: x.iam.get_session_token(
            c,
            duration_seconds=_int(p, "DurationSeconds", 12 * 3600),
            serial_number=p.get("SerialNumber") or None,
            token_code=p.get("TokenCode") or None,
        ),
    ),
    "GetCallerIdentity": Operation("sts:GetCallerIdentity", _star, _caller_identity),
}

OPERATIONS = {"iam": IAM_OPERATIONS, "sts": STS_OPERATIONS}


class AuthorizeQuery(Authorize):
    """Authorizes the operation the form names (each has its catalog action)."""

    def __init__(self) -> None:
        self.name_of = None

    async def __call__(self, request: Request) -> Outcome:
        ctx: ServerContext = request.app.state.ctx
        service = request.state.identity.service
        if service == autoscaling_json.SERVICE:
            return await autoscaling_json.authorize(request)
        try:
            name, params = parse_query_body(await request.body())
        except QueryProtocolError as error:
            raise IamValidationError(str(error), aws_code=error.code) from error
        operation = OPERATIONS.get(service, {}).get(name)
        if operation is None:
            raise IamValidationError(
                f"Could not find operation {name} for the {service} service in kennel.",
                aws_code="InvalidAction",
                hint="See `kennel iam --help` for what kennel's IAM and STS support.",
            )
        key = request.state.identity.access_key_id
        caller = await run_in_threadpool(ctx.authorizer.principal, key)
        resource = operation.resource(ctx, params, caller)
        request.state.query = (service, name, params, operation, caller)
        extra = None
        if operation.action == "sts:AssumeRole" and params.get("TokenCode"):
            # The code is checked when the session is made; a wrong one is refused there.
            extra = {"aws:MultiFactorAuthPresent": "true"}
        return await authorize_now(ctx, request.scope, operation.action, resource, extra)


_authorize_query = AuthorizeQuery()


def _encode_documents(value: Any) -> Any:
    """IAM sends policy documents URL-encoded (boto3 decodes them back into dicts)."""
    if isinstance(value, dict) and not isinstance(value, QueryMap):
        return {
            k: quote(v, safe="")
            if k in _ENCODED_DOCUMENTS and isinstance(v, str)
            else _encode_documents(v)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_encode_documents(v) for v in value]
    return value


@router.post("/")
async def aws_query(request: Request, _: Outcome = Depends(_authorize_query)) -> Response:
    if request.state.identity.service == autoscaling_json.SERVICE:
        return await autoscaling_json.respond(request)
    ctx: ServerContext = request.app.state.ctx
    service, name, params, operation, caller = request.state.query
    result = await run_in_threadpool(operation.handler, ctx, params, caller)
    body = xml_response(service, name, _encode_documents(result or None), request.state.request_id)
    return Response(content=body, media_type="text/xml")


for _operations in OPERATIONS.values():
    for _operation in _operations.values():
        catalog_action(_operation.action)
