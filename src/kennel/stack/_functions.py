"""Functions in a stack: code, configuration, concurrency, an alias and a URL.

Everything goes through boto3's ``lambda`` client against the server, as a user's code
would. The code folder is zipped reproducibly (``kennel.functions._package``), so its
CodeSha256 is stable and unchanged code is no update.

Like SAM's ``AutoPublishAlias``, every apply publishes $LATEST (PublishVersion makes no new
version when nothing changed) and points the block's alias (``live``) at it: provisioned
concurrency can only live on a version or an alias, and the URL is the alias's, so it stays
the same whether or not provisioned concurrency is set and always serves the published
code. A function's physical name is its logical name.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, ClassVar

from kennel._errors import KennelError, NotFoundError
from kennel.functions._package import code_sha256, package
from kennel.stack._calls import call, find, gone, poll
from kennel.stack._iam import NO_SUCH_ENTITY, UNKNOWN_VALUE
from kennel.stack._schema import FunctionBlock
from kennel.stack._types import Address, StackContext, Step, fingerprint, physical

NOT_FOUND = ("ResourceNotFoundException",)
NO_PROVISIONED = ("ProvisionedConcurrencyConfigNotFoundException", *NOT_FOUND)
PUBLIC_SID = "FunctionURLAllowPublicAccess"
"""The statement the Lambda console adds for a URL with AuthType NONE."""
URL_ACTION = "lambda:InvokeFunctionUrl"
DEFAULT_ALIAS: str = FunctionBlock.model_fields["alias"].default

_SETTINGS = (
    ("Handler", "handler"),
    ("Runtime", "runtime"),
    ("Role", "role"),
    ("Timeout", "timeout"),
    ("MemorySize", "memory_size"),
    ("Description", "description"),
)
"""Configuration fields compared one by one: Lambda's name, the block's name."""


@dataclass
class Desired:
    """A block made concrete: its package, the package's hash and the role's ARN."""

    block: FunctionBlock
    code: bytes
    sha256: str
    role_arn: str

    def settings(self) -> dict[str, Any]:
        return {
            "handler": self.block.handler,
            "runtime": self.block.runtime,
            "role": self.role_arn,
            "timeout": self.block.timeout,
            "memory_size": self.block.memory_size,
            "description": self.block.description,
        }


@dataclass
class FunctionState:
    """A function as the server has it, seen from the block's alias."""

    latest: dict[str, Any]
    """$LATEST's configuration."""
    reserved: int | None
    alias: dict[str, Any] | None
    """The alias (Name, FunctionVersion, ...), when it exists."""
    published: dict[str, Any] | None
    """The configuration of the version the alias points at."""
    provisioned: dict[str, Any] | None
    url: dict[str, Any] | None
    public: bool
    """The alias's policy lets anyone call its URL."""


def config_changes(config: dict[str, Any], desired: Desired) -> list[str]:
    """How a configuration ($LATEST's or a version's) differs from the block, for a person."""
    found: list[str] = []
    if config.get("CodeSha256") != desired.sha256:
        found.append("code changed")
    wanted = desired.settings()
    for key, label in _SETTINGS:
        if config.get(key) != wanted[label]:
            found.append(f"{label} {config.get(key)!r} -> {wanted[label]!r}")
    variables = (config.get("Environment") or {}).get("Variables") or {}
    if variables != desired.block.environment:
        keys = set(variables) | set(desired.block.environment)
        names = sorted(k for k in keys if variables.get(k) != desired.block.environment.get(k))
        found.append(f"environment {', '.join(names)} changed")  # values may be secrets
    return found


def _text(value: Any) -> str:
    return "none" if value is None else str(value)


