"""Lambda's control plane, wire-compatible with boto3's ``lambda`` client (restJson).

Functions, versions, aliases, reserved and provisioned concurrency, account settings,
function URL configs, permissions (the function's resource policy), asynchronous
invocation configs and tags. Invoke is not here: it is a bare ASGI layer in front of the
app (``kennel.api._functions_plane``), like InvokeEndpoint.

Every route authorizes its Lambda action on the function it names: the path's
``{name}`` (a name, ``name:qualifier``, a partial ARN or an ARN) plus ``?Qualifier=``,
so a policy can grant ``function:my-fn`` or ``function:my-fn:*``. CreateFunction and
UpdateFunctionConfiguration with a Role also need ``iam:PassRole`` on that role
(``iam:PassedToService`` = ``lambda.amazonaws.com``), as on AWS.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Request, Response
from starlette.concurrency import run_in_threadpool

from kennel import _json
from kennel.api._authz import Authorize, NameOf, authorize, authorize_now
from kennel.api._context import ServerContext
from kennel.api._deps import Context
from kennel.functions._errors import InvalidRequestContentError
from kennel.functions._names import resource_name
from kennel.functions._service import LAMBDA_SERVICE
from kennel.functions._spec import (
    ConcurrencySpec,
    CreateAliasSpec,
    CreateFunctionSpec,
    CreateUrlConfigSpec,
    EventInvokeConfigSpec,
    PermissionSpec,
    ProvisionedConcurrencySpec,
    PublishVersionSpec,
    TagsSpec,
    UpdateAliasSpec,
    UpdateCodeSpec,
    UpdateConfigurationSpec,
    UpdateUrlConfigSpec,
    parse,
)
from kennel.iam._actions import action
from kennel.iam._authorizer import Outcome

router = APIRouter(tags=["lambda"])

FUNCTIONS = "/2015-03-31/functions"
FUNCTION = FUNCTIONS + "/{name}"
_DOCUMENT = "lambda_document"

Qualifier = Query(default=None, alias="Qualifier")
Marker = Query(default=None, alias="Marker")
MaxItems = Query(default=None, alias="MaxItems", ge=1, le=10000)


# --- authorization: the function a request names -------------------------------------


def _function_in_path(request: Request) -> str:
    raw = str(request.path_params.get("name", ""))
    return resource_name(raw, request.query_params.get("Qualifier") or None)


async def _path_name(request: Request) -> str:
    return _function_in_path(request)


async def _body_name(request: Request) -> str:
    try:
        document = await _document(request)
    except InvalidRequestContentError:
        return ""
    value = document.get("FunctionName") if isinstance(document, dict) else None
    return resource_name(value) if isinstance(value, str) else ""


async def _tagged_name(request: Request) -> str:
    return resource_name(str(request.path_params.get("arn", "")))


def _on(full_action: str, name_of: NameOf = _path_name) -> Any:
    """``Depends`` on authorizing ``full_action`` on the function the request names."""
    return Depends(Authorize(full_action, name_of))


class _AuthorizeGetOrList(Authorize):
    """GET .../provisioned-concurrency is one route for two operations: ``?List=ALL`` lists."""

    def __init__(self, single: str, listing: str) -> None:
        super().__init__(single, _path_name)
        self.listing = action(listing)

    async def __call__(self, request: Request) -> Outcome:
        ctx: ServerContext = request.app.state.ctx
        chosen = self.listing if request.query_params.get("List") == "ALL" else self.action
        raw = str(request.path_params.get("name", ""))
        name = resource_name(raw) if chosen is self.listing else _function_in_path(request)
        resource = chosen.arn(ctx.region, ctx.account_id, name)
        return await authorize_now(ctx, request.scope, chosen.full, resource)


async def _document(request: Request) -> Any:
    """The JSON body, parsed once per request (authorization may need it first)."""
    state = request.scope.setdefault("state", {})
    if _DOCUMENT not in state:
        raw = await request.body()
        try:
            state[_DOCUMENT] = _json.loads(raw) if raw.strip() else {}
        except ValueError as exc:
            raise InvalidRequestContentError(
                f"Could not parse request body into json: {exc}"
            ) from None
    return state[_DOCUMENT]


async def _pass_role(ctx: ServerContext, request: Request, role: str) -> None:
    """Handing a role to Lambda takes iam:PassRole on it, like on AWS."""
    await authorize_now(
        ctx, request.scope, "iam:PassRole", role, {"iam:PassedToService": LAMBDA_SERVICE}
    )


def _no_content() -> Response:
    return Response(status_code=204)


def _base_url(request: Request) -> str:
    return str(request.base_url)


# --- functions ------------------------------------------------------------------------


@router.post(FUNCTIONS, status_code=201, dependencies=[_on("lambda:CreateFunction", _body_name)])
async def create_function(request: Request, ctx: Context) -> dict[str, Any]:
    spec = parse(CreateFunctionSpec, await _document(request))
    await _pass_role(ctx, request, spec.role)
    return await run_in_threadpool(ctx.functions.create_function, spec)


@router.get(FUNCTIONS, dependencies=[authorize("lambda:ListFunctions")])
async def list_functions(
    ctx: Context,
    function_version: str | None = Query(default=None, alias="FunctionVersion"),
    marker: str | None = Marker,
    max_items: int | None = MaxItems,
) -> dict[str, Any]:
    return await run_in_threadpool(
        ctx.functions.list_functions, function_version, marker, max_items
    )


@router.get(FUNCTION, dependencies=[_on("lambda:GetFunction")])
async def get_function(
    name: str, ctx: Context, qualifier: str | None = Qualifier
) -> dict[str, Any]:
    return await run_in_threadpool(ctx.functions.get_function, name, qualifier)


@router.delete(FUNCTION, status_code=204, dependencies=[_on("lambda:DeleteFunction")])
async def delete_function(name: str, ctx: Context, qualifier: str | None = Qualifier) -> Response:
    await run_in_threadpool(ctx.functions.delete_function, name, qualifier)
    return _no_content()


@router.get(FUNCTION + "/configuration", dependencies=[_on("lambda:GetFunctionConfiguration")])
async def get_function_configuration(
    name: str, ctx: Context, qualifier: str | None = Qualifier
) -> dict[str, Any]:
    return await run_in_threadpool(ctx.functions.get_function_configuration, name, qualifier)


@router.put(FUNCTION + "/configuration", dependencies=[_on("lambda:UpdateFunctionConfiguration")])
async def update_function_configuration(
    name: str, request: Request, ctx: Context
) -> dict[str, Any]:
    spec = parse(UpdateConfigurationSpec, await _document(request))
    if spec.role is not None:
        await _pass_role(ctx, request, spec.role)
    return await run_in_threadpool(ctx.functions.update_function_configuration, name, spec)


@router.put(FUNCTION + "/code", dependencies=[_on("lambda:UpdateFunctionCode")])
async def update_function_code(name: str, request: Request, ctx: Context) -> dict[str, Any]:
    spec = parse(UpdateCodeSpec, await _document(request))
    return await run_in_threadpool(ctx.functions.update_function_code, name, spec)


# --- versions and aliases ---------------------------------------------------------------


@router.post(FUNCTION + "/versions", status_code=201, dependencies=[_on("lambda:PublishVersion")])
async def publish_version(name: str, request: Request, ctx: Context) -> dict[str, Any]:
    spec = parse(PublishVersionSpec, await _document(request))
    return await run_in_threadpool(ctx.functions.publish_version, name, spec)


@router.get(FUNCTION + "/versions", dependencies=[_on("lambda:ListVersionsByFunction")])
async def list_versions(
    name: str, ctx: Context, marker: str | None = Marker, max_items: int | None = MaxItems
) -> dict[str, Any]:
    return await run_in_threadpool(ctx.functions.list_versions, name, marker, max_items)


@router.post(FUNCTION + "/aliases", status_code=201, dependencies=[_on("lambda:CreateAlias")])
async def create_alias(name: str, request: Request, ctx: Context) -> dict[str, Any]:
    spec = parse(CreateAliasSpec, await _document(request))
    return await run_in_threadpool(ctx.functions.create_alias, name, spec)


@router.get(FUNCTION + "/aliases", dependencies=[_on("lambda:ListAliases")])
async def list_aliases(
    name: str,
    ctx: Context,
    function_version: str | None = Query(default=None, alias="FunctionVersion"),
    marker: str | None = Marker,
    max_items: int | None = MaxItems,
) -> dict[str, Any]:
    return await run_in_threadpool(
        ctx.functions.list_aliases, name, function_version, marker, max_items
    )


@router.get(FUNCTION + "/aliases/{alias}", dependencies=[_on("lambda:GetAlias")])
async def get_alias(name: str, alias: str, ctx: Context) -> dict[str, Any]:
    return await run_in_threadpool(ctx.functions.get_alias, name, alias)


@router.put(FUNCTION + "/aliases/{alias}", dependencies=[_on("lambda:UpdateAlias")])
async def update_alias(name: str, alias: str, request: Request, ctx: Context) -> dict[str, Any]:
    spec = parse(UpdateAliasSpec, await _document(request))
    return await run_in_threadpool(ctx.functions.update_alias, name, alias, spec)


@router.delete(
    FUNCTION + "/aliases/{alias}", status_code=204, dependencies=[_on("lambda:DeleteAlias")]
)
async def delete_alias(name: str, alias: str, ctx: Context) -> Response:
    await run_in_threadpool(ctx.functions.delete_alias, name, alias)
    return _no_content()


# --- concurrency ------------------------------------------------------------------------

RESERVED = "/2017-10-31/functions/{name}/concurrency"
PROVISIONED = "/2019-09-30/functions/{name}/provisioned-concurrency"


@router.put(RESERVED, dependencies=[_on("lambda:PutFunctionConcurrency")])
async def put_function_concurrency(name: str, request: Request, ctx: Context) -> dict[str, Any]:
    spec = parse(ConcurrencySpec, await _document(request))
    return await run_in_threadpool(ctx.functions.put_function_concurrency, name, spec)


@router.delete(RESERVED, status_code=204, dependencies=[_on("lambda:DeleteFunctionConcurrency")])
async def delete_function_concurrency(name: str, ctx: Context) -> Response:
    await run_in_threadpool(ctx.functions.delete_function_concurrency, name)
    return _no_content()


@router.get(
    "/2019-09-30/functions/{name}/concurrency",
    dependencies=[_on("lambda:GetFunctionConcurrency")],
)
async def get_function_concurrency(name: str, ctx: Context) -> dict[str, Any]:
    return await run_in_threadpool(ctx.functions.get_function_concurrency, name)


@router.put(
    PROVISIONED, status_code=202, dependencies=[_on("lambda:PutProvisionedConcurrencyConfig")]
)
async def put_provisioned_concurrency(
    name: str, request: Request, ctx: Context, qualifier: str | None = Qualifier
) -> dict[str, Any]:
    spec = parse(ProvisionedConcurrencySpec, await _document(request))
    return await run_in_threadpool(ctx.functions.put_provisioned_concurrency, name, qualifier, spec)


@router.get(
    PROVISIONED,
    dependencies=[
        Depends(
            _AuthorizeGetOrList(
                "lambda:GetProvisionedConcurrencyConfig",
                "lambda:ListProvisionedConcurrencyConfigs",
            )
        )
    ],
)
async def get_or_list_provisioned_concurrency(
    name: str,
    ctx: Context,
    qualifier: str | None = Qualifier,
    listing: str | None = Query(default=None, alias="List"),
    marker: str | None = Marker,
    max_items: int | None = Query(default=None, alias="MaxItems", ge=1, le=50),
) -> dict[str, Any]:
    if listing == "ALL":
        return await run_in_threadpool(
            ctx.functions.list_provisioned_concurrency, name, marker, max_items
        )
    return await run_in_threadpool(ctx.functions.get_provisioned_concurrency, name, qualifier)


@router.delete(
    PROVISIONED,
    status_code=204,
    dependencies=[_on("lambda:DeleteProvisionedConcurrencyConfig")],
)
async def delete_provisioned_concurrency(
    name: str, ctx: Context, qualifier: str | None = Qualifier
) -> Response:
    await run_in_threadpool(ctx.functions.delete_provisioned_concurrency, name, qualifier)
    return _no_content()


@router.get("/2016-08-19/account-settings", dependencies=[authorize("lambda:GetAccountSettings")])
async def get_account_settings(ctx: Context) -> dict[str, Any]:
    return await run_in_threadpool(ctx.functions.account_settings)


# --- function URLs --------------------------------------------------------------------

URL = "/2021-10-31/functions/{name}/url"


@router.post(URL, status_code=201, dependencies=[_on("lambda:CreateFunctionUrlConfig")])
async def create_url_config(
    name: str, request: Request, ctx: Context, qualifier: str | None = Qualifier
) -> dict[str, Any]:
    spec = parse(CreateUrlConfigSpec, await _document(request))
    return await run_in_threadpool(
        lambda: ctx.functions.create_url_config(name, qualifier, spec, base_url=_base_url(request))
    )


@router.get(URL, dependencies=[_on("lambda:GetFunctionUrlConfig")])
async def get_url_config(
    name: str, request: Request, ctx: Context, qualifier: str | None = Qualifier
) -> dict[str, Any]:
    return await run_in_threadpool(
        lambda: ctx.functions.get_url_config(name, qualifier, base_url=_base_url(request))
    )


@router.put(URL, dependencies=[_on("lambda:UpdateFunctionUrlConfig")])
async def update_url_config(
    name: str, request: Request, ctx: Context, qualifier: str | None = Qualifier
) -> dict[str, Any]:
    spec = parse(UpdateUrlConfigSpec, await _document(request))
    return await run_in_threadpool(
        lambda: ctx.functions.update_url_config(name, qualifier, spec, base_url=_base_url(request))
    )


@router.delete(URL, status_code=204, dependencies=[_on("lambda:DeleteFunctionUrlConfig")])
async def delete_url_config(name: str, ctx: Context, qualifier: str | None = Qualifier) -> Response:
    await run_in_threadpool(ctx.functions.delete_url_config, name, qualifier)
    return _no_content()


@router.get(
    "/2021-10-31/functions/{name}/urls", dependencies=[_on("lambda:ListFunctionUrlConfigs")]
)
async def list_url_configs(
    name: str,
    request: Request,
    ctx: Context,
    marker: str | None = Marker,
    max_items: int | None = Query(default=None, alias="MaxItems", ge=1, le=50),
) -> dict[str, Any]:
    return await run_in_threadpool(
        lambda: ctx.functions.list_url_configs(
            name, base_url=_base_url(request), marker=marker, max_items=max_items
        )
    )


# --- permissions (the function's resource policy) ---------------------------------------


@router.post(FUNCTION + "/policy", status_code=201, dependencies=[_on("lambda:AddPermission")])
async def add_permission(
    name: str, request: Request, ctx: Context, qualifier: str | None = Qualifier
) -> dict[str, Any]:
    spec = parse(PermissionSpec, await _document(request))
    return await run_in_threadpool(ctx.functions.add_permission, name, qualifier, spec)


@router.get(FUNCTION + "/policy", dependencies=[_on("lambda:GetPolicy")])
async def get_policy(name: str, ctx: Context, qualifier: str | None = Qualifier) -> dict[str, Any]:
    return await run_in_threadpool(ctx.functions.get_policy, name, qualifier)


@router.delete(
    FUNCTION + "/policy/{statement_id}",
    status_code=204,
    dependencies=[_on("lambda:RemovePermission")],
)
async def remove_permission(
    name: str,
    statement_id: str,
    ctx: Context,
    qualifier: str | None = Qualifier,
    revision_id: str | None = Query(default=None, alias="RevisionId"),
) -> Response:
    await run_in_threadpool(
        ctx.functions.remove_permission, name, statement_id, qualifier, revision_id
    )
    return _no_content()


# --- asynchronous invocation config ---------------------------------------------------

EVENT_CONFIG = "/2019-09-25/functions/{name}/event-invoke-config"


@router.put(EVENT_CONFIG, dependencies=[_on("lambda:PutFunctionEventInvokeConfig")])
async def put_event_invoke_config(
    name: str, request: Request, ctx: Context, qualifier: str | None = Qualifier
) -> dict[str, Any]:
    spec = parse(EventInvokeConfigSpec, await _document(request))
    return await run_in_threadpool(ctx.functions.put_event_invoke_config, name, qualifier, spec)


@router.post(EVENT_CONFIG, dependencies=[_on("lambda:UpdateFunctionEventInvokeConfig")])
async def update_event_invoke_config(
    name: str, request: Request, ctx: Context, qualifier: str | None = Qualifier
) -> dict[str, Any]:
    spec = parse(EventInvokeConfigSpec, await _document(request))
    return await run_in_threadpool(
        lambda: ctx.functions.put_event_invoke_config(name, qualifier, spec, merge=True)
    )


@router.get(EVENT_CONFIG, dependencies=[_on("lambda:GetFunctionEventInvokeConfig")])
async def get_event_invoke_config(
    name: str, ctx: Context, qualifier: str | None = Qualifier
) -> dict[str, Any]:
    return await run_in_threadpool(ctx.functions.get_event_invoke_config, name, qualifier)


@router.delete(
    EVENT_CONFIG, status_code=204, dependencies=[_on("lambda:DeleteFunctionEventInvokeConfig")]
)
async def delete_event_invoke_config(
    name: str, ctx: Context, qualifier: str | None = Qualifier
) -> Response:
    await run_in_threadpool(ctx.functions.delete_event_invoke_config, name, qualifier)
    return _no_content()


@router.get(EVENT_CONFIG + "/list", dependencies=[_on("lambda:ListFunctionEventInvokeConfigs")])
async def list_event_invoke_configs(
    name: str,
    ctx: Context,
    marker: str | None = Marker,
    max_items: int | None = Query(default=None, alias="MaxItems", ge=1, le=50),
) -> dict[str, Any]:
    return await run_in_threadpool(ctx.functions.list_event_invoke_configs, name, marker, max_items)


# --- tags -----------------------------------------------------------------------------

TAGS = "/2017-03-31/tags/{arn}"


@router.get(TAGS, dependencies=[_on("lambda:ListTags", _tagged_name)])
async def list_tags(arn: str, ctx: Context) -> dict[str, Any]:
    return await run_in_threadpool(ctx.functions.list_tags, arn)


@router.post(TAGS, status_code=204, dependencies=[_on("lambda:TagResource", _tagged_name)])
async def tag_resource(arn: str, request: Request, ctx: Context) -> Response:
    spec = parse(TagsSpec, await _document(request))
    await run_in_threadpool(ctx.functions.tag_resource, arn, spec.tags)
    return _no_content()


@router.delete(TAGS, status_code=204, dependencies=[_on("lambda:UntagResource", _tagged_name)])
async def untag_resource(
    arn: str, ctx: Context, tag_keys: list[str] | None = Query(default=None, alias="tagKeys")
) -> Response:
    await run_in_threadpool(ctx.functions.untag_resource, arn, tag_keys or [])
    return _no_content()
