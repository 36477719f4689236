"""``kennel functions``: Lambda-compatible functions, from code to invoke, logs and metrics.

Functions go through a plain boto3 ``lambda`` client pointed at the server (it speaks
Lambda's restJson API), signed with the same profile, endpoint and region as every other
command; ``--json`` prints Lambda's own shapes. Logs, asynchronous events and metrics
(CloudWatch's part on AWS) come from kennel's ``/api/v1/functions`` routes.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import re
import sys
import time
import zipfile
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from kennel._client import path_segment
from kennel._errors import KennelError, ValidationError
from kennel.cli._aws import AwsClient, aws_client, parse_duration
from kennel.cli._common import JsonOption, client, pairs
from kennel.cli._output import console, err_console, human_bytes, print_error, print_json
from kennel.functions._package import package

app = typer.Typer(
    help="Functions (Lambda-compatible): code, versions, aliases, concurrency, URLs, invoke, logs.",
    no_args_is_help=True,
)
alias_app = typer.Typer(help="Aliases: a name that points at a version.", no_args_is_help=True)
provisioned_app = typer.Typer(
    help="Provisioned concurrency: environments kept started for a version or alias.",
    no_args_is_help=True,
)
url_app = typer.Typer(help="Function URLs: call a function over plain HTTP.", no_args_is_help=True)
app.add_typer(alias_app, name="alias")
app.add_typer(provisioned_app, name="provisioned")
app.add_typer(url_app, name="url")

FUNCTIONS_API = "/api/v1/functions"
RUNTIME = "python3.11"
POLL_SECONDS = 0.5
PAGE = 1000
"""Log events fetched per request (the route allows up to 10000)."""
_SID_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")

_HINTS = {
    "ResourceNotFoundException": "See `kennel functions list`; a function's versions and "
    "aliases: `kennel functions versions {name}`, `kennel functions alias list {name}`.",
    "ResourceConflictException": "It exists already, or something else uses it: see "
    "`kennel functions describe {name}`.",
    "InvalidParameterValueException": "Fix the value the message names "
    "(`kennel functions COMMAND --help` lists the options).",
    "ValidationException": "Fix the value the message names "
    "(`kennel functions COMMAND --help` lists the options).",
    "TooManyRequestsException": "The function is at its concurrency limit: retry, or change "
    "it with `kennel functions concurrency {name} --reserved N`.",
    "PreconditionFailedException": "It changed since it was read: run the command again.",
    "ProvisionedConcurrencyConfigNotFoundException": "See `kennel functions provisioned get "
    "{name}`; add one with `kennel functions provisioned put {name} --qualifier Q --count N`.",
    "RequestTooLargeException": "Send less: a package up to 50 MB zipped, a payload up to "
    "6 MB (1 MB with --async).",
    "CodeStorageExceededException": "Delete versions you no longer need "
    "(`kennel functions delete {name} --qualifier VERSION`).",
}


class EventStatus(StrEnum):
    queued = "queued"
    running = "running"
    succeeded = "succeeded"
    failed = "failed"
    expired = "expired"


class AuthType(StrEnum):
    AWS_IAM = "AWS_IAM"
    NONE = "NONE"


# The clients ----------------------------------------------------------------------------


@contextmanager
def _hinted(name: str, hints: dict[str, str] | None = None) -> Iterator[None]:
    """A Lambda error without a hint gets one that names the next command to run."""
    try:
        yield
    except KennelError as err:
        text = (hints or {}).get(err.aws_code) or _HINTS.get(err.aws_code)
        if not err.hint and text:
            err.hint = text.format(name=name)
        raise


class LambdaClient:
    """boto3's ``lambda`` client against kennel; its errors are KennelErrors with hints.

    ``hints`` (AWS code -> text with ``{name}``) replace the general ones for a command
    whose not-found means something particular (no URL, no policy).
    """

    def __init__(self, raw: AwsClient, hints: dict[str, str] | None = None) -> None:
        self.raw = raw
        self.hints = hints

    def __getattr__(self, operation: str) -> Callable[..., dict[str, Any]]:
        call = getattr(self.raw, operation)

        def hinted(**kwargs: Any) -> dict[str, Any]:
            with _hinted(str(kwargs.get("FunctionName", "NAME")), self.hints):
                result: dict[str, Any] = call(**kwargs)
            return result

        return hinted


def _lambda(hints: dict[str, str] | None = None) -> LambdaClient:
    return LambdaClient(aws_client("lambda"), hints)


def _kennel_get(name: str, route: str, params: dict[str, Any]) -> dict[str, Any]:
    """One of kennel's own read routes (logs, events, metrics) of function ``name``."""
    with _hinted(name), client() as api:
        answer: dict[str, Any] = api.get(
            f"{FUNCTIONS_API}/{path_segment(name)}/{route}", params=params
        )
    return answer


def _listed(call: Callable[..., dict[str, Any]], key: str, **kwargs: Any) -> list[dict[str, Any]]:
    """Every page of a Lambda listing (Marker / NextMarker)."""
    items: list[dict[str, Any]] = []
    marker: str | None = None
    while True:
        page = call(**kwargs, **({"Marker": marker} if marker else {}))
        items += page.get(key) or []
        marker = page.get("NextMarker")
        if not marker:
            return items


def _qualified(qualifier: str | None) -> dict[str, str]:
    return {"Qualifier": qualifier} if qualifier else {}


# Output helpers ---------------------------------------------------------------------------


def when(value: Any) -> str:
    """Lambda's times (``2024-05-01T12:00:00.000+0000``, ISO text or epoch) as UTC text."""
    if value is None or value == "":
        return "-"
    if isinstance(value, int | float):
        value = datetime.fromtimestamp(value, UTC)
    if isinstance(value, datetime):
        moment = value.astimezone(UTC) if value.tzinfo is not None else value
        return moment.strftime("%Y-%m-%d %H:%M:%S")
    return str(value)[:19].replace("T", " ")