class FunctionHandler:
    """``functions:`` blocks."""

    kind: ClassVar[str] = "functions"

    def references(self, block: Any) -> set[Address]:
        role = block.role if isinstance(block, FunctionBlock) else str(block["role"])
        if role.startswith("arn:") or "${" in role:
            return set()  # a role outside the stack, or a ${...} the engine resolves
        return {Address("roles", role)}

    # --- plan ------------------------------------------------------------------------

    def plan(self, ctx: StackContext, address: Address, spec: dict[str, Any]) -> Step:
        desired = self._desired(ctx, address, spec, strict=False)
        name = physical(address, fingerprint(spec))
        step = Step(
            address,
            "none",
            name,
            "unchanged",
            spec=spec,
            fingerprint=fingerprint({**spec, "code_sha256": desired.sha256}),
        )
        state = read_function(ctx.aws("lambda"), name, desired.block.alias)
        if state is None:
            step.action, step.reason = "create", "does not exist"
            return step
        found = differences(state, desired)
        if found:
            step.action, step.reason = "update", "; ".join(found)
        return step

    # --- apply -----------------------------------------------------------------------

    def apply(self, ctx: StackContext, step: Step) -> dict[str, Any]:
        desired = self._desired(ctx, step.address, step.spec, strict=True)
        block = desired.block
        lam = ctx.aws("lambda")
        name = step.physical
        state = read_function(lam, name, block.alias)
        if state is None:
            self._create(ctx, lam, name, desired)
        else:
            self._update(ctx, lam, name, state, desired)
            self._shrink_provisioned(lam, name, state, block)
        self._reserve(lam, name, state, block)
        version = self._publish(ctx, lam, name, desired)
        self._provision(ctx, lam, name, block)
        self._url(ctx, lam, name, block)
        attributes = _attributes(lam, name, block.alias)
        attributes["version"] = version
        return attributes

    def _create(self, ctx: StackContext, lam: Any, name: str, desired: Desired) -> None:
        ctx.progress(f"creating function {name}")
        block = desired.block
        call(
            lam,
            "create_function",
            FunctionName=name,
            Runtime=block.runtime,
            Role=desired.role_arn,
            Handler=block.handler,
            Code={"ZipFile": desired.code},
            Description=block.description,
            Timeout=block.timeout,
            MemorySize=block.memory_size,
            Environment={"Variables": block.environment},
        )
        self._wait_updated(ctx, lam, name)

    def _update(
        self, ctx: StackContext, lam: Any, name: str, state: FunctionState, desired: Desired
    ) -> None:
        latest = state.latest
        if latest.get("CodeSha256") != desired.sha256:
            ctx.progress(f"function {name}: updating code")
            call(lam, "update_function_code", FunctionName=name, ZipFile=desired.code)
            self._wait_updated(ctx, lam, name)
        if [c for c in config_changes(latest, desired) if c != "code changed"]:
            ctx.progress(f"function {name}: updating configuration")
            block = desired.block
            call(
                lam,
                "update_function_configuration",
                FunctionName=name,
                Runtime=block.runtime,
                Role=desired.role_arn,
                Handler=block.handler,
                Description=block.description,
                Timeout=block.timeout,
                MemorySize=block.memory_size,
                Environment={"Variables": block.environment},
            )
            self._wait_updated(ctx, lam, name)

    @staticmethod
    def _shrink_provisioned(
        lam: Any, name: str, state: FunctionState, block: FunctionBlock
    ) -> None:
        """Less provisioned concurrency first: a smaller reservation must still hold it."""
        if state.provisioned is None or state.alias is None:
            return
        current = int(state.provisioned["RequestedProvisionedConcurrentExecutions"])
        wanted = block.provisioned_concurrency
        if wanted is None:
            gone(
                lam,
                "delete_provisioned_concurrency_config",
                NO_PROVISIONED,
                FunctionName=name,
                Qualifier=block.alias,
            )
        elif wanted < current:
            call(
                lam,
                "put_provisioned_concurrency_config",
                FunctionName=name,
                Qualifier=block.alias,
                ProvisionedConcurrentExecutions=wanted,
            )

    @staticmethod
    def _reserve(lam: Any, name: str, state: FunctionState | None, block: FunctionBlock) -> None:
        current = state.reserved if state else None
        wanted = block.reserved_concurrency
        if current == wanted:
            return
        if wanted is None:
            gone(lam, "delete_function_concurrency", NOT_FOUND, FunctionName=name)
        else:
            call(
                lam,
                "put_function_concurrency",
                FunctionName=name,
                ReservedConcurrentExecutions=wanted,
            )

    @staticmethod
    def _publish(ctx: StackContext, lam: Any, name: str, desired: Desired) -> str:
        """Publish $LATEST (a no-op when unchanged) and point the alias at it."""
        alias_name = desired.block.alias
        version = str(
            call(lam, "publish_version", FunctionName=name, CodeSha256=desired.sha256)["Version"]
        )
        alias = find(lam, "get_alias", NOT_FOUND, FunctionName=name, Name=alias_name)
        if alias is None:
            ctx.progress(f"function {name}: alias {alias_name} -> version {version}")
            call(lam, "create_alias", FunctionName=name, Name=alias_name, FunctionVersion=version)
        elif alias.get("FunctionVersion") != version:
            ctx.progress(f"function {name}: alias {alias_name} -> version {version}")
            call(lam, "update_alias", FunctionName=name, Name=alias_name, FunctionVersion=version)
        return version

    def _provision(self, ctx: StackContext, lam: Any, name: str, block: FunctionBlock) -> None:
        wanted = block.provisioned_concurrency
        if wanted is None:
            return
        config = find(
            lam,
            "get_provisioned_concurrency_config",
            NO_PROVISIONED,
            FunctionName=name,
            Qualifier=block.alias,
        )
        if (
            config is None
            or config["RequestedProvisionedConcurrentExecutions"] != wanted
            or config["Status"] == "FAILED"
        ):
            call(
                lam,
                "put_provisioned_concurrency_config",
                FunctionName=name,
                Qualifier=block.alias,
                ProvisionedConcurrentExecutions=wanted,
            )

        said: list[str] = []

        def read() -> dict[str, Any]:
            answer = call(
                lam,
                "get_provisioned_concurrency_config",
                FunctionName=name,
                Qualifier=block.alias,
            )
            message = (
                f"function {name}:{block.alias}: provisioned concurrency "
                f"{answer.get('AllocatedProvisionedConcurrentExecutions', 0)}/{wanted} "
                f"{answer.get('Status')}"
            )
            if said[-1:] != [message]:
                ctx.progress(message)
                said.append(message)
            return answer

        final = poll(read, lambda c: c["Status"] != "IN_PROGRESS", timeout=ctx.timeout_seconds)
        if final["Status"] == "FAILED":
            raise KennelError(
                f"Provisioning {name}:{block.alias} failed: "
                f"{final.get('StatusReason') or 'no reason given'}",
                aws_code="ProvisionedConcurrencyFailed",
                hint=f"Fix the function's initialisation (`kennel functions invoke {name} "
                f"--qualifier {block.alias} --log` shows it), then run `kennel up` again.",
            )
        if final["Status"] != "READY":
            raise KennelError(
                f"{name}:{block.alias} is still {final['Status']} after {ctx.timeout_seconds:g} s.",
                aws_code="Timeout",
                hint=f"Watch it with `kennel functions provisioned get {name} --qualifier "
                f"{block.alias}`, then run `kennel up` again.",
            )

    @staticmethod
    def _url(ctx: StackContext, lam: Any, name: str, block: FunctionBlock) -> None:
        where = {"FunctionName": name, "Qualifier": block.alias}
        url = find(lam, "get_function_url_config", NOT_FOUND, **where)
        auth = block.url.auth_type if block.url else None
        if auth is None:
            if url is not None:
                ctx.progress(f"function {name}: removing its URL")
                gone(lam, "delete_function_url_config", NOT_FOUND, **where)
        elif url is None:
            ctx.progress(f"function {name}: creating its URL ({auth})")
            call(lam, "create_function_url_config", AuthType=auth, **where)
        elif url.get("AuthType") != auth:
            call(lam, "update_function_url_config", AuthType=auth, **where)
        public = _is_public(lam, name, block.alias)
        if auth == "NONE" and not public:
            # As on AWS, AuthType NONE also takes a resource policy that lets anyone in.
            call(
                lam,
                "add_permission",
                StatementId=PUBLIC_SID,
                Action=URL_ACTION,
                Principal="*",
                FunctionUrlAuthType="NONE",
                **where,
            )
        elif auth != "NONE" and public:
            gone(lam, "remove_permission", NOT_FOUND, StatementId=PUBLIC_SID, **where)

    def _wait_updated(self, ctx: StackContext, lam: Any, name: str) -> None:
        """Until the function is Active and its last update Successful (Lambda updates are
        asynchronous: the next one is refused while one is InProgress)."""

        def settled(config: dict[str, Any]) -> bool:
            return config.get("State") != "Pending" and config.get("LastUpdateStatus") not in (
                "InProgress",
            )

        config = poll(
            lambda: call(lam, "get_function_configuration", FunctionName=name),
            settled,
            timeout=ctx.timeout_seconds,
        )
        if config.get("State") == "Failed" or config.get("LastUpdateStatus") == "Failed":
            reason = config.get("LastUpdateStatusReason") or config.get("StateReason") or ""
            raise KennelError(
                f"Function {name} failed to update: {reason or 'no reason given'}",
                aws_code="FunctionUpdateFailed",
                hint=f"See `kennel functions describe {name}`.",
            )
        if not settled(config):
            raise KennelError(
                f"Function {name} is still updating after {ctx.timeout_seconds:g} s.",
                aws_code="Timeout",
                hint=f"See `kennel functions describe {name}`, then run `kennel up` again.",
            )

    # --- attributes and delete ---------------------------------------------------------

    def attributes(self, ctx: StackContext, physical: str) -> dict[str, Any]:
        """``name``, ``arn`` (the function's), ``alias``, ``alias_arn`` and ``version``
        (the stack's alias and the version it points at), ``url`` (the alias's, if any).

        Only the physical name is given, so the stack's alias is found: the alias with a
        URL, else ``live`` (the default), else the only one.
        """
        lam = ctx.aws("lambda")
        aliases = call(lam, "list_aliases", FunctionName=physical).get("Aliases") or []
        names = [str(a["Name"]) for a in aliases]
        with_url = [
            n
            for n in names
            if find(lam, "get_function_url_config", NOT_FOUND, FunctionName=physical, Qualifier=n)
        ]
        chosen = next(iter(with_url), None)
        if chosen is None and DEFAULT_ALIAS in names:
            chosen = DEFAULT_ALIAS
        if chosen is None and len(names) == 1:
            chosen = names[0]
        return _attributes(lam, physical, chosen)

    def delete(self, ctx: StackContext, physical: str) -> None:
        lam = ctx.aws("lambda")
        if find(lam, "get_function_configuration", NOT_FOUND, FunctionName=physical) is None:
            return
        ctx.progress(f"deleting function {physical}")
        aliases = find(lam, "list_aliases", NOT_FOUND, FunctionName=physical) or {}
        for alias in aliases.get("Aliases") or []:
            where = {"FunctionName": physical, "Qualifier": alias["Name"]}
            gone(lam, "delete_function_url_config", NOT_FOUND, **where)
            gone(lam, "delete_provisioned_concurrency_config", NO_PROVISIONED, **where)
        gone(lam, "delete_function_url_config", NOT_FOUND, FunctionName=physical)
        gone(lam, "delete_function", NOT_FOUND, FunctionName=physical)

    # --- helpers -----------------------------------------------------------------------

    def _desired(
        self, ctx: StackContext, address: Address, spec: dict[str, Any], *, strict: bool
    ) -> Desired:
        block = FunctionBlock.model_validate(spec)
        code = package(ctx.base / block.code, what=f"{address}.code")
        return Desired(block, code, code_sha256(code), _role_arn(ctx, address, block, strict))


