"""``kennel iam``: users, keys, groups, roles, policies, MFA and STS, plus the analysis.

IAM's own resources go through plain boto3 ``iam``/``sts`` clients pointed at the server
(it speaks AWS's Query protocol at ``POST /``), signed with the same profile, endpoint
and region as every other command; ``--json`` prints AWS's own shapes. The analysis
commands (``simulate``, ``explain``, ``access-log``, ``generate-policy``, ``unused``,
``audit``) use kennel's ``/api/v1/iam`` routes and print their JSON as it is.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import shlex
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import quote, unquote

import typer
from rich.markup import escape
from rich.panel import Panel
from rich.table import Table

from kennel._errors import (
    KennelError,
    NotFoundError,
    ValidationError,
)
from kennel.cli._aws import AwsClient, aws_client, parse_duration
from kennel.cli._common import JsonOption, client, pairs
from kennel.cli._output import console, err_console, fold_table, kv_table, plain, print_json, when
from kennel.iam._password_policy import (
    DEFAULT_MINIMUM_LENGTH,
    MAX_PASSWORD_AGE_DAYS,
    MAX_PASSWORD_LENGTH,
    MAX_REUSE_PREVENTION,
    MIN_PASSWORD_LENGTH,
    SYMBOLS_TEXT,
)

app = typer.Typer(
    help="IAM: users, keys, groups, roles, policies, MFA, STS, and why a call was allowed.",
    no_args_is_help=True,
)
users_app = typer.Typer(help="IAM users.", no_args_is_help=True)
keys_app = typer.Typer(help="Access keys of IAM users.", no_args_is_help=True)
groups_app = typer.Typer(help="IAM groups.", no_args_is_help=True)
roles_app = typer.Typer(
    help="IAM roles: who may assume them and what they may do.", no_args_is_help=True
)
policies_app = typer.Typer(
    help="Managed policies (customer managed and built-in).", no_args_is_help=True
)
mfa_app = typer.Typer(help="Virtual MFA devices.", no_args_is_help=True)
password_policy_app = typer.Typer(
    help="The account's password policy: what console passwords must be, and how long they "
    "last. Without a subcommand, show it.",
    invoke_without_command=True,
)
app.add_typer(users_app, name="users")
app.add_typer(keys_app, name="keys")
app.add_typer(groups_app, name="groups")
app.add_typer(roles_app, name="roles")
app.add_typer(policies_app, name="policies")
app.add_typer(mfa_app, name="mfa")
app.add_typer(password_policy_app, name="password-policy")

IAM_API = "/api/v1/iam"
POLICY_VERSION = "2012-10-17"
_SEVERITY_RANK = {"high": 0, "medium": 1, "low": 2}
_SEVERITY_STYLE = {"high": "bold red", "medium": "yellow", "low": "cyan"}
_BASE32 = re.compile(r"[A-Z2-7]+=*")


class Scope(StrEnum):
    all = "all"
    aws = "aws"
    local = "local"


class Severity(StrEnum):
    high = "high"
    medium = "medium"
    low = "low"


def _json_text(document: Any) -> str:
    return json.dumps(document, indent=2)


def _read_document(path: Path, option: str = "--document") -> str:
    """A JSON policy document from a file (``-``: standard input), checked to be JSON."""
    try:
        text = sys.stdin.read() if str(path) == "-" else path.read_text()
    except OSError as exc:
        raise ValidationError(
            f"{option} {path}: {exc.strerror or exc}", hint="Give a JSON policy file."
        ) from exc
    try:
        json.loads(text)
    except ValueError as exc:
        raise ValidationError(
            f"{option} {path} is not valid JSON: {exc}",
            hint='A policy looks like {"Version": "2012-10-17", "Statement": [...]}.',
        ) from exc
    return text


def _document(value: Any) -> Any:
    """A policy document as boto3 gives it (a dict, or URL-encoded/JSON text)."""
    if isinstance(value, str):
        try:
            return json.loads(unquote(value))
        except ValueError:
            return value
    return value


def _target(user: str | None, role: str | None, group: str | None) -> tuple[str, str]:
    given = [(k, v) for k, v in (("user", user), ("role", role), ("group", group)) if v]
    if len(given) != 1:
        raise ValidationError(
            "Give exactly one of --user, --role and --group.",
            hint="e.g. kennel iam attach --role my-role AmazonSageMakerFullAccess",
        )
    return given[0]


def _noun(kind: str) -> str:
    return kind.capitalize()


def resolve_policy_arn(iam: AwsClient, value: str) -> str:
    """An ARN as given; a bare name: this account's customer policy, else a built-in."""
    if value.startswith("arn:"):
        return value
    policies = iam.list_policies(Scope="All")["Policies"]
    named = [p for p in policies if p["PolicyName"] == value]
    named.sort(key=lambda p: p["Arn"].startswith("arn:aws:iam::aws:"))  # customer first
    if not named:
        raise NotFoundError(
            f"No managed policy is named {value}.",
            hint="See `kennel iam policies list`, or give the policy's ARN.",
        )
    return str(named[0]["Arn"])


def _principal_of(arn: str) -> tuple[str, str] | None:
    """``(kind, name)`` of the IAM principal an ARN names (a role for its sessions)."""
    parts = arn.split(":", 5)
    if len(parts) != 6:
        return None
    resource = parts[5]
    if parts[2] == "iam" and resource.startswith(("user/", "role/")):
        kind, _, rest = resource.partition("/")
        return kind, rest.rsplit("/", 1)[-1]
    if parts[2] == "sts" and resource.startswith("assumed-role/"):
        return "role", resource.split("/")[1]
    return None


# Users ---------------------------------------------------------------------------------