def fold_table(*columns: str) -> Table:
    table = Table(*columns)
    for column in table.columns:
        column.overflow = "fold"
    return table


def kv_table() -> Table:
    table = Table(show_header=False, box=None, pad_edge=False)
    table.add_column(style="bold", no_wrap=True)
    table.add_column(overflow="fold")
    return table


def _say(text: str, *, style: str | None = None) -> None:
    console.print(text, style=style, soft_wrap=True, highlight=False, markup=False)


def _next(text: str) -> None:
    err_console.print(f"Next: {text}", style="dim", soft_wrap=True, highlight=False, markup=False)


def _status_text(status: str) -> str:
    good = ("READY", "Active", "Successful", "succeeded")
    colour = "green" if status in good else "red" if status.lower() == "failed" else "yellow"
    return f"[{colour}]{escape(status)}[/]"


# Packages ---------------------------------------------------------------------------------


def _warn_missing_handler(code: bytes, handler: str) -> None:
    """AWS accepts any package; say now that the handler's module is not in it."""
    module = handler.rpartition(".")[0].replace(".", "/")
    if not module:
        return
    with zipfile.ZipFile(io.BytesIO(code)) as archive:
        names = set(archive.namelist())
    if f"{module}.py" not in names and f"{module}/__init__.py" not in names:
        err_console.print(
            f"Warning: the package has no {module}.py for handler {handler}: invocations "
            "will fail with Runtime.ImportModuleError.",
            style="yellow",
            soft_wrap=True,
            highlight=False,
            markup=False,
        )


def _read_package(path: Path) -> bytes:
    with err_console.status(f"Packing {path.name}..."):
        return package(path)


def _role_arn(role: str) -> str:
    """A role ARN as given; a bare name: that role of this account."""
    if role.startswith("arn:"):
        return role
    no_role = {
        "NoSuchEntity": "See `kennel iam roles list`; make one with `kennel iam roles create "
        "{name} --trust-service lambda.amazonaws.com`."
    }
    with _hinted(role, no_role):
        return str(aws_client("iam").get_role(RoleName=role)["Role"]["Arn"])


# Functions: create, list, describe, update, delete ------------------------------------------

CodeOption = Annotated[
    Path,
    typer.Option("--code", help="A folder (zipped on the fly), a .zip file or one .py file."),
]
EnvOption = Annotated[
    list[str] | None,
    typer.Option("--env", "-e", help="An environment variable NAME=value (repeatable)."),
]
QualifierOption = Annotated[
    str | None, typer.Option("--qualifier", "-q", help="A version or alias (default $LATEST).")
]