def _attributes(lam: Any, name: str, alias: str | None) -> dict[str, Any]:
    config = call(lam, "get_function_configuration", FunctionName=name)
    found: dict[str, Any] = {"name": name, "arn": config["FunctionArn"]}
    got = find(lam, "get_alias", NOT_FOUND, FunctionName=name, Name=alias) if alias else None
    if alias is None or got is None:
        return found
    found.update(alias=alias, alias_arn=got["AliasArn"], version=got["FunctionVersion"])
    where = {"FunctionName": name, "Qualifier": alias}
    url = find(lam, "get_function_url_config", NOT_FOUND, **where)
    if url is not None:
        found["url"] = url["FunctionUrl"]
    return found


def _role_arn(ctx: StackContext, address: Address, block: FunctionBlock, strict: bool) -> str:
    """The block's role as an ARN. A stack role that does not exist yet (at plan time) gets
    the ARN it will have; at apply time it must exist."""
    if block.role.startswith("arn:") or UNKNOWN_VALUE.fullmatch(block.role):
        return block.role
    found = find(ctx.aws("iam"), "get_role", NO_SUCH_ENTITY, RoleName=block.role)
    if found is not None:
        return str(found["Role"]["Arn"])
    if strict:
        raise NotFoundError(
            f"{address} runs as role {block.role!r}, which does not exist.",
            hint="Declare it under roles: in the stack file, or give a role ARN.",
        )
    account = call(ctx.aws("sts"), "get_caller_identity")["Account"]
    return f"arn:aws:iam::{account}:role/{block.role}"