@users_app.command("create")
def create_user(
    name: str,
    path: Annotated[str | None, typer.Option(help="IAM path, e.g. /team/.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Create a user (no keys, no permissions yet)."""
    iam = aws_client("iam")
    user = iam.create_user(UserName=name, **({"Path": path} if path else {}))["User"]
    if as_json:
        print_json(plain(user))
        return
    console.print(f"Created user {name}: {user['Arn']}", soft_wrap=True, highlight=False)
    console.print(
        f"Next: kennel iam keys create {name}; kennel iam attach --user {name} POLICY",
        style="dim",
        soft_wrap=True,
        highlight=False,
    )


@users_app.command("list")
def list_users(as_json: JsonOption = False) -> None:
    """List users."""
    users = aws_client("iam").list_users()["Users"]
    if as_json:
        print_json(plain(users))
        return
    table = fold_table("name", "arn", "id", "created")
    for u in users:
        table.add_row(
            u["UserName"],
            u["Arn"],
            u["UserId"],
            when(u["CreateDate"]),
        )
    console.print(table)


def _user_details(iam: AwsClient, name: str) -> dict[str, Any]:
    user = iam.get_user(UserName=name)["User"]
    keys = iam.list_access_keys(UserName=name)["AccessKeyMetadata"]
    for key in keys:
        key["LastUsed"] = iam.get_access_key_last_used(AccessKeyId=key["AccessKeyId"])[
            "AccessKeyLastUsed"
        ]
    inline = {
        policy: _document(iam.get_user_policy(UserName=name, PolicyName=policy)["PolicyDocument"])
        for policy in iam.list_user_policies(UserName=name)["PolicyNames"]
    }
    return {
        "User": user,
        "AttachedPolicies": iam.list_attached_user_policies(UserName=name)["AttachedPolicies"],
        "InlinePolicies": inline,
        "Groups": iam.list_groups_for_user(UserName=name)["Groups"],
        "AccessKeys": keys,
        "MFADevices": iam.list_mfa_devices(UserName=name)["MFADevices"],
        "LoginProfile": _login_profile(iam, name),
    }


def _login_profile(iam: AwsClient, name: str) -> dict[str, Any] | None:
    """The user's console password's details (never the password), or None without one."""
    try:
        return dict(iam.get_login_profile(UserName=name)["LoginProfile"])
    except KennelError as error:
        if error.aws_code == "NoSuchEntity":
            return None
        raise


@users_app.command("describe")
def describe_user(name: str, as_json: JsonOption = False) -> None:
    """Show a user: policies, groups, access keys, MFA devices and console password."""
    info = _user_details(aws_client("iam"), name)
    if as_json:
        print_json(plain(info))
        return
    user = info["User"]
    table = kv_table()
    table.add_row("name", user["UserName"])
    table.add_row("arn", user["Arn"])
    table.add_row("id", user["UserId"])
    table.add_row("created", when(user["CreateDate"]))
    boundary = (user.get("PermissionsBoundary") or {}).get("PermissionsBoundaryArn")
    if boundary:
        table.add_row("boundary", boundary)
    table.add_row("groups", ", ".join(g["GroupName"] for g in info["Groups"]) or "-")
    table.add_row("attached", "\n".join(p["PolicyArn"] for p in info["AttachedPolicies"]) or "-")
    table.add_row("inline", ", ".join(info["InlinePolicies"]) or "-")
    keys = [
        f"{k['AccessKeyId']}  {k['Status']}  created {when(k['CreateDate'])}"
        f"  last used {when(k['LastUsed'].get('LastUsedDate'))}"
        for k in info["AccessKeys"]
    ]
    table.add_row("access keys", "\n".join(keys) or "-")
    table.add_row("mfa", "\n".join(d["SerialNumber"] for d in info["MFADevices"]) or "none")
    table.add_row("console password", _password_text(info["LoginProfile"]))
    console.print(table)
    for policy, document in info["InlinePolicies"].items():
        console.print(f"\n[bold]inline policy {escape(policy)}[/]")
        console.print(_json_text(document), soft_wrap=True, highlight=False, markup=False)


def _password_text(profile: dict[str, Any] | None) -> str:
    if profile is None:
        return "none"
    reset = ", must be changed at next sign-in" if profile["PasswordResetRequired"] else ""
    return f"set {when(profile['CreateDate'])}{reset}"


def _new_password(from_stdin: bool) -> str:
    """The password from standard input (its first line), or typed twice without echo."""
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    password: str = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    return password


@users_app.command("set-password")
def set_password(
    name: str,
    password_stdin: Annotated[
        bool,
        typer.Option(
            "--password-stdin", help="Read the password from standard input (its first line)."
        ),
    ] = False,
    reset_required: Annotated[
        bool,
        typer.Option(
            "--reset-required/--no-reset-required",
            help="The user must choose a new password at next sign-in.",
        ),
    ] = False,
) -> None:
    """Set NAME's console password (IAM's login profile): create it, or replace it."""
    iam = aws_client("iam")
    iam.get_user(UserName=name)  # an unknown user is refused before the prompt
    password = _new_password(password_stdin)
    if _login_profile(iam, name) is None:
        iam.create_login_profile(
            UserName=name, Password=password, PasswordResetRequired=reset_required
        )
        console.print(f"Set a console password for {name}.")
    else:
        iam.update_login_profile(
            UserName=name, Password=password, PasswordResetRequired=reset_required
        )
        console.print(f"Changed the console password of {name}.")
    if reset_required:
        console.print("They must choose a new one at next sign-in.", style="dim")


@users_app.command("remove-password")
def remove_password(name: str) -> None:
    """Remove NAME's console password: they can no longer sign in with one."""
    aws_client("iam").delete_login_profile(UserName=name)
    console.print(f"Removed the console password of {name}.")


@users_app.command("delete")
def delete_user(
    name: str,
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="First delete its console password, keys and inline policies, detach its "
            "managed policies, take it out of its groups and deactivate its MFA devices.",
        ),
    ] = False,
) -> None:
    """Delete a user (refused while it has a password, keys, policies or MFA, unless --force)."""
    iam = aws_client("iam")
    if force:
        if _login_profile(iam, name) is not None:
            iam.delete_login_profile(UserName=name)
        _strip_principal(iam, "user", name)
        for key in iam.list_access_keys(UserName=name)["AccessKeyMetadata"]:
            iam.delete_access_key(UserName=name, AccessKeyId=key["AccessKeyId"])
        for group in iam.list_groups_for_user(UserName=name)["Groups"]:
            iam.remove_user_from_group(GroupName=group["GroupName"], UserName=name)
        for device in iam.list_mfa_devices(UserName=name)["MFADevices"]:
            iam.deactivate_mfa_device(UserName=name, SerialNumber=device["SerialNumber"])
    iam.delete_user(UserName=name)
    console.print(f"Deleted user {name}.")


def _strip_principal(iam: AwsClient, kind: str, name: str) -> None:
    """Detach every managed policy of a principal and delete its inline ones."""
    key = f"{_noun(kind)}Name"
    attached = getattr(iam, f"list_attached_{kind}_policies")(**{key: name})
    for policy in attached["AttachedPolicies"]:
        getattr(iam, f"detach_{kind}_policy")(**{key: name, "PolicyArn": policy["PolicyArn"]})
    inline = getattr(iam, f"list_{kind}_policies")(**{key: name})["PolicyNames"]
    for policy_name in inline:
        getattr(iam, f"delete_{kind}_policy")(**{key: name, "PolicyName": policy_name})


# Access keys ---------------------------------------------------------------------------------


@keys_app.command("create")
def create_key(user: str, as_json: JsonOption = False) -> None:
    """Create an access key for USER and print its secret (the only time it can be shown)."""
    key = aws_client("iam").create_access_key(UserName=user)["AccessKey"]
    err_console.print(
        "[bold yellow]Warning:[/] this is the only time the secret access key can be shown; "
        "store it now (e.g. in ~/.aws/credentials).",
        soft_wrap=True,
    )
    if as_json:
        print_json(plain(key))
        return
    table = kv_table()
    table.add_row("user", key["UserName"])
    table.add_row("access key id", key["AccessKeyId"])
    table.add_row("secret access key", key["SecretAccessKey"])
    table.add_row("status", key["Status"])
    console.print(table)


@keys_app.command("list")
def list_keys(user: str, as_json: JsonOption = False) -> None:
    """List USER's access keys, with when and where each was last used."""
    iam = aws_client("iam")
    keys = iam.list_access_keys(UserName=user)["AccessKeyMetadata"]
    for key in keys:
        key["LastUsed"] = iam.get_access_key_last_used(AccessKeyId=key["AccessKeyId"])[
            "AccessKeyLastUsed"
        ]
    if as_json:
        print_json(plain(keys))
        return
    if not keys:
        console.print(f"{user} has no access keys. Create one with: kennel iam keys create {user}")
        return
    table = fold_table("access key id", "status", "created", "last used", "service")
    for k in keys:
        status = k["Status"] if k["Status"] == "Active" else f"[dim]{k['Status']}[/]"
        table.add_row(
            k["AccessKeyId"],
            status,
            when(k["CreateDate"]),
            when(k["LastUsed"].get("LastUsedDate")),
            k["LastUsed"].get("ServiceName") or "-",
        )
    console.print(table)


def _set_key_status(user: str, key_id: str, status: str) -> None:
    aws_client("iam").update_access_key(UserName=user, AccessKeyId=key_id, Status=status)
    console.print(f"Access key {key_id} of {user} is {status} now.")


@keys_app.command("deactivate")
def deactivate_key(user: str, key_id: str) -> None:
    """Make a key Inactive: requests signed with it are refused from now on."""
    _set_key_status(user, key_id, "Inactive")


@keys_app.command("activate")
def activate_key(user: str, key_id: str) -> None:
    """Make an Inactive key Active again."""
    _set_key_status(user, key_id, "Active")


@keys_app.command("delete")
def delete_key(user: str, key_id: str) -> None:
    """Delete an access key for good."""
    aws_client("iam").delete_access_key(UserName=user, AccessKeyId=key_id)
    console.print(f"Deleted access key {key_id} of {user}.")


# Groups ----------------------------------------------------------------------------------------


@groups_app.command("create")
def create_group(
    name: str,
    path: Annotated[str | None, typer.Option(help="IAM path, e.g. /team/.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Create a group; its policies apply to every user in it."""
    group = aws_client("iam").create_group(GroupName=name, **({"Path": path} if path else {}))[
        "Group"
    ]
    if as_json:
        print_json(plain(group))
        return
    console.print(f"Created group {name}: {group['Arn']}", soft_wrap=True, highlight=False)


@groups_app.command("list")
def list_groups(as_json: JsonOption = False) -> None:
    """List groups."""
    groups = aws_client("iam").list_groups()["Groups"]
    if as_json:
        print_json(plain(groups))
        return
    table = fold_table("name", "arn", "created")
    for g in groups:
        table.add_row(g["GroupName"], g["Arn"], when(g["CreateDate"]))
    console.print(table)


@groups_app.command("describe")
def describe_group(name: str, as_json: JsonOption = False) -> None:
    """Show a group: its users and policies."""
    iam = aws_client("iam")
    info = iam.get_group(GroupName=name)
    info["AttachedPolicies"] = iam.list_attached_group_policies(GroupName=name)["AttachedPolicies"]
    info["InlinePolicies"] = iam.list_group_policies(GroupName=name)["PolicyNames"]
    info.pop("IsTruncated", None)
    if as_json:
        print_json(plain(info))
        return
    table = kv_table()
    table.add_row("name", info["Group"]["GroupName"])
    table.add_row("arn", info["Group"]["Arn"])
    table.add_row("users", ", ".join(u["UserName"] for u in info["Users"]) or "-")
    table.add_row("attached", "\n".join(p["PolicyArn"] for p in info["AttachedPolicies"]) or "-")
    table.add_row("inline", ", ".join(info["InlinePolicies"]) or "-")
    console.print(table)


@groups_app.command("add-user")
def add_user_to_group(group: str, user: str) -> None:
    """Put USER in GROUP."""
    aws_client("iam").add_user_to_group(GroupName=group, UserName=user)
    console.print(f"Added {user} to group {group}.")


@groups_app.command("remove-user")
def remove_user_from_group(group: str, user: str) -> None:
    """Take USER out of GROUP."""
    aws_client("iam").remove_user_from_group(GroupName=group, UserName=user)
    console.print(f"Removed {user} from group {group}.")


@groups_app.command("delete")
def delete_group(
    name: str,
    force: Annotated[
        bool,
        typer.Option("--force", help="First remove its users and policies."),
    ] = False,
) -> None:
    """Delete a group (refused while it has users or policies, unless --force)."""
    iam = aws_client("iam")
    if force:
        _strip_principal(iam, "group", name)
        for user in iam.get_group(GroupName=name)["Users"]:
            iam.remove_user_from_group(GroupName=name, UserName=user["UserName"])
    iam.delete_group(GroupName=name)
    console.print(f"Deleted group {name}.")


# Roles -------------------------------------------------------------------------------------------


def trust_policy(services: list[str], principals: list[str]) -> dict[str, Any]:
    """A trust policy letting these services and principals call sts:AssumeRole."""
    statements: list[dict[str, Any]] = []
    full = [s if "." in s else f"{s}.amazonaws.com" for s in services]
    for key, values in (("Service", full), ("AWS", principals)):
        if values:
            statements.append(
                {
                    "Effect": "Allow",
                    "Principal": {key: values[0] if len(values) == 1 else values},
                    "Action": "sts:AssumeRole",
                }
            )
    return {"Version": POLICY_VERSION, "Statement": statements}


def _trusted(document: Any) -> str:
    """Who a trust policy lets in, in one line."""
    doc = _document(document)
    names: list[str] = []
    if isinstance(doc, dict):
        statements = doc.get("Statement") or []
        for statement in statements if isinstance(statements, list) else [statements]:
            if not isinstance(statement, dict) or statement.get("Effect") != "Allow":
                continue
            principal = statement.get("Principal")
            if principal == "*":
                names.append("*")
            elif isinstance(principal, dict):
                for values in principal.values():
                    names += values if isinstance(values, list) else [values]
    return ", ".join(names) or "-"


@roles_app.command("create")
def create_role(
    name: str,
    trust_service: Annotated[
        list[str] | None,
        typer.Option(
            "--trust-service",
            help="A service that may assume it, e.g. lambda.amazonaws.com or "
            "sagemaker.amazonaws.com (repeatable).",
        ),
    ] = None,
    trust_principal: Annotated[
        list[str] | None,
        typer.Option(
            "--trust-principal",
            help="A user/role ARN (or arn:aws:iam::ACCOUNT:root) that may assume it (repeatable).",
        ),
    ] = None,
    trust_policy_file: Annotated[
        Path | None,
        typer.Option("--trust-policy", help="A trust policy JSON file instead of the above."),
    ] = None,
    description: Annotated[str, typer.Option(help="What the role is for.")] = "",
    max_session: Annotated[
        int, typer.Option("--max-session-duration", help="Longest session, in seconds.")
    ] = 3600,
    boundary: Annotated[
        str | None,
        typer.Option("--boundary", help="A managed policy (ARN or name) as permissions boundary."),
    ] = None,
    path: Annotated[str | None, typer.Option(help="IAM path, e.g. /service-role/.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Create a role trusted by services (--trust-service) and/or principals (--trust-principal)."""
    services, principals = trust_service or [], trust_principal or []
    if trust_policy_file is not None:
        if services or principals:
            raise ValidationError(
                "Give --trust-policy or --trust-service/--trust-principal, not both."
            )
        document = _read_document(trust_policy_file, "--trust-policy")
    elif services or principals:
        document = json.dumps(trust_policy(services, principals))
    else:
        raise ValidationError(
            "Say who may assume the role.",
            hint="--trust-service lambda.amazonaws.com, --trust-principal ARN or "
            "--trust-policy FILE.",
        )
    iam = aws_client("iam")
    extra: dict[str, Any] = {}
    if path:
        extra["Path"] = path
    if boundary:
        extra["PermissionsBoundary"] = resolve_policy_arn(iam, boundary)
    role = iam.create_role(
        RoleName=name,
        AssumeRolePolicyDocument=document,
        Description=description,
        MaxSessionDuration=max_session,
        **extra,
    )["Role"]
    if as_json:
        print_json(plain(role))
        return
    console.print(f"Created role {name}: {role['Arn']}", soft_wrap=True, highlight=False)
    console.print(
        f"  trusted by: {_trusted(role['AssumeRolePolicyDocument'])}",
        soft_wrap=True,
        highlight=False,
    )


@roles_app.command("list")
def list_roles(as_json: JsonOption = False) -> None:
    """List roles and who may assume them."""
    roles = aws_client("iam").list_roles()["Roles"]
    if as_json:
        print_json(plain(roles))
        return
    table = fold_table("name", "arn", "trusted by", "created", "last used")
    for r in roles:
        table.add_row(
            r["RoleName"],
            r["Arn"],
            _trusted(r.get("AssumeRolePolicyDocument")),
            when(r["CreateDate"]),
            when((r.get("RoleLastUsed") or {}).get("LastUsedDate")),
        )
    console.print(table)


@roles_app.command("describe")
def describe_role(name: str, as_json: JsonOption = False) -> None:
    """Show a role: trust policy, attached and inline policies, boundary, last use."""
    iam = aws_client("iam")
    role = iam.get_role(RoleName=name)["Role"]
    role["AssumeRolePolicyDocument"] = _document(role.get("AssumeRolePolicyDocument"))
    attached = iam.list_attached_role_policies(RoleName=name)["AttachedPolicies"]
    inline = {
        policy: _document(iam.get_role_policy(RoleName=name, PolicyName=policy)["PolicyDocument"])
        for policy in iam.list_role_policies(RoleName=name)["PolicyNames"]
    }
    if as_json:
        print_json(plain({"Role": role, "AttachedPolicies": attached, "InlinePolicies": inline}))
        return
    table = kv_table()
    table.add_row("name", role["RoleName"])
    table.add_row("arn", role["Arn"])
    if role.get("Description"):
        table.add_row("description", role["Description"])
    table.add_row("created", when(role["CreateDate"]))
    table.add_row("max session", f"{role.get('MaxSessionDuration', 3600)} s")
    table.add_row("trusted by", _trusted(role["AssumeRolePolicyDocument"]))
    table.add_row("attached", "\n".join(p["PolicyArn"] for p in attached) or "-")
    table.add_row("inline", ", ".join(inline) or "-")
    boundary = (role.get("PermissionsBoundary") or {}).get("PermissionsBoundaryArn")
    table.add_row("boundary", boundary or "none")
    last = role.get("RoleLastUsed") or {}
    table.add_row(
        "last used",
        f"{when(last['LastUsedDate'])} ({last.get('Region', '-')})"
        if last.get("LastUsedDate")
        else "never",
    )
    console.print(table)
    console.print("\n[bold]trust policy[/]")
    console.print(
        _json_text(role["AssumeRolePolicyDocument"]), soft_wrap=True, highlight=False, markup=False
    )
    for policy, document in inline.items():
        console.print(f"\n[bold]inline policy {escape(policy)}[/]")
        console.print(_json_text(document), soft_wrap=True, highlight=False, markup=False)


@roles_app.command("delete")
def delete_role(
    name: str,
    force: Annotated[
        bool, typer.Option("--force", help="First detach and delete its policies.")
    ] = False,
) -> None:
    """Delete a role (refused while it has policies, unless --force)."""
    iam = aws_client("iam")
    if force:
        _strip_principal(iam, "role", name)
    iam.delete_role(RoleName=name)
    console.print(f"Deleted role {name}.")


# Managed policies ---------------------------------------------------------------------------


@policies_app.command("create")
def create_policy(
    name: str,
    document: Annotated[
        Path, typer.Option("--document", help="The policy JSON file (- for standard input).")
    ],
    description: Annotated[str, typer.Option(help="What the policy is for.")] = "",
    path: Annotated[str | None, typer.Option(help="IAM path, e.g. /team/.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Create a customer managed policy."""
    text = _read_document(document)
    policy = aws_client("iam").create_policy(
        PolicyName=name,
        PolicyDocument=text,
        Description=description,
        **({"Path": path} if path else {}),
    )["Policy"]
    if as_json:
        print_json(plain(policy))
        return
    console.print(f"Created policy {name}: {policy['Arn']}", soft_wrap=True, highlight=False)


@policies_app.command("list")
def list_policies(
    scope: Annotated[
        Scope, typer.Option(help="all, aws (built-in) or local (this account's).")
    ] = Scope.all,
    attached: Annotated[
        bool, typer.Option("--attached", help="Only policies attached to something.")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """List managed policies."""
    wanted = {"all": "All", "aws": "AWS", "local": "Local"}[scope.value]
    policies = aws_client("iam").list_policies(Scope=wanted, OnlyAttached=attached)["Policies"]
    if as_json:
        print_json(plain(policies))
        return
    table = fold_table("name", "arn", "kind", "attached", "version")
    for p in policies:
        builtin = p["Arn"].startswith("arn:aws:iam::aws:")
        table.add_row(
            p["PolicyName"],
            p["Arn"],
            "built-in" if builtin else "customer",
            str(p.get("AttachmentCount", 0)),
            p.get("DefaultVersionId", "-"),
        )
    console.print(table)


@policies_app.command("describe")
def describe_policy(policy: str, as_json: JsonOption = False) -> None:
    """Show a managed policy (ARN or name) and its default version's document."""
    iam = aws_client("iam")
    arn = resolve_policy_arn(iam, policy)
    info = iam.get_policy(PolicyArn=arn)["Policy"]
    version = iam.get_policy_version(PolicyArn=arn, VersionId=info["DefaultVersionId"])
    document = _document(version["PolicyVersion"]["Document"])
    entities = iam.list_entities_for_policy(PolicyArn=arn)
    users = [e["UserName"] for e in entities.get("PolicyUsers", [])]
    groups = [e["GroupName"] for e in entities.get("PolicyGroups", [])]
    roles = [e["RoleName"] for e in entities.get("PolicyRoles", [])]
    if as_json:
        print_json(
            plain(
                {
                    "Policy": info,
                    "Document": document,
                    "Entities": {"Users": users, "Groups": groups, "Roles": roles},
                }
            )
        )
        return
    table = kv_table()
    table.add_row("name", info["PolicyName"])
    table.add_row("arn", info["Arn"])
    if info.get("Description"):
        table.add_row("description", info["Description"])
    table.add_row("version", info["DefaultVersionId"])
    table.add_row("updated", when(info.get("UpdateDate")))
    attached = [f"user/{u}" for u in users] + [f"group/{g}" for g in groups]
    attached += [f"role/{r}" for r in roles]
    table.add_row("attached to", ", ".join(attached) or "-")
    console.print(table)
    console.print()
    console.print(_json_text(document), soft_wrap=True, highlight=False, markup=False)


@policies_app.command("delete")
def delete_policy(policy: str) -> None:
    """Delete a customer managed policy (ARN or name; refused while attached)."""
    iam = aws_client("iam")
    arn = resolve_policy_arn(iam, policy)
    iam.delete_policy(PolicyArn=arn)
    console.print(f"Deleted policy {arn}.", soft_wrap=True, highlight=False)


# Attaching and inline policies -----------------------------------------------------------

UserOption = Annotated[str | None, typer.Option("--user", help="A user's name.")]
RoleOption = Annotated[str | None, typer.Option("--role", help="A role's name.")]
GroupOption = Annotated[str | None, typer.Option("--group", help="A group's name.")]


def _change_attachment(
    verb: Literal["attach", "detach"],
    policy: str,
    user: str | None,
    role: str | None,
    group: str | None,
) -> None:
    kind, name = _target(user, role, group)
    iam = aws_client("iam")
    arn = resolve_policy_arn(iam, policy)
    getattr(iam, f"{verb}_{kind}_policy")(**{f"{_noun(kind)}Name": name, "PolicyArn": arn})
    done = f"Attached {arn} to" if verb == "attach" else f"Detached {arn} from"
    console.print(f"{done} {kind} {name}.", soft_wrap=True, highlight=False)


PolicyArgument = Annotated[str, typer.Argument(help="ARN or name, e.g. AmazonSageMakerFullAccess.")]


@app.command("attach")
def attach(
    policy: PolicyArgument,
    user: UserOption = None,
    role: RoleOption = None,
    group: GroupOption = None,
) -> None:
    """Attach a managed policy to a user, role or group."""
    _change_attachment("attach", policy, user, role, group)


@app.command("detach")
def detach(
    policy: PolicyArgument,
    user: UserOption = None,
    role: RoleOption = None,
    group: GroupOption = None,
) -> None:
    """Detach a managed policy from a user, role or group."""
    _change_attachment("detach", policy, user, role, group)


@app.command("put-inline")
def put_inline(
    policy_name: Annotated[str, typer.Argument(help="The inline policy's name.")],
    document: Annotated[
        Path, typer.Option("--document", help="The policy JSON file (- for standard input).")
    ],
    user: UserOption = None,
    role: RoleOption = None,
    group: GroupOption = None,
) -> None:
    """Add (or replace) an inline policy of a user, role or group."""
    kind, name = _target(user, role, group)
    text = _read_document(document)
    getattr(aws_client("iam"), f"put_{kind}_policy")(
        **{f"{_noun(kind)}Name": name, "PolicyName": policy_name, "PolicyDocument": text}
    )
    console.print(f"Put inline policy {policy_name} on {kind} {name}.")


@app.command("delete-inline")
def delete_inline(
    policy_name: Annotated[str, typer.Argument(help="The inline policy's name.")],
    user: UserOption = None,
    role: RoleOption = None,
    group: GroupOption = None,
) -> None:
    """Delete an inline policy of a user, role or group."""
    kind, name = _target(user, role, group)
    getattr(aws_client("iam"), f"delete_{kind}_policy")(
        **{f"{_noun(kind)}Name": name, "PolicyName": policy_name}
    )
    console.print(f"Deleted inline policy {policy_name} of {kind} {name}.")


# MFA -------------------------------------------------------------------------------------------


def _mfa_seed(value: Any) -> str:
    """The base32 seed from the raw ``Base32StringSeed`` text.

    AWS (and kennel) send the seed base64-encoded, as the blob it is on the wire; older
    kennel servers sent the base32 text itself. Random bytes decoding to base32 is next
    to impossible, so the base64 reading is tried first.
    """
    text = value.decode() if isinstance(value, bytes) else str(value)
    try:
        decoded = base64.b64decode(text, validate=True).decode("ascii")
    except (binascii.Error, UnicodeDecodeError):
        decoded = ""
    if decoded and _BASE32.fullmatch(decoded):
        return decoded
    return text


def otpauth_uri(seed: str, name: str, account: str) -> str:
    """The ``otpauth://`` URI an authenticator app reads (what the QR code holds)."""
    issuer = quote(f"kennel {account}", safe="")
    return f"otpauth://totp/{issuer}:{quote(name, safe='')}?secret={seed}&issuer={issuer}"


@mfa_app.command("create")
def create_mfa(name: str, as_json: JsonOption = False) -> None:
    """Create a virtual MFA device; prints its seed and otpauth:// URI (for an authenticator)."""
    # Raw blobs: the seed's encoding is checked here, so a server that sends the QR field
    # as text cannot make the answer (and with it the only copy of the seed) unreadable.
    iam = aws_client("iam", raw_blobs=True)
    device = iam.create_virtual_mfa_device(VirtualMFADeviceName=name)["VirtualMFADevice"]
    serial = device["SerialNumber"]
    seed = _mfa_seed(device.get("Base32StringSeed", ""))
    qr = str(device.get("QRCodePNG") or "")
    uri = qr if qr.startswith("otpauth://") else otpauth_uri(seed, name, serial.split(":")[4])
    if as_json:
        print_json({"SerialNumber": serial, "Base32StringSeed": seed, "OtpauthUri": uri})
        return
    table = kv_table()
    table.add_row("serial", serial)
    table.add_row("seed", seed)
    table.add_row("uri", uri)
    console.print(table)
    err_console.print(
        "Add it to an authenticator app (the seed or the URI), then enable it with two "
        f"consecutive codes: kennel iam mfa enable USER {serial} CODE1 CODE2",
        soft_wrap=True,
        highlight=False,
    )


@mfa_app.command("enable")
def enable_mfa(user: str, serial: str, code1: str, code2: str) -> None:
    """Assign a virtual MFA device to USER, proven by two consecutive codes."""
    aws_client("iam").enable_mfa_device(
        UserName=user, SerialNumber=serial, AuthenticationCode1=code1, AuthenticationCode2=code2
    )
    console.print(f"MFA device {serial} is enabled for {user}.", soft_wrap=True, highlight=False)


@mfa_app.command("list")
def list_mfa(as_json: JsonOption = False) -> None:
    """List virtual MFA devices and whom each is assigned to."""
    devices = aws_client("iam").list_virtual_mfa_devices()["VirtualMFADevices"]
    if as_json:
        print_json(plain(devices))
        return
    table = fold_table("serial", "user", "enabled")
    for d in devices:
        table.add_row(
            d["SerialNumber"],
            (d.get("User") or {}).get("UserName", "-"),
            when(d.get("EnableDate")),
        )
    console.print(table)


# Password policy -------------------------------------------------------------------------------

KENNEL_PASSWORD_RULE = (
    f"console passwords need {MIN_PASSWORD_LENGTH} to {MAX_PASSWORD_LENGTH} characters of "
    "any kind, never expire, and users change their own only where a policy allows "
    "iam:ChangePassword."
)
"""What applies without a password policy (kennel's rule, not AWS's 3-of-4 default)."""


def _account_password_policy(iam: AwsClient) -> dict[str, Any] | None:
    try:
        return dict(iam.get_account_password_policy()["PasswordPolicy"])
    except KennelError as error:
        if error.aws_code == "NoSuchEntity":
            return None
        raise


def _yes_no(value: Any) -> str:
    return "yes" if value else "no"


def _show_password_policy(policy: dict[str, Any]) -> None:
    table = kv_table()
    table.add_row("minimum length", str(policy["MinimumPasswordLength"]))
    table.add_row("uppercase letter", _yes_no(policy["RequireUppercaseCharacters"]))
    table.add_row("lowercase letter", _yes_no(policy["RequireLowercaseCharacters"]))
    table.add_row("number", _yes_no(policy["RequireNumbers"]))
    table.add_row("symbol", _yes_no(policy["RequireSymbols"]) + f"  ({SYMBOLS_TEXT})")
    age = policy.get("MaxPasswordAge")
    expiry = f"after {age} days" if age else "never"
    if age and policy.get("HardExpiry"):
        expiry += ", then only an administrator can set a new one (hard expiry)"
    elif age:
        expiry += ", then the user chooses a new one at sign-in"
    table.add_row("expires", expiry)
    reuse = policy.get("PasswordReusePrevention")
    table.add_row("reuse", f"not any of the last {reuse}" if reuse else "allowed")
    table.add_row("users change own", _yes_no(policy["AllowUsersToChangePassword"]))
    console.print(table)


@password_policy_app.callback()
def password_policy(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """Show the account's password policy (iam get-account-password-policy)."""
    if ctx.invoked_subcommand is not None:
        return
    policy = _account_password_policy(aws_client("iam"))
    if as_json:
        print_json(plain(policy))
        return
    if policy is None:
        console.print(
            f"No password policy is set: {KENNEL_PASSWORD_RULE}", soft_wrap=True, highlight=False
        )
        console.print("Set one with: kennel iam password-policy set --help", style="dim")
        return
    _show_password_policy(policy)


@password_policy_app.command("set")
def set_password_policy(
    min_length: Annotated[
        int | None,
        typer.Option(
            help=f"Fewest characters ({DEFAULT_MINIMUM_LENGTH} to {MAX_PASSWORD_LENGTH}; "
            f"{DEFAULT_MINIMUM_LENGTH} when left out)."
        ),
    ] = None,
    require_symbols: Annotated[
        bool, typer.Option(help=f"At least one symbol: {SYMBOLS_TEXT}")
    ] = False,
    require_numbers: Annotated[bool, typer.Option(help="At least one digit (0-9).")] = False,
    require_uppercase: Annotated[
        bool, typer.Option(help="At least one uppercase letter (A-Z).")
    ] = False,
    require_lowercase: Annotated[
        bool, typer.Option(help="At least one lowercase letter (a-z).")
    ] = False,
    max_age: Annotated[
        int | None,
        typer.Option(
            metavar="DAYS",
            help=f"Passwords expire after DAYS (1 to {MAX_PASSWORD_AGE_DAYS}); never when "
            "left out.",
        ),
    ] = None,
    reuse_prevention: Annotated[
        int | None,
        typer.Option(
            metavar="N",
            help=f"A new password may not be any of the last N (1 to {MAX_REUSE_PREVENTION}).",
        ),
    ] = None,
    hard_expiry: Annotated[
        bool,
        typer.Option(
            help="An expired password can only be reset by an administrator "
            "(kennel iam users set-password)."
        ),
    ] = False,
    allow_users_to_change: Annotated[
        bool,
        typer.Option(
            help="Every user may change their own password, without a policy allowing "
            "iam:ChangePassword."
        ),
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Set the password policy (iam update-account-password-policy). It replaces the whole
    policy, as on AWS: an option left out takes its default, not its present value."""
    numbers = {
        "MinimumPasswordLength": min_length,
        "MaxPasswordAge": max_age,
        "PasswordReusePrevention": reuse_prevention,
    }
    iam = aws_client("iam")
    iam.update_account_password_policy(
        RequireSymbols=require_symbols,
        RequireNumbers=require_numbers,
        RequireUppercaseCharacters=require_uppercase,
        RequireLowercaseCharacters=require_lowercase,
        AllowUsersToChangePassword=allow_users_to_change,
        HardExpiry=hard_expiry,
        **{name: value for name, value in numbers.items() if value is not None},
    )
    policy = _account_password_policy(iam)
    if as_json:
        print_json(plain(policy))
        return
    console.print("Set the account's password policy:")
    if policy is not None:
        _show_password_policy(policy)


@password_policy_app.command("delete")
def delete_password_policy() -> None:
    """Remove the password policy: kennel's default rule applies again."""
    aws_client("iam").delete_account_password_policy()
    console.print("Deleted the account's password policy.")
    console.print(
        f"kennel's own rule applies again: {KENNEL_PASSWORD_RULE}",
        style="dim",
        soft_wrap=True,
        highlight=False,
    )


# STS -------------------------------------------------------------------------------------------


@app.command("assume-role")
def assume_role(
    role: Annotated[str, typer.Argument(help="The role's ARN (or its name in this account).")],
    session_name: Annotated[str, typer.Option("--session-name", help="Names the session.")],
    duration: Annotated[int, typer.Option(help="Session length in seconds.")] = 3600,
    mfa_serial: Annotated[
        str | None, typer.Option("--mfa-serial", help="Your MFA device's serial (ARN).")
    ] = None,
    code: Annotated[str | None, typer.Option(help="The MFA device's current code.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Assume a role; prints `export AWS_...` lines (eval "$(kennel iam assume-role ...)")."""
    if (mfa_serial is None) != (code is None):
        raise ValidationError("--mfa-serial and --code go together.")
    arn = role
    if not role.startswith("arn:"):
        arn = aws_client("iam").get_role(RoleName=role)["Role"]["Arn"]
    extra: dict[str, Any] = {}
    if mfa_serial is not None:
        extra = {"SerialNumber": mfa_serial, "TokenCode": code}
    answer = aws_client("sts").assume_role(
        RoleArn=arn, RoleSessionName=session_name, DurationSeconds=duration, **extra
    )
    creds = answer["Credentials"]
    if as_json:
        print_json(plain(answer))
        return
    for name, key in (
        ("AWS_ACCESS_KEY_ID", "AccessKeyId"),
        ("AWS_SECRET_ACCESS_KEY", "SecretAccessKey"),
        ("AWS_SESSION_TOKEN", "SessionToken"),
    ):
        sys.stdout.write(f"export {name}={shlex.quote(str(creds[key]))}\n")
    assumed = (answer.get("AssumedRoleUser") or {}).get("Arn", arn)
    err_console.print(
        f"Session {assumed} until {when(creds.get('Expiration'))} UTC.",
        soft_wrap=True,
        highlight=False,
    )


@app.command("change-password")
def change_password(
    old_password: Annotated[
        str | None,
        typer.Option(help="The current password (prompted for, hidden, when left out)."),
    ] = None,
    new_password: Annotated[
        str | None,
        typer.Option(help="The new password (prompted for twice, hidden, when left out)."),
    ] = None,
) -> None:
    """Change your own console password (iam change-password), as the CLI's credentials' user.

    It needs iam:ChangePassword on your own user (the IAMUserChangePassword policy grants it)
    and ends a reset an administrator required with `kennel iam users set-password`."""
    if old_password is None:
        old_password = typer.prompt("Old password", hide_input=True)
    if new_password is None:
        new_password = typer.prompt("New password", hide_input=True, confirmation_prompt=True)
    aws_client("iam").change_password(OldPassword=old_password, NewPassword=new_password)
    console.print("Changed your console password.")


@app.command("whoami")
def whoami(as_json: JsonOption = False) -> None:
    """Who the CLI's credentials are (sts get-caller-identity)."""
    me = aws_client("sts").get_caller_identity()
    if as_json:
        print_json(plain(me))
        return
    table = kv_table()
    table.add_row("arn", me["Arn"])
    table.add_row("account", me["Account"])
    table.add_row("user id", me["UserId"])
    console.print(table)


# Analysis: simulate, explain, access log --------------------------------------------------


def _decision_text(d: dict[str, Any]) -> str:
    if d["allowed"]:
        return "[green]allowed[/]"
    reason = d.get("reason")
    if reason == "explicit-deny":
        return "[bold red]explicit deny[/]"
    if d.get("blocked_by_boundary"):
        return "[red]denied by boundary[/]"
    if reason == "session-policy":
        return "[red]denied by session policy[/]"
    return "[red]implicit deny[/]"


def _statement_text(statement: dict[str, Any] | None) -> str:
    if not statement:
        return "-"
    where = statement.get("sid") or f"#{statement.get('index')}"
    return f"{statement.get('policy') or '<unnamed>'}:{where} ({statement.get('source')})"


@app.command("simulate")
def simulate(
    principal: Annotated[str, typer.Option("--principal", help="The user's or role's ARN.")],
    action: Annotated[
        list[str],
        typer.Option("--action", "-a", help="e.g. sagemaker:InvokeEndpoint (repeatable)."),
    ],
    resource: Annotated[
        list[str] | None,
        typer.Option("--resource", "-r", help="A resource ARN (repeatable; default *)."),
    ] = None,
    context: Annotated[
        list[str] | None,
        typer.Option("--context", "-c", help="A condition key, e.g. aws:SourceIp=10.0.0.1."),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Would PRINCIPAL be allowed ACTION on RESOURCE? (Exits 0 either way.)"""
    body = {
        "principal": principal,
        "actions": action,
        "resources": resource or ["*"],
        "context": pairs(context, "--context"),
    }
    with client() as api:
        results = api.post(f"{IAM_API}/simulate", body)["results"]
    if as_json:
        print_json(results)
        return
    table = fold_table("action", "resource", "decision", "deciding statement")
    for r in results:
        table.add_row(
            r["action"],
            r["resource"],
            _decision_text(r),
            escape(_statement_text(r.get("statement"))),
        )
    console.print(table)
    for r in results:
        if r.get("message"):
            console.print(r["message"], style="red", soft_wrap=True, highlight=False, markup=False)


def _advice(d: dict[str, Any]) -> list[str]:
    """What to change so the request is allowed, as lines of plain text."""
    action, resource, principal = d["action"], d["resource"], d["principal"]
    statement = d.get("statement") or {}
    target = _principal_of(principal)
    where = f"{target[0]} {target[1]}" if target else principal
    message = d.get("message") or ""
    if d["allowed"]:
        return []
    if d.get("reason") == "explicit-deny":
        policy = statement.get("policy") or "<unnamed>"
        sid = f"Sid {statement['sid']!r}" if statement.get("sid") else "statement"
        source = {
            "identity": f"the identity-based policy {policy} of {where}",
            "resource": f"the resource-based policy of {resource}",
            "boundary": f"the permissions boundary {policy} of {where}",
        }.get(str(statement.get("source")), f"policy {policy}")
        return [
            f"An explicit Deny wins over any Allow: {sid} (index {statement.get('index')}) "
            f"of {source} denies {action} on this resource.",
            "To allow it, change that statement: remove the action from it, narrow its "
            "Resource, or add a Condition that excludes this request.",
        ]
    if "trust policy" in message:
        trust = {
            "Effect": "Allow",
            "Principal": {"AWS": principal},
            "Action": "sts:AssumeRole",
        }
        return [
            f"The trust policy of {resource} does not let {principal} assume it. "
            "Add this statement to the role's trust policy:",
            _json_text(trust),
        ]
    if d.get("reason") == "session-policy":
        return [
            "The role allows it, but the session policy given to AssumeRole does not. "
            "Assume the role again with a session policy that allows it (or none)."
        ]
    allow = {"Effect": "Allow", "Action": action, "Resource": resource}
    if d.get("blocked_by_boundary"):
        return [
            f"An identity-based policy allows it, but the permissions boundary of {where} "
            "does not. Add this statement to the boundary policy (or change the boundary):",
            _json_text(allow),
        ]
    lines = [
        f"No statement allows this. The minimal statement to add to a policy of {where}:",
        _json_text(allow),
    ]
    if target:
        service, _, verb = action.partition(":")
        name = re.sub(r"[^A-Za-z0-9+=,.@_-]", "", f"allow-{service}-{verb}")[:128]
        lines.append(
            "e.g. save it as the Statement of a policy document (allow.json) and run: "
            f"kennel iam put-inline --{target[0]} {target[1]} {name} --document allow.json"
        )
    return lines


def _show_decision(d: dict[str, Any]) -> None:
    table = kv_table()
    table.add_row("request", d.get("request_id") or "-")
    if d.get("time"):
        table.add_row("time", when(d["time"]) + " UTC")
    table.add_row("principal", d["principal"])
    table.add_row("action", d["action"])
    table.add_row("resource", d["resource"])
    table.add_row("decision", _decision_text(d))
    table.add_row("reason", d.get("reason") or "-")
    statement = d.get("statement") or {}
    if statement:
        where = f"sid {statement.get('sid')}" if statement.get("sid") else "no sid"
        table.add_row(
            "statement",
            escape(
                f"policy {statement.get('policy') or '<unnamed>'}, {where}, "
                f"index {statement.get('index')}, source {statement.get('source')}"
            ),
        )
    else:
        table.add_row("statement", "none: no statement allows this")
    if d.get("message"):
        table.add_row("message", escape(d["message"]))
    context = d.get("context") or {}
    table.add_row(
        "context",
        escape("\n".join(f"{k} = {_context_value(v)}" for k, v in sorted(context.items()))) or "-",
    )
    style = "green" if d["allowed"] else "red"
    title = "allowed" if d["allowed"] else "denied"
    console.print(
        Panel(table, title=f"[{style}]{title}[/]", title_align="left", border_style=style)
    )
    for line in _advice(d):
        console.print(line, soft_wrap=True, highlight=False, markup=False)


def _context_value(value: Any) -> str:
    return ", ".join(map(str, value)) if isinstance(value, list) else str(value)


@app.command("explain")
def explain(
    request_id: Annotated[str, typer.Argument(help="From a denial's hint or x-amzn-RequestId.")],
    as_json: JsonOption = False,
) -> None:
    """Why a request was allowed or denied: the deciding statement and what to change."""
    with client() as api:
        answer = api.get(f"{IAM_API}/access-log/{quote(request_id, safe='')}")
    if as_json:
        print_json(answer)
        return
    for decision in answer["decisions"]:
        _show_decision(decision)


@app.command("access-log")
def access_log(
    principal: Annotated[
        str | None, typer.Option("--principal", help="Only this user's or role's calls.")
    ] = None,
    since: Annotated[str, typer.Option(help="How far back: 30s, 15m, 1h, 7d, 90d.")] = "1h",
    denied: Annotated[bool, typer.Option("--denied", help="Only denied calls.")] = False,
    limit: Annotated[int, typer.Option(help="At most this many (the latest).")] = 200,
    as_json: JsonOption = False,
) -> None:
    """Authorization decisions, oldest first."""
    params: dict[str, Any] = {
        "since_seconds": parse_duration(since),
        "limit": limit,
        "principal": principal,
    }
    if denied:
        params["denied"] = "true"
    with client() as api:
        entries = api.get(f"{IAM_API}/access-log", params=params)["entries"]
    if as_json:
        print_json(entries)
        return
    if not entries:
        console.print(f"No {'denied ' if denied else ''}calls logged in the last {since}.")
        return
    for e in entries:
        decision = "[green]allowed[/]" if e["allowed"] else "[red]denied [/]"
        console.print(
            f"{when(e['time'])}  {decision}  {escape(e['principal'])}  {escape(e['action'])}  "
            f"{escape(e['resource'])}  [dim]{escape(e['request_id'])}[/]",
            soft_wrap=True,
            highlight=False,
        )


# Analysis: generate-policy, unused, audit ------------------------------------------------


@app.command("generate-policy")
def generate_policy(
    principal: Annotated[str, typer.Option("--principal", help="The user's or role's ARN.")],
    since: Annotated[str, typer.Option(help="Calls since: 30s, 15m, 1h, 7d, 90d.")] = "90d",
    include_denied: Annotated[
        bool, typer.Option("--include-denied", help="Also grant what was denied.")
    ] = False,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write the policy here, not stdout.")
    ] = None,
    create_policy_name: Annotated[
        str | None,
        typer.Option("--create-policy", help="Also create it as a customer managed policy."),
    ] = None,
) -> None:
    """A least-privilege policy from what PRINCIPAL actually called (the access log)."""
    body = {
        "principal": principal,
        "since_seconds": parse_duration(since),
        "include_denied": include_denied,
    }
    with client() as api:
        answer = api.post(f"{IAM_API}/generate-policy", body)
    policy = answer["policy"]
    text = _json_text(policy) + "\n"
    if output is not None:
        output.write_text(text)
    else:
        sys.stdout.write(text)
    statements = len(policy.get("Statement") or [])
    err_console.print(
        f"{statements} statement{'s' if statements != 1 else ''} from {answer['calls']} "
        f"logged call{'s' if answer['calls'] != 1 else ''} of {principal} in the last {since}"
        + (f", written to {output}" if output is not None else "")
        + ".",
        soft_wrap=True,
        highlight=False,
    )
    if create_policy_name is not None:
        made = aws_client("iam").create_policy(
            PolicyName=create_policy_name,
            PolicyDocument=json.dumps(policy),
            Description=f"Generated by kennel from the calls of {principal}.",
        )["Policy"]
        if output is not None:
            console.print(made["Arn"], soft_wrap=True, highlight=False)
        else:
            err_console.print(f"Created policy {made['Arn']}", soft_wrap=True, highlight=False)


@app.command("unused")
def unused(
    principal: Annotated[str, typer.Option("--principal", help="The user's or role's ARN.")],
    since: Annotated[str, typer.Option(help="Calls since: 30s, 15m, 1h, 7d, 90d.")] = "90d",
    as_json: JsonOption = False,
) -> None:
    """Granted permissions PRINCIPAL has not used (candidates to remove)."""
    with client() as api:
        answer = api.get(
            f"{IAM_API}/unused",
            params={"principal": principal, "since_seconds": parse_duration(since)},
        )
    if as_json:
        print_json(answer)
        return
    found = answer["unused"]
    err_console.print(
        f"{answer['calls']} logged calls of {principal} in the last {since}.",
        soft_wrap=True,
        highlight=False,
    )
    if not found:
        console.print("Every granted permission was used.")
        return
    table = fold_table("policy / statement", "unused actions")
    for u in found:
        where = u.get("sid") or f"#{u['statement_index']}"
        used = "\n[dim]used: " + escape(", ".join(u["used"])) + "[/]" if u["used"] else ""
        table.add_row(
            escape(f"{u['policy'] or '-'}\n{where}"),
            escape("\n".join(u["actions"])) + used,
        )
    console.print(table)


@app.command("audit")
def run_audit(
    stale_days: Annotated[
        int, typer.Option(help="Keys/principals unused or older than this are stale.")
    ] = 90,
    fail_on: Annotated[
        Severity | None,
        typer.Option("--fail-on", help="Exit 2 if any finding is at least this severe."),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Risky grants, stale credentials, escalation paths; most severe first."""
    with client() as api:
        findings = api.get(f"{IAM_API}/audit", params={"stale_days": stale_days})["findings"]
    findings = sorted(findings, key=lambda f: _SEVERITY_RANK.get(f["severity"], 3))
    if as_json:
        print_json(findings)
    elif not findings:
        console.print("[green]No findings.[/]")
    else:
        table = Table("severity", "principal", "finding", show_lines=True)
        table.columns[0].no_wrap = True
        table.columns[1].overflow = "fold"
        table.columns[2].overflow = "fold"
        for f in findings:
            style = _SEVERITY_STYLE.get(f["severity"], "")
            table.add_row(
                f"[{style}]{f['severity']}[/]",
                escape(f["principal"].split(":", 5)[-1]),
                f"[{style}]{escape(f['title'])}[/] [dim]({escape(f['id'])})[/]\n"
                f"{escape(f['detail'])}\n[green]fix:[/] {escape(f['fix'])}",
            )
        console.print(table)
    if fail_on is not None:
        limit = _SEVERITY_RANK[fail_on.value]
        bad = [f for f in findings if _SEVERITY_RANK.get(f["severity"], 3) <= limit]
        if bad:
            err_console.print(
                f"[red]{len(bad)} finding{'s' if len(bad) != 1 else ''} of severity "
                f"{fail_on.value} or higher (--fail-on {fail_on.value}).[/]",
                soft_wrap=True,
            )
            raise typer.Exit(2)