@app.command("create")
def create(
    name: str,
    code: CodeOption,
    handler: Annotated[str, typer.Option(help="module.function, e.g. app.handler.")],
    role: Annotated[
        str, typer.Option(help="The execution role: an ARN, or a role name of this account.")
    ],
    memory: Annotated[int | None, typer.Option(help="Memory in MB (128-10240).")] = None,
    timeout: Annotated[int | None, typer.Option(help="Timeout in seconds (1-900).")] = None,
    env: EnvOption = None,
    description: Annotated[str | None, typer.Option(help="What it is for.")] = None,
    runtime: Annotated[str, typer.Option(help="The runtime.")] = RUNTIME,
    publish: Annotated[bool, typer.Option("--publish", help="Also publish version 1.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Create a function from a folder, a .zip or a .py file."""
    zipped = _read_package(code)
    _warn_missing_handler(zipped, handler)
    body: dict[str, Any] = {
        "FunctionName": name,
        "Runtime": runtime,
        "Role": _role_arn(role),
        "Handler": handler,
        "Code": {"ZipFile": zipped},
        "Publish": publish,
    }
    if memory is not None:
        body["MemorySize"] = memory
    if timeout is not None:
        body["Timeout"] = timeout
    if description is not None:
        body["Description"] = description
    variables = pairs(env, "--env")
    if variables:
        body["Environment"] = {"Variables": variables}
    config = _lambda().create_function(**body)
    if as_json:
        print_json(config)
        return
    version = f", version {config['Version']} published" if publish else ""
    _say(
        f"Created function {name} ({config['Runtime']}, {config['Handler']}, "
        f"{config['MemorySize']} MB, {config['Timeout']} s, "
        f"{human_bytes(config['CodeSize'])} package{version}): {config['FunctionArn']}"
    )
    _next(f"kennel functions invoke {name} --payload '{{}}' --log")


@app.command("list")
def list_functions(as_json: JsonOption = False) -> None:
    """List functions."""
    functions = _listed(_lambda().list_functions, "Functions")
    if as_json:
        print_json(functions)
        return
    if not functions:
        console.print("No functions yet. Create one: kennel functions create NAME --code DIR ...")
        return
    table = fold_table("name", "runtime", "handler", "memory", "timeout", "modified", "description")
    for fn in functions:
        table.add_row(
            fn["FunctionName"],
            fn.get("Runtime", "-"),
            fn.get("Handler", "-"),
            f"{fn['MemorySize']} MB",
            f"{fn['Timeout']} s",
            when(fn.get("LastModified")),
            escape(fn.get("Description") or ""),
        )
    console.print(table)


def _details(lam: LambdaClient, name: str, qualifier: str | None) -> dict[str, Any]:
    fn = lam.get_function(FunctionName=name, **_qualified(qualifier))
    base = fn["Configuration"]["FunctionName"]
    return {
        "Configuration": fn["Configuration"],
        "Code": fn.get("Code") or {},
        "Tags": fn.get("Tags") or {},
        "ReservedConcurrentExecutions": (fn.get("Concurrency") or {}).get(
            "ReservedConcurrentExecutions"
        ),
        "ProvisionedConcurrencyConfigs": _listed(
            lam.list_provisioned_concurrency_configs,
            "ProvisionedConcurrencyConfigs",
            FunctionName=base,
        ),
        "FunctionUrlConfigs": _listed(
            lam.list_function_url_configs, "FunctionUrlConfigs", FunctionName=base
        ),
        "Versions": _listed(lam.list_versions_by_function, "Versions", FunctionName=base),
        "Aliases": _listed(lam.list_aliases, "Aliases", FunctionName=base),
    }


def _qualifier_of(arn: str) -> str:
    parts = arn.split(":")
    return parts[7] if len(parts) > 7 else "$LATEST"


def _routing_text(alias: dict[str, Any]) -> str:
    weights = (alias.get("RoutingConfig") or {}).get("AdditionalVersionWeights") or {}
    extra = "".join(f" + {v} ({w:.0%})" for v, w in weights.items())
    return f"{alias['Name']} -> {alias['FunctionVersion']}{extra}"


def _reserved_text(reserved: int | None) -> str:
    if reserved is None:
        return "none (uses the account's unreserved pool)"
    if reserved == 0:
        return "[red]0: every invocation is throttled[/]"
    return f"{reserved} (at most {reserved} at once; no other function can use them)"


def _provisioned_text(config: dict[str, Any]) -> str:
    text = (
        f"{escape(_qualifier_of(config['FunctionArn']))}: "
        f"{config['AllocatedProvisionedConcurrentExecutions']}/"
        f"{config['RequestedProvisionedConcurrentExecutions']} "
        f"{_status_text(config['Status'])}"
    )
    if config.get("StatusReason"):
        text += f" [red]{escape(config['StatusReason'])}[/]"
    return text


def _url_text(config: dict[str, Any]) -> str:
    origins = ((config.get("Cors") or {}).get("AllowOrigins")) or []
    cors = f", CORS {', '.join(origins)}" if origins else ""
    return (
        f"{config['FunctionUrl']} ({config['AuthType']}, "
        f"{_qualifier_of(config['FunctionArn'])}{cors})"
    )


@app.command("describe")
def describe(name: str, qualifier: QualifierOption = None, as_json: JsonOption = False) -> None:
    """A function: configuration, concurrency, provisioned configs, URLs, versions, aliases."""
    info = _details(_lambda(), name, qualifier)
    if as_json:
        print_json(info)
        return
    config = info["Configuration"]
    table = kv_table()
    table.add_row("name", config["FunctionName"])
    table.add_row("arn", config["FunctionArn"])
    table.add_row("version", config["Version"])
    if config.get("Description"):
        table.add_row("description", escape(config["Description"]))
    table.add_row("runtime", f"{config.get('Runtime', '-')}, handler {config.get('Handler', '-')}")
    table.add_row("memory", f"{config['MemorySize']} MB")
    table.add_row("timeout", f"{config['Timeout']} s")
    table.add_row("role", config["Role"])
    state = _status_text(config.get("State", "Active"))
    if config.get("LastUpdateStatus"):
        state += f", last update {_status_text(config['LastUpdateStatus'])}"
    if config.get("StateReason"):
        state += f" [red]{escape(config['StateReason'])}[/]"
    table.add_row("state", state)
    table.add_row(
        "code",
        f"{human_bytes(config['CodeSize'])}, sha256 {config['CodeSha256']}, "
        f"modified {when(config.get('LastModified'))} UTC",
    )
    variables = (config.get("Environment") or {}).get("Variables") or {}
    table.add_row(
        "environment", escape("\n".join(f"{k}={v}" for k, v in sorted(variables.items()))) or "-"
    )
    table.add_row("reserved concurrency", _reserved_text(info["ReservedConcurrentExecutions"]))
    table.add_row(
        "provisioned",
        "\n".join(_provisioned_text(c) for c in info["ProvisionedConcurrencyConfigs"]) or "none",
    )
    table.add_row(
        "url", escape("\n".join(_url_text(c) for c in info["FunctionUrlConfigs"])) or "none"
    )
    published = [v["Version"] for v in info["Versions"] if v["Version"] != "$LATEST"]
    table.add_row(
        "versions",
        f"{len(published)} published: {', '.join(published)}" if published else "none published",
    )
    table.add_row("aliases", escape("\n".join(_routing_text(a) for a in info["Aliases"])) or "none")
    console.print(table)


@app.command("update-code")
def update_code(
    name: str,
    code: CodeOption,
    publish: Annotated[bool, typer.Option("--publish", help="Also publish a version.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Replace a function's code ($LATEST); --publish also makes it a version."""
    zipped = _read_package(code)
    lam = _lambda()
    handler = lam.get_function_configuration(FunctionName=name).get("Handler")
    if handler:
        _warn_missing_handler(zipped, handler)
    config = lam.update_function_code(FunctionName=name, ZipFile=zipped, Publish=publish)
    if as_json:
        print_json(config)
        return
    version = f"; published version {config['Version']}" if publish else ""
    _say(
        f"Updated the code of {name}: {human_bytes(config['CodeSize'])}, "
        f"sha256 {config['CodeSha256']}{version}"
    )


@app.command("update-config")
def update_config(
    name: str,
    memory: Annotated[int | None, typer.Option(help="Memory in MB (128-10240).")] = None,
    timeout: Annotated[int | None, typer.Option(help="Timeout in seconds (1-900).")] = None,
    env: Annotated[
        list[str] | None,
        typer.Option(
            "--env", "-e", help="Set NAME=value (repeatable); the other variables are kept."
        ),
    ] = None,
    unset_env: Annotated[
        list[str] | None, typer.Option("--unset-env", help="Remove this variable (repeatable).")
    ] = None,
    role: Annotated[str | None, typer.Option(help="The execution role (ARN or name).")] = None,
    handler: Annotated[str | None, typer.Option(help="module.function.")] = None,
    description: Annotated[str | None, typer.Option(help="What it is for.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Change a function's settings ($LATEST); what is not given stays as it is."""
    changes: dict[str, Any] = {}
    if memory is not None:
        changes["MemorySize"] = memory
    if timeout is not None:
        changes["Timeout"] = timeout
    if role is not None:
        changes["Role"] = _role_arn(role)
    if handler is not None:
        changes["Handler"] = handler
    if description is not None:
        changes["Description"] = description
    lam = _lambda()
    current = lam.get_function_configuration(FunctionName=name)
    if env or unset_env:
        variables = dict((current.get("Environment") or {}).get("Variables") or {})
        variables.update(pairs(env, "--env"))
        for key in unset_env or []:
            variables.pop(key, None)
        changes["Environment"] = {"Variables": variables}
    if not changes:
        raise ValidationError(
            "Nothing to change.",
            hint="Give at least one of --memory, --timeout, --env, --unset-env, --role, "
            "--handler, --description.",
        )
    config = lam.update_function_configuration(
        FunctionName=name, RevisionId=current["RevisionId"], **changes
    )
    if as_json:
        print_json(config)
        return
    _say(f"Updated {name}: " + ", ".join(sorted(changes)) + ".")


@app.command("delete")
def delete(name: str, qualifier: QualifierOption = None) -> None:
    """Delete a function (with --qualifier: only that version)."""
    _lambda().delete_function(FunctionName=name, **_qualified(qualifier))
    what = f"version {qualifier} of {name}" if qualifier else f"function {name}"
    _say(f"Deleted {what}.")


# Versions and aliases ---------------------------------------------------------------------


@app.command("publish")
def publish(
    name: str,
    description: Annotated[str | None, typer.Option(help="What this version is.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Publish $LATEST as a new version (unchanged code: the latest version is returned)."""
    extra = {"Description": description} if description is not None else {}
    config = _lambda().publish_version(FunctionName=name, **extra)
    if as_json:
        print_json(config)
        return
    _say(f"Published {name} version {config['Version']} (sha256 {config['CodeSha256']}).")
    _next(f"kennel functions alias create {name} live --version {config['Version']}")


@app.command("versions")
def versions(name: str, as_json: JsonOption = False) -> None:
    """A function's versions ($LATEST and the published ones) and their aliases."""
    lam = _lambda()
    found = _listed(lam.list_versions_by_function, "Versions", FunctionName=name)
    aliases = _listed(lam.list_aliases, "Aliases", FunctionName=name)
    if as_json:
        print_json(found)
        return
    table = fold_table("version", "aliases", "sha256", "size", "modified", "description")
    for v in found:
        pointing = [a["Name"] for a in aliases if a["FunctionVersion"] == v["Version"]]
        table.add_row(
            v["Version"],
            ", ".join(pointing) or "-",
            v["CodeSha256"],
            human_bytes(v["CodeSize"]),
            when(v.get("LastModified")),
            escape(v.get("Description") or ""),
        )
    console.print(table)


def _routing(routing: list[str] | None) -> dict[str, Any] | None:
    """``--routing VERSION=WEIGHT`` options as Lambda's RoutingConfig."""
    weights: dict[str, float] = {}
    for version, text in pairs(routing, "--routing").items():
        try:
            weight = float(text)
        except ValueError:
            weight = -1.0
        if not 0.0 <= weight <= 1.0:
            raise ValidationError(
                f"--routing {version}={text}: the weight must be a number from 0 to 1.",
                hint="e.g. --routing 3=0.1 sends 10% of the alias's invocations to version 3.",
            )
        weights[version] = weight
    return {"AdditionalVersionWeights": weights} if weights else None


RoutingOption = Annotated[
    list[str] | None,
    typer.Option(
        "--routing", help="VERSION=WEIGHT: send this share (0-1) to another version (canary)."
    ),
]


def _show_alias(alias: dict[str, Any], as_json: bool, verb: str) -> None:
    if as_json:
        print_json(alias)
        return
    _say(f"{verb} alias {_routing_text(alias)}: {alias['AliasArn']}")


@alias_app.command("create")
def create_alias(
    name: str,
    alias: str,
    version: Annotated[str, typer.Option("--version", help="The version it points at.")],
    description: Annotated[str | None, typer.Option(help="What it is for.")] = None,
    routing: RoutingOption = None,
    as_json: JsonOption = False,
) -> None:
    """Create an alias of a function pointing at a version."""
    extra: dict[str, Any] = {}
    if description is not None:
        extra["Description"] = description
    config = _routing(routing)
    if config:
        extra["RoutingConfig"] = config
    made = _lambda().create_alias(FunctionName=name, Name=alias, FunctionVersion=version, **extra)
    _show_alias(made, as_json, "Created")


@alias_app.command("list")
def list_aliases(name: str, as_json: JsonOption = False) -> None:
    """A function's aliases."""
    aliases = _listed(_lambda().list_aliases, "Aliases", FunctionName=name)
    if as_json:
        print_json(aliases)
        return
    table = fold_table("alias", "version", "routing", "description", "arn")
    for a in aliases:
        weights = (a.get("RoutingConfig") or {}).get("AdditionalVersionWeights") or {}
        table.add_row(
            a["Name"],
            a["FunctionVersion"],
            ", ".join(f"{v}: {w:.0%}" for v, w in weights.items()) or "-",
            escape(a.get("Description") or ""),
            a["AliasArn"],
        )
    console.print(table)


@alias_app.command("update")
def update_alias(
    name: str,
    alias: str,
    version: Annotated[str | None, typer.Option("--version", help="Point it here.")] = None,
    description: Annotated[str | None, typer.Option(help="What it is for.")] = None,
    routing: RoutingOption = None,
    clear_routing: Annotated[
        bool, typer.Option("--clear-routing", help="Send everything to --version again.")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Point an alias elsewhere, or shift a share of its traffic to another version."""
    extra: dict[str, Any] = {}
    if version is not None:
        extra["FunctionVersion"] = version
    if description is not None:
        extra["Description"] = description
    config = _routing(routing)
    if config or clear_routing:
        extra["RoutingConfig"] = config or {"AdditionalVersionWeights": {}}
    if not extra:
        raise ValidationError(
            "Nothing to change.",
            hint="Give --version, --description, --routing or --clear-routing.",
        )
    updated = _lambda().update_alias(FunctionName=name, Name=alias, **extra)
    _show_alias(updated, as_json, "Updated")


@alias_app.command("delete")
def delete_alias(name: str, alias: str) -> None:
    """Delete an alias (its versions stay)."""
    _lambda().delete_alias(FunctionName=name, Name=alias)
    _say(f"Deleted alias {alias} of {name}.")


# Invoke -----------------------------------------------------------------------------------


def _payload(payload: str | None, payload_file: Path | None) -> bytes:
    if payload is not None and payload_file is not None:
        raise ValidationError(
            "Give --payload or --payload-file, not both.",
            hint="--payload '{\"key\": 1}' or --payload-file event.json (- reads stdin).",
        )
    if payload_file is not None:
        try:
            text = sys.stdin.read() if str(payload_file) == "-" else payload_file.read_text()
        except OSError as exc:
            raise ValidationError(
                f"--payload-file {payload_file}: {exc.strerror or exc}",
                hint="Give a JSON file, or - to read standard input.",
            ) from exc
        source = f"--payload-file {payload_file}"
    else:
        text = payload if payload is not None else "{}"
        source = "--payload"
    try:
        json.loads(text)
    except ValueError as exc:
        raise ValidationError(
            f"{source} is not JSON: {exc}",
            hint='An event is JSON, e.g. --payload \'{"name": "rex"}\' (mind the shell quotes).',
        ) from exc
    return text.encode()


def _decoded(payload: bytes) -> tuple[bool, Any]:
    """``(True, value)`` if the response payload is JSON, else ``(False, its text)``."""
    try:
        return True, json.loads(payload)
    except ValueError:
        return False, payload.decode("utf-8", "replace")


def _log_tail(encoded: str | None) -> str:
    if not encoded:
        return ""
    try:
        return base64.b64decode(encoded).decode("utf-8", "replace")
    except (binascii.Error, ValueError):
        return encoded


def _function_error(name: str, kind: str, version: str, result: Any) -> KennelError:
    detail = result if isinstance(result, dict) else {}
    error_type = detail.get("errorType")
    message = detail.get("errorMessage") or (result if isinstance(result, str) else "")
    what = f"{error_type}: {message}" if error_type else (message or "no error message")
    return KennelError(
        f"The function {name} (version {version}) failed: {what}",
        aws_code=f"Function{kind}",
        hint=f"Its log: `kennel functions logs {name}`, or invoke again with --log.",
    )


@app.command("invoke")
def invoke(
    name: str,
    payload: Annotated[str | None, typer.Option(help="The event, as JSON (default {}).")] = None,
    payload_file: Annotated[
        Path | None, typer.Option("--payload-file", help="The event from a JSON file (- stdin).")
    ] = None,
    qualifier: QualifierOption = None,
    run_async: Annotated[
        bool, typer.Option("--async", help="Queue it (InvocationType Event) and return.")
    ] = False,
    log: Annotated[
        bool, typer.Option("--log", help="Also print the invocation's log tail (stderr).")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Invoke a function and print its response; exits 1 if the function raised an error."""
    body = _payload(payload, payload_file)
    answer = _lambda().invoke(
        FunctionName=name,
        Payload=body,
        InvocationType="Event" if run_async else "RequestResponse",
        LogType="Tail" if log and not run_async else "None",
        **_qualified(qualifier),
    )
    if run_async:
        if as_json:
            print_json({"StatusCode": answer["StatusCode"]})
            return
        _say(f"Queued an asynchronous invocation of {name} ({answer['StatusCode']}).")
        _next(f"kennel functions events {name} (its outcome), kennel functions logs {name}")
        return
    is_json, result = _decoded(answer["Payload"].read())
    tail = _log_tail(answer.get("LogResult"))
    failed = answer.get("FunctionError")
    version = answer.get("ExecutedVersion", "$LATEST")
    if as_json:
        shown: dict[str, Any] = {
            "StatusCode": answer["StatusCode"],
            "ExecutedVersion": version,
            "Payload": result,
        }
        if failed:
            shown["FunctionError"] = failed
        if log:
            shown["Log"] = tail
        print_json(shown)
    else:
        if tail:
            err_console.print(tail.rstrip("\n"), style="dim", markup=False, highlight=False)
        if is_json:
            sys.stdout.write(json.dumps(result, indent=2) + "\n")
        else:
            sys.stdout.write(result + ("" if result.endswith("\n") else "\n"))
        sys.stdout.flush()
    if failed:
        print_error(_function_error(name, failed, version, result))
        raise typer.Exit(1)


# Logs, events, metrics --------------------------------------------------------------------


def _print_log_event(event: dict[str, Any], as_json: bool) -> None:
    if as_json:
        sys.stdout.write(json.dumps(event) + "\n")
        sys.stdout.flush()
        return
    moment = datetime.fromtimestamp(event["timestamp"] / 1000, UTC)
    stamp = moment.strftime("%Y-%m-%d %H:%M:%S.") + f"{moment.microsecond // 1000:03d}"
    pad = " " * (len(stamp) + 2)
    lines = event["message"].rstrip("\n").splitlines() or [""]
    text = "\n".join([f"{stamp}  {lines[0]}", *(pad + line for line in lines[1:])])
    console.print(text, markup=False, highlight=False, soft_wrap=True)


def _log_page(name: str, since_ms: int, after_id: int | None) -> list[dict[str, Any]]:
    params: dict[str, Any] = {"since": since_ms, "limit": PAGE}
    if after_id is not None:
        params["after_id"] = after_id
    events: list[dict[str, Any]] = _kennel_get(name, "logs", params)["events"]
    return events


@app.command("logs")
def logs(
    name: str,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep printing new invocations (Ctrl-C ends).")
    ] = False,
    since: Annotated[str, typer.Option(help="How far back: 30s, 10m, 1h, 7d.")] = "1h",
    limit: Annotated[
        int, typer.Option(min=1, help="At most this many invocations (the latest).")
    ] = 100,
    max_seconds: Annotated[
        float | None, typer.Option("--max-seconds", hidden=True, help="Stop following after.")
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="One JSON object per invocation's log, per line.")
    ] = False,
) -> None:
    """Invocation logs (START .. REPORT), oldest first; -f follows new ones."""
    since_ms = int((time.time() - parse_duration(since)) * 1000)
    latest: deque[dict[str, Any]] = deque(maxlen=limit)
    after_id: int | None = None
    while True:
        page = _log_page(name, since_ms, after_id)
        latest.extend(page)
        if page:
            after_id = page[-1]["id"]
        if len(page) < PAGE:
            break
    for event in latest:
        _print_log_event(event, as_json)
    if not follow:
        if not latest and not as_json:
            err_console.print(f"No invocations logged in the last {since}.", style="dim")
        return
    deadline = None if max_seconds is None else time.monotonic() + max_seconds
    try:
        while deadline is None or time.monotonic() < deadline:
            pause = (
                POLL_SECONDS if deadline is None else min(POLL_SECONDS, deadline - time.monotonic())
            )
            time.sleep(max(pause, 0.0))
            for event in _log_page(name, since_ms, after_id):
                after_id = event["id"]
                _print_log_event(event, as_json)
    except KeyboardInterrupt:
        return


@app.command("events")
def events(
    name: str,
    status: Annotated[EventStatus | None, typer.Option(help="Only events in this state.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=10000, help="At most this many.")] = 100,
    as_json: JsonOption = False,
) -> None:
    """Asynchronous invocations, newest first; a failed one keeps its last error."""
    params: dict[str, Any] = {"limit": limit}
    if status is not None:
        params["status"] = status.value
    found: list[dict[str, Any]] = _kennel_get(name, "events", params)["events"]
    if as_json:
        print_json(found)
        return
    if not found:
        which = f"{status.value} " if status else ""
        console.print(f"No {which}asynchronous invocations of {escape(name)}.")
        return
    table = fold_table("queued", "status", "attempts", "version", "finished", "error / payload")
    for e in found:
        detail = _error_text(e.get("last_error")) or e.get("payload") or ""
        if len(detail) > 400:
            detail = detail[:400] + "..."
        table.add_row(
            when(e["created_at"]),
            _status_text(e["status"]),
            str(e["attempts"]),
            e.get("executed_version") or e.get("qualifier") or "-",
            when(e.get("finished_at")),
            escape(detail),
        )
    console.print(table)


def _error_text(error: Any) -> str:
    """An on-failure record's error (Lambda's errorType/errorMessage object) as one line."""
    if not error:
        return ""
    if isinstance(error, dict):
        kind, message = error.get("errorType"), error.get("errorMessage")
        if kind or message:
            return f"{kind or 'Error'}: {message or ''}".strip()
        return json.dumps(error)
    return str(error)


_SUMMED = {"Invocations", "Errors", "Throttles", "ColdStarts"}


@app.command("metrics")
def metrics(
    name: str,
    since: Annotated[str, typer.Option(help="How far back: 30s, 10m, 1h, 7d.")] = "1h",
    as_json: JsonOption = False,
) -> None:
    """Invocations, errors, throttles, duration and concurrency over a period."""
    answer = _kennel_get(name, "metrics", {"since_seconds": parse_duration(since)})
    if as_json:
        print_json(answer)
        return
    series: dict[str, list[dict[str, Any]]] = answer["metrics"]
    if not series:
        console.print(f"No metrics for {escape(name)} in the last {since}.")
        return
    table = fold_table("metric", "total", "average", "max", "last")
    table.title = f"{name}, last {since} ({answer['period_seconds']:g} s periods)"
    for metric in sorted(series):
        values = [point["value"] for point in series[metric]]
        table.add_row(
            metric,
            f"{sum(values):g}" if metric in _SUMMED else "-",
            f"{sum(values) / len(values):.3g}",
            f"{max(values):.3g}",
            f"{values[-1]:.3g}",
        )
    console.print(table)


# Concurrency ------------------------------------------------------------------------------


@app.command("concurrency")
def concurrency(
    name: str,
    reserved: Annotated[
        int | None, typer.Option(min=0, help="Reserve this many (0 throttles every call).")
    ] = None,
    delete_: Annotated[
        bool, typer.Option("--delete", help="Remove the reservation (use the shared pool).")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Show, set (--reserved N) or remove (--delete) a function's reserved concurrency."""
    if reserved is not None and delete_:
        raise ValidationError("Give --reserved or --delete, not both.")
    lam = _lambda()
    if reserved is not None:
        answer = lam.put_function_concurrency(
            FunctionName=name, ReservedConcurrentExecutions=reserved
        )
    elif delete_:
        lam.delete_function_concurrency(FunctionName=name)
        answer = {}
    else:
        answer = lam.get_function_concurrency(FunctionName=name)
    if as_json:
        print_json(answer)
        return
    console.print(
        f"{escape(name)}: reserved concurrency "
        + _reserved_text(answer.get("ReservedConcurrentExecutions")),
        soft_wrap=True,
        highlight=False,
    )


# Provisioned concurrency ------------------------------------------------------------------


def _wait_provisioned(
    lam: LambdaClient, name: str, qualifier: str, config: dict[str, Any], max_wait: float
) -> dict[str, Any]:
    """Poll until READY or FAILED (or ``max_wait``), with a bar of environments ready."""
    deadline = time.monotonic() + max_wait
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[status]}"),
        TimeElapsedColumn(),
        console=err_console,
    ) as progress:
        task = progress.add_task(
            f"Provisioning {name}:{qualifier}",
            total=config["RequestedProvisionedConcurrentExecutions"],
            completed=config["AllocatedProvisionedConcurrentExecutions"],
            status=config["Status"],
        )
        while config["Status"] == "IN_PROGRESS" and time.monotonic() < deadline:
            time.sleep(POLL_SECONDS)
            config = lam.get_provisioned_concurrency_config(FunctionName=name, Qualifier=qualifier)
            progress.update(
                task,
                completed=config["AllocatedProvisionedConcurrentExecutions"],
                status=config["Status"],
            )
    return config


@provisioned_app.command("put")
def put_provisioned(
    name: str,
    qualifier: Annotated[str, typer.Option("--qualifier", "-q", help="A version or alias.")],
    count: Annotated[int, typer.Option(min=1, help="How many environments to keep started.")],
    wait: Annotated[bool, typer.Option("--wait", help="Wait until READY (or FAILED).")] = False,
    max_wait: Annotated[
        float, typer.Option("--max-wait", help="With --wait: give up after this many seconds.")
    ] = 600.0,
    as_json: JsonOption = False,
) -> None:
    """Keep COUNT environments of a version or alias started and initialised."""
    lam = _lambda()
    config = lam.put_provisioned_concurrency_config(
        FunctionName=name, Qualifier=qualifier, ProvisionedConcurrentExecutions=count
    )
    if wait:
        config = _wait_provisioned(lam, name, qualifier, config, max_wait)
    if as_json:
        print_json(config)
    else:
        console.print(
            f"{escape(name)}:{escape(qualifier)} provisioned concurrency "
            f"{config['AllocatedProvisionedConcurrentExecutions']}/{count} "
            f"{_status_text(config['Status'])}",
            soft_wrap=True,
            highlight=False,
        )
        if config["Status"] == "IN_PROGRESS" and not wait:
            _next(f"kennel functions provisioned get {name} --qualifier {qualifier}")
    if config["Status"] == "FAILED":
        print_error(
            KennelError(
                f"Provisioning {name}:{qualifier} failed: "
                f"{config.get('StatusReason') or 'no reason given'}",
                aws_code="ProvisionedConcurrencyFailed",
                hint=f"Fix the function's initialisation (`kennel functions invoke {name} "
                f"--qualifier {qualifier} --log` shows it), then put the config again.",
            )
        )
        raise typer.Exit(1)
    if wait and config["Status"] != "READY":
        print_error(
            KennelError(
                f"{name}:{qualifier} is still {config['Status']} after {max_wait:g} s.",
                aws_code="Timeout",
                hint="Watch it: "
                f"`kennel functions provisioned get {name} --qualifier {qualifier}`.",
            )
        )
        raise typer.Exit(1)


@provisioned_app.command("get")
def get_provisioned(
    name: str,
    qualifier: Annotated[
        str | None, typer.Option("--qualifier", "-q", help="One version or alias (default: all).")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """A function's provisioned concurrency configs and their status."""
    lam = _lambda()
    if qualifier:
        one = lam.get_provisioned_concurrency_config(FunctionName=name, Qualifier=qualifier)
        found: Any = one
        rows = [(qualifier, one)]
    else:
        found = _listed(
            lam.list_provisioned_concurrency_configs,
            "ProvisionedConcurrencyConfigs",
            FunctionName=name,
        )
        rows = [(_qualifier_of(c["FunctionArn"]), c) for c in found]
    if as_json:
        print_json(found)
        return
    if not rows:
        console.print(f"{escape(name)} has no provisioned concurrency.")
        return
    table = fold_table("qualifier", "allocated", "requested", "status", "reason", "modified")
    for where, c in rows:
        table.add_row(
            escape(where),
            str(c["AllocatedProvisionedConcurrentExecutions"]),
            str(c["RequestedProvisionedConcurrentExecutions"]),
            _status_text(c["Status"]),
            escape(c.get("StatusReason") or ""),
            when(c.get("LastModified")),
        )
    console.print(table)


@provisioned_app.command("delete")
def delete_provisioned(
    name: str,
    qualifier: Annotated[str, typer.Option("--qualifier", "-q", help="A version or alias.")],
) -> None:
    """Stop keeping environments of a version or alias started."""
    _lambda().delete_provisioned_concurrency_config(FunctionName=name, Qualifier=qualifier)
    _say(f"Deleted the provisioned concurrency of {name}:{qualifier}.")


# Function URLs ----------------------------------------------------------------------------


_NO_URL = {
    "ResourceNotFoundException": "Does the function exist (`kennel functions list`)? Create "
    "its URL with `kennel functions url create {name} --auth-type AWS_IAM`."
}


def _cors_text(key: str, value: Any) -> str:
    shown = ", ".join(map(str, value)) if isinstance(value, list) else str(value)
    return f"{key}: {shown}"


def _show_url(config: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print_json(config)
        return
    table = kv_table()
    table.add_row("url", config["FunctionUrl"])
    table.add_row("auth type", config["AuthType"])
    table.add_row("function", config["FunctionArn"])
    cors = config.get("Cors") or {}
    shown = "\n".join(_cors_text(k, v) for k, v in sorted(cors.items()))
    table.add_row("cors", escape(shown) or "none")
    table.add_row("created", when(config.get("CreationTime")) + " UTC")
    console.print(table)


@url_app.command("create")
def create_url(
    name: str,
    auth_type: Annotated[
        AuthType,
        typer.Option("--auth-type", help="AWS_IAM: signed requests only; NONE: anyone allowed."),
    ],
    cors_origin: Annotated[
        list[str] | None,
        typer.Option("--cors-origin", help="An origin browsers may call it from (repeatable)."),
    ] = None,
    qualifier: Annotated[
        str | None, typer.Option("--qualifier", "-q", help="An alias (default: $LATEST).")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Give a function (or an alias) an HTTP URL."""
    extra: dict[str, Any] = _qualified(qualifier)
    if cors_origin:
        extra["Cors"] = {"AllowOrigins": cors_origin}
    config = _lambda().create_function_url_config(
        FunctionName=name, AuthType=auth_type.value, **extra
    )
    _show_url(config, as_json)
    if auth_type is AuthType.NONE:
        target = f"{name} --qualifier {qualifier}" if qualifier else name
        _next(
            "let anyone call it (AuthType NONE needs the function's policy to allow it): "
            f"kennel functions add-permission {target} --principal '*' "
            "--action lambda:InvokeFunctionUrl --function-url-auth-type NONE"
        )


@url_app.command("get")
def get_url(name: str, qualifier: QualifierOption = None, as_json: JsonOption = False) -> None:
    """A function's URL and its settings."""
    config = _lambda(_NO_URL).get_function_url_config(FunctionName=name, **_qualified(qualifier))
    _show_url(config, as_json)


@url_app.command("delete")
def delete_url(name: str, qualifier: QualifierOption = None) -> None:
    """Remove a function's URL (the function stays)."""
    _lambda(_NO_URL).delete_function_url_config(FunctionName=name, **_qualified(qualifier))
    _say(f"Deleted the URL of {name}{':' + qualifier if qualifier else ''}.")


# Resource-based policy ----------------------------------------------------------------------


def _default_sid(principal: str, action: str) -> str:
    who = "public" if principal == "*" else principal
    return _SID_UNSAFE.sub("-", f"{action.rpartition(':')[2]}-{who}").strip("-")[:100] or "sid"


@app.command("add-permission")
def add_permission(
    name: str,
    principal: Annotated[
        str,
        typer.Option(help="Who: *, an account id, an IAM ARN or a service (s3.amazonaws.com)."),
    ],
    action: Annotated[
        str, typer.Option(help="e.g. lambda:InvokeFunction or lambda:InvokeFunctionUrl.")
    ],
    statement_id: Annotated[
        str | None,
        typer.Option("--statement-id", help="The statement's Sid (default: from the action)."),
    ] = None,
    function_url_auth_type: Annotated[
        AuthType | None,
        typer.Option("--function-url-auth-type", help="Only for URL calls of this AuthType."),
    ] = None,
    source_arn: Annotated[
        str | None, typer.Option("--source-arn", help="Only when called on behalf of this ARN.")
    ] = None,
    qualifier: QualifierOption = None,
    as_json: JsonOption = False,
) -> None:
    """Let a principal (or anyone) call the function: a statement of its resource policy."""
    extra: dict[str, Any] = _qualified(qualifier)
    if function_url_auth_type is not None:
        extra["FunctionUrlAuthType"] = function_url_auth_type.value
    if source_arn is not None:
        extra["SourceArn"] = source_arn
    sid = statement_id or _default_sid(principal, action)
    answer = _lambda().add_permission(
        FunctionName=name, StatementId=sid, Principal=principal, Action=action, **extra
    )
    statement = json.loads(answer["Statement"])
    if as_json:
        print_json(statement)
        return
    _say(f"Added statement {sid} to the policy of {name}:")
    _say(json.dumps(statement, indent=2))


@app.command("remove-permission")
def remove_permission(
    name: str,
    statement_id: Annotated[str, typer.Option("--statement-id", help="The statement's Sid.")],
    qualifier: QualifierOption = None,
) -> None:
    """Remove a statement from the function's resource policy."""
    _lambda().remove_permission(
        FunctionName=name, StatementId=statement_id, **_qualified(qualifier)
    )
    _say(f"Removed statement {statement_id} from the policy of {name}.")


_NO_POLICY = {
    "ResourceNotFoundException": "It has none yet (only IAM principals allowed "
    "lambda:InvokeFunction may call it); add one with `kennel functions add-permission "
    "{name} --principal P --action lambda:InvokeFunction`."
}


@app.command("policy")
def policy(name: str, qualifier: QualifierOption = None, as_json: JsonOption = False) -> None:
    """The function's resource-based policy: who else may call it."""
    answer = _lambda(_NO_POLICY).get_policy(FunctionName=name, **_qualified(qualifier))
    document = json.loads(answer["Policy"])
    if as_json:
        print_json(document)
        return
    table = fold_table("sid", "effect", "principal", "action", "condition")
    for s in document.get("Statement") or []:
        principal_ = s.get("Principal")
        table.add_row(
            s.get("Sid") or "-",
            s.get("Effect") or "-",
            escape(principal_ if isinstance(principal_, str) else json.dumps(principal_)),
            escape(str(s.get("Action"))),
            escape(json.dumps(s["Condition"])) if s.get("Condition") else "-",
        )
    console.print(table)