def read_function(lam: Any, name: str, alias_name: str) -> FunctionState | None:
    """The function ``name`` seen from alias ``alias_name``; None when there is none."""
    found = find(lam, "get_function", NOT_FOUND, FunctionName=name)
    if found is None:
        return None
    reserved = call(lam, "get_function_concurrency", FunctionName=name)
    alias = find(lam, "get_alias", NOT_FOUND, FunctionName=name, Name=alias_name)
    published = provisioned = url = None
    public = False
    if alias is not None:
        where = {"FunctionName": name, "Qualifier": alias_name}
        published = call(lam, "get_function_configuration", **where)
        provisioned = find(lam, "get_provisioned_concurrency_config", NO_PROVISIONED, **where)
        url = find(lam, "get_function_url_config", NOT_FOUND, **where)
        public = _is_public(lam, name, alias_name)
    return FunctionState(
        latest=found["Configuration"],
        reserved=reserved.get("ReservedConcurrentExecutions"),
        alias=alias,
        published=published,
        provisioned=provisioned,
        url=url,
        public=public,
    )


def differences(state: FunctionState, desired: Desired) -> list[str]:
    """What applying the block would change, for a person."""
    block = desired.block
    found = config_changes(state.latest, desired)
    if state.alias is None:
        found.append(f"alias {block.alias} does not exist")
    elif not found and state.published is not None and config_changes(state.published, desired):
        found.append(
            f"alias {block.alias} points at version {state.alias.get('FunctionVersion')}, "
            "not the current code and configuration"
        )
    if state.reserved != block.reserved_concurrency:
        found.append(
            f"reserved_concurrency {_text(state.reserved)} -> {_text(block.reserved_concurrency)}"
        )
    provisioned = state.provisioned or {}
    requested = provisioned.get("RequestedProvisionedConcurrentExecutions")
    if requested != block.provisioned_concurrency:
        found.append(
            f"provisioned_concurrency {_text(requested)} -> {_text(block.provisioned_concurrency)}"
        )
    elif provisioned.get("Status") == "FAILED":
        found.append(f"provisioned concurrency FAILED: {provisioned.get('StatusReason') or ''}")
    auth = block.url.auth_type if block.url else None
    current = state.url.get("AuthType") if state.url else None
    if current != auth:
        found.append(f"url {_text(current)} -> {_text(auth)}")
    if (auth == "NONE") != state.public:
        found.append(f"public access to the url {'granted' if auth == 'NONE' else 'revoked'}")
    return found


def _is_public(lam: Any, name: str, alias: str) -> bool:
    answer = find(lam, "get_policy", NOT_FOUND, FunctionName=name, Qualifier=alias)
    if answer is None:
        return False
    statements = json.loads(answer["Policy"]).get("Statement") or []
    return any(s.get("Sid") == PUBLIC_SID for s in statements)
