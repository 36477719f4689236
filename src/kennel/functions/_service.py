"""Functions as resources: Lambda's control plane over the store, and the dispatcher's lookups.

Methods take validated request specs (``_spec``) and return Lambda's response shapes, so
the restJson routes (``api/routers/lambda_api.py``) are thin. Everything is synchronous:
a function is ``Active`` and an update ``Successful`` when the call returns (the code is
stored and checked by then; environments start on the first invocation).

The dispatcher's lookups (:meth:`FunctionService.resolve`, :meth:`url_config`,
:meth:`event_config` ...) are on every invocation's path, so they are cached; any change
made through this service bumps :attr:`FunctionService.generation`, which drops the
caches at once, and a cached entry is also dropped after ``cache_ttl`` seconds (changes
another server made to a shared database).
"""

from __future__ import annotations

import json
import re
import secrets
import string
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import delete, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session as DbSession

from kennel._errors import ValidationError
from kennel._settings import Settings
from kennel.functions import _shapes as shapes
from kennel.functions._code import (
    MAX_UNZIPPED_BYTES,
    StoredCode,
    check_zip,
    decode_zip_file,
    prune_code,
    sha256_base64,
    store_code,
)
from kennel.functions._errors import (
    InvalidParameterValueError,
    PreconditionFailedError,
    ProvisionedConcurrencyConfigNotFoundError,
    ResourceConflictError,
    ResourceNotFoundError,
)
from kennel.functions._names import (
    ALIAS,
    LATEST,
    VERSION,
    FunctionRef,
    function_arn,
    parse_function_name,
    validation_message,
)
from kennel.functions._permissions import build_statement, empty_policy
from kennel.functions._spec import (
    CodeSpec,
    ConcurrencySpec,
    CreateAliasSpec,
    CreateFunctionSpec,
    CreateUrlConfigSpec,
    EventInvokeConfigSpec,
    PermissionSpec,
    ProvisionedConcurrencySpec,
    PublishVersionSpec,
    RoutingConfigSpec,
    UpdateAliasSpec,
    UpdateCodeSpec,
    UpdateConfigurationSpec,
    UpdateUrlConfigSpec,
)
from kennel.iam._policy import AuthzRequest, evaluate
from kennel.iam._service import IamService
from kennel.store import (
    ArtifactStore,
    Database,
    LambdaAlias,
    LambdaEvent,
    LambdaEventConfig,
    LambdaFunction,
    LambdaLog,
    LambdaProvisioned,
    LambdaUrl,
    LambdaVersion,
    MetricSample,
    ResourcePolicy,
)

SUPPORTED_RUNTIMES = ("python3.11",)
LAMBDA_SERVICE = "lambda.amazonaws.com"
DEFAULT_MAX_RETRY_ATTEMPTS = 2
DEFAULT_MAX_EVENT_AGE_SECONDS = 21600
TOTAL_CODE_SIZE = 80_530_636_800
MAX_ENVIRONMENT_BYTES = 4096
RESERVED_ENVIRONMENT_KEYS = frozenset(
    {
        "_HANDLER",
        "_X_AMZN_TRACE_ID",
        "AWS_DEFAULT_REGION",
        "AWS_REGION",
        "AWS_EXECUTION_ENV",
        "AWS_LAMBDA_FUNCTION_NAME",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
        "AWS_LAMBDA_FUNCTION_VERSION",
        "AWS_LAMBDA_INITIALIZATION_TYPE",
        "AWS_LAMBDA_LOG_GROUP_NAME",
        "AWS_LAMBDA_LOG_STREAM_NAME",
        "AWS_ACCESS_KEY",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_LAMBDA_RUNTIME_API",
        "LAMBDA_TASK_ROOT",
        "LAMBDA_RUNTIME_DIR",
    }
)

_ROLE_ARN = r"arn:(aws[a-zA-Z-]*)?:iam::\d{12}:role/?[a-zA-Z_0-9+=,.@\-_/]+"
_ENV_KEY = r"[a-zA-Z]([a-zA-Z0-9_])+"
_UNQUALIFIED_ONLY = (
    "This operation is permitted on Lambda functions only. Aliases and versions do not "
    "support this operation. Please specify either a function name or an unqualified "
    "function ARN."
)
_UNRESERVED_BELOW_MINIMUM = (
    "Specified {what} for function decreases account's UnreservedConcurrentExecution below "
    "its minimum value of [{minimum}]."
)
_URL_ID_ALPHABET = string.ascii_lowercase + string.digits
_CACHE_LIMIT = 10_000

T = TypeVar("T")


def _now() -> datetime:
    return datetime.now(UTC)


def _new_revision() -> str:
    return str(uuid.uuid4())


@dataclass(frozen=True)
class ResolvedFunction:
    """What running one invocation needs: a function's version as the caller named it."""

    name: str
    function_arn: str
    """Unqualified."""
    qualifier: str | None
    """As asked: None, "$LATEST", "3" or an alias."""
    version: str
    """The version that runs: "$LATEST" or "3"."""
    invoked_arn: str
    """The ARN the caller used (qualified if it named a qualifier)."""
    handler: str
    runtime: str
    memory_mb: int
    timeout_s: int
    environment: dict[str, str]
    role: str
    code_uri: str
    code_sha256: str
    revision_id: str
    """Changes when (and only when) the code or configuration that runs does."""
    state: str
    reserved_concurrency: int | None


@dataclass(frozen=True)
class ProvisionedConfig:
    function: str
    qualifier: str
    requested: int
    allocated: int = 0
    status: str = "IN_PROGRESS"


@dataclass(frozen=True)
class UrlConfig:
    function: str
    qualifier: str | None
    """None for the function's own URL, else the alias it invokes."""
    auth_type: str
    cors: dict[str, Any]
    url_id: str
    invoke_mode: str = "BUFFERED"


@dataclass(frozen=True)
class EventConfig:
    max_retry_attempts: int = DEFAULT_MAX_RETRY_ATTEMPTS
    max_event_age_s: int = DEFAULT_MAX_EVENT_AGE_SECONDS
    on_success: str | None = None
    on_failure: str | None = None


@dataclass
class _Cache:
    """Lookups keyed by their arguments, valid for one generation and ``ttl`` seconds."""

    ttl: float
    clock: Callable[[], float]
    entries: dict[Any, tuple[int, float, Any]] = field(default_factory=dict)

    def peek(self, key: Any, generation: int) -> Any:
        """The cached value, or None: for the event loop, which must not read the database."""
        hit = self.entries.get(key)
        if hit is not None and hit[0] == generation and self.clock() - hit[1] < self.ttl:
            return hit[2]
        return None

    def get(self, key: Any, generation: int, load: Callable[[], T]) -> T:
        hit = self.entries.get(key)
        now = self.clock()
        if hit is not None and hit[0] == generation and now - hit[1] < self.ttl:
            value: T = hit[2]
            return value
        value = load()
        if len(self.entries) >= _CACHE_LIMIT:
            self.entries.clear()
        self.entries[key] = (generation, now, value)
        return value


class FunctionService:
    def __init__(
        self,
        db: Database,
        artifacts: ArtifactStore,
        iam: IamService,
        settings: Settings,
        *,
        account_id: str,
        region: str,
        clock: Callable[[], datetime] = _now,
        cache_ttl: float = 2.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.db = db
        self.artifacts = artifacts
        self.iam = iam
        self.settings = settings
        self.account_id = account_id
        self.region = region
        self.clock = clock
        self.generation = 0
        self._lock = threading.Lock()
        self._write = threading.RLock()
        self._resolved = _Cache(cache_ttl, monotonic)
        self._urls = _Cache(cache_ttl, monotonic)
        self._event_configs = _Cache(cache_ttl, monotonic)
        self._limits = _Cache(cache_ttl, monotonic)

    # --- helpers ---------------------------------------------------------------------

    def _changed(self) -> None:
        with self._lock:
            self.generation += 1

    @contextmanager
    def _writing(self) -> Iterator[DbSession]:
        """One change: serialised in this process, one transaction, then the caches drop."""
        with self._write:
            try:
                with self.db.session() as session:
                    yield session
            finally:
                self._changed()

    def arn(self, name: str, qualifier: str | None = None) -> str:
        return function_arn(self.region, self.account_id, name, qualifier)

    def ref(self, raw: str, qualifier: str | None = None) -> FunctionRef:
        """A function name, partial ARN or ARN (with an optional qualifier), checked."""
        return parse_function_name(raw, qualifier, account=self.account_id, region=self.region)

    def _unqualified(self, raw: str) -> str:
        found = self.ref(raw)
        if found.qualifier is not None:
            raise InvalidParameterValueError(_UNQUALIFIED_ONLY)
        return found.name

    def _function(self, session: DbSession, name: str) -> LambdaFunction:
        row = session.get(LambdaFunction, name)
        if row is None:
            raise ResourceNotFoundError(f"Function not found: {self.arn(name)}")
        return row

    def _version(self, session: DbSession, name: str, version: str) -> LambdaVersion:
        row = session.get(LambdaVersion, (name, int(version))) if VERSION.match(version) else None
        if row is None:
            raise ResourceNotFoundError(f"Function not found: {self.arn(name, version)}")
        return row

    def _alias(self, session: DbSession, name: str, alias: str) -> LambdaAlias:
        row = session.get(LambdaAlias, (name, alias))
        if row is None:
            raise ResourceNotFoundError(f"Cannot find alias arn: {self.arn(name, alias)}")
        return row

    def _config_row(
        self, session: DbSession, fn: LambdaFunction, version: str
    ) -> LambdaFunction | LambdaVersion:
        return fn if version == LATEST else self._version(session, fn.name, version)

    def _target(
        self, session: DbSession, fn: LambdaFunction, qualifier: str | None
    ) -> LambdaFunction | LambdaVersion | LambdaAlias:
        """What a qualifier names (its RevisionId is the one preconditions compare)."""
        if qualifier is None or qualifier == LATEST:
            return fn
        if VERSION.match(qualifier):
            return self._version(session, fn.name, qualifier)
        return self._alias(session, fn.name, qualifier)

    def _check_revision(self, expected: str | None, actual: str) -> None:
        if expected and expected != actual:
            raise PreconditionFailedError()

    # --- the dispatcher's lookups ----------------------------------------------------

    def resolve(self, name_or_arn: str, qualifier: str | None = None) -> ResolvedFunction:
        """The version a name (or ARN, or ``name:qualifier``) invokes; aliases followed.

        An alias's routing weights (AdditionalVersionWeights) are stored and shown but
        not used here: an alias always invokes its main version.
        """
        return self._resolved.get(
            (name_or_arn, qualifier),
            self.generation,
            lambda: self._resolve(name_or_arn, qualifier),
        )

    def cached_resolve(
        self, name_or_arn: str, qualifier: str | None = None
    ) -> ResolvedFunction | None:
        """:meth:`resolve` if its answer is cached, else None (never reads the database)."""
        value: ResolvedFunction | None = self._resolved.peek(
            (name_or_arn, qualifier), self.generation
        )
        return value

    def _resolve(self, name_or_arn: str, qualifier: str | None) -> ResolvedFunction:
        ref = self.ref(name_or_arn, qualifier)
        with self.db.session() as session:
            fn = self._function(session, ref.name)
            version = LATEST if ref.qualifier is None else ref.qualifier
            if not (version == LATEST or VERSION.match(version)):
                alias = session.get(LambdaAlias, (ref.name, version))
                if alias is None:
                    raise ResourceNotFoundError(
                        f"Function not found: {self.arn(ref.name, ref.qualifier)}"
                    )
                version = alias.function_version
            row = self._config_row(session, fn, version)
            return ResolvedFunction(
                name=fn.name,
                function_arn=self.arn(fn.name),
                qualifier=ref.qualifier,
                version=version,
                invoked_arn=self.arn(fn.name, ref.qualifier),
                handler=row.handler,
                runtime=row.runtime,
                memory_mb=row.memory_mb,
                timeout_s=row.timeout_s,
                environment={str(k): str(v) for k, v in row.environment.items()},
                role=row.role,
                code_uri=row.code_uri,
                code_sha256=row.code_sha256,
                revision_id=row.config_revision,
                state=fn.state,
                reserved_concurrency=fn.reserved_concurrency,
            )

    def provisioned_configs(self) -> list[ProvisionedConfig]:
        with self.db.session() as session:
            rows = session.scalars(
                select(LambdaProvisioned).order_by(
                    LambdaProvisioned.function, LambdaProvisioned.qualifier
                )
            ).all()
            return [
                ProvisionedConfig(r.function, r.qualifier, r.requested, r.allocated, r.status)
                for r in rows
            ]

    def recover(self) -> list[tuple[str, str]]:
        """After a restart no provisioned environment is allocated (they ended with the
        previous server): say so until the dispatcher has started them again. Returns the
        (function, qualifier) configs reset."""
        with self.db.session() as session:
            rows = session.scalars(
                select(LambdaProvisioned).where(LambdaProvisioned.allocated > 0)
            ).all()
            for row in rows:
                row.allocated = 0
                row.status = "IN_PROGRESS"
                row.status_reason = ""
                row.last_modified = self.clock()
            return [(row.function, row.qualifier) for row in rows]

    def set_provisioned_state(
        self, function: str, qualifier: str, allocated: int, status: str, reason: str = ""
    ) -> None:
        """Record how far the dispatcher got (IN_PROGRESS, READY or FAILED with a reason).

        Not a configuration change: it leaves :attr:`generation` alone.
        """
        with self.db.session() as session:
            row = session.get(LambdaProvisioned, (function, qualifier))
            if row is None:
                return
            if (row.allocated, row.status, row.status_reason) != (allocated, status, reason):
                row.allocated = allocated
                row.status = status
                row.status_reason = reason
                row.last_modified = self.clock()

    def url_config(self, name: str) -> UrlConfig | None:
        """The URL config for ``/fn/<name>/`` (or ``/fn/<name>:<alias>/``); None if none."""
        return self._urls.get(name, self.generation, lambda: self._url_config(name))

    def _url_config(self, path_name: str) -> UrlConfig | None:
        name, _, alias = path_name.partition(":")
        with self.db.session() as session:
            row = session.get(LambdaUrl, (name, alias))
            if row is None:
                return None
            return UrlConfig(
                function=row.function,
                qualifier=row.qualifier or None,
                auth_type=row.auth_type,
                cors=dict(row.cors or {}),
                url_id=row.url_id,
                invoke_mode=row.invoke_mode,
            )

    def event_config(self, name: str, qualifier: str | None) -> tuple[int, int]:
        """(MaximumRetryAttempts, MaximumEventAgeInSeconds) for asynchronous invocations."""
        config = self.event_invoke_config(name, qualifier)
        return config.max_retry_attempts, config.max_event_age_s

    def event_invoke_config(self, name: str, qualifier: str | None) -> EventConfig:
        return self._event_configs.get(
            (name, qualifier), self.generation, lambda: self._event_config(name, qualifier)
        )

    def _event_config(self, raw: str, qualifier: str | None) -> EventConfig:
        ref = self.ref(raw, qualifier)
        with self.db.session() as session:
            row = session.get(LambdaEventConfig, (ref.name, ref.qualifier or LATEST))
            if row is None:
                return EventConfig()
            destinations = row.destination_config or {}
            return EventConfig(
                max_retry_attempts=DEFAULT_MAX_RETRY_ATTEMPTS
                if row.max_retry_attempts is None
                else row.max_retry_attempts,
                max_event_age_s=row.max_event_age_s or DEFAULT_MAX_EVENT_AGE_SECONDS,
                on_success=(destinations.get("OnSuccess") or {}).get("Destination"),
                on_failure=(destinations.get("OnFailure") or {}).get("Destination"),
            )

    def concurrency_limits(self) -> tuple[int, int]:
        """(the account's concurrency limit, what reservations must leave unreserved)."""
        return self.settings.function_concurrency_limit, self.settings.function_unreserved_min

    def reserved_total(self) -> int:
        """The sum of all functions' reserved concurrency."""
        return self._limits.get("reserved", self.generation, self._reserved_total)

    def _reserved_total(self, session: DbSession | None = None, *, but: str = "") -> int:
        query = select(func.coalesce(func.sum(LambdaFunction.reserved_concurrency), 0)).where(
            LambdaFunction.name != but
        )
        if session is not None:
            return int(session.scalar(query) or 0)
        with self.db.session() as own:
            return int(own.scalar(query) or 0)

    # --- checks shared by create and update ------------------------------------------

    def check_role(self, role_arn: str) -> None:
        """The role must be a role ARN whose trust policy lets Lambda assume it."""
        if not re.fullmatch(_ROLE_ARN, role_arn):
            raise ValidationError(
                validation_message(
                    role_arn, "role", f"Member must satisfy regular expression pattern: {_ROLE_ARN}"
                )
            )
        trust = self.iam.trust_policy(role_arn)
        request = AuthzRequest(LAMBDA_SERVICE, "sts:AssumeRole", role_arn, {})
        if trust is None or not evaluate(request, [], resource_policy=trust).allowed:
            raise InvalidParameterValueError(
                "The role defined for the function cannot be assumed by Lambda.",
                hint=f"Give {role_arn} a trust policy that allows {LAMBDA_SERVICE} "
                "to sts:AssumeRole.",
            )

    @staticmethod
    def _check_runtime(runtime: str) -> None:
        if runtime not in SUPPORTED_RUNTIMES:
            raise InvalidParameterValueError(
                f"Value {runtime} at 'runtime' failed to satisfy constraint: Member must "
                f"satisfy enum value set: [{', '.join(SUPPORTED_RUNTIMES)}] or be a valid ARN",
                hint="kennel runs Python 3.11 handlers (Runtime python3.11).",
            )

    @staticmethod
    def _check_environment(variables: dict[str, str]) -> None:
        for key in variables:
            if not re.fullmatch(_ENV_KEY, key):
                raise ValidationError(
                    "1 validation error detected: Value at 'environment.variables' failed to "
                    "satisfy constraint: Map keys must satisfy constraint: [Member must satisfy "
                    f"regular expression pattern: {_ENV_KEY}]"
                )
        reserved = sorted(k for k in variables if k in RESERVED_ENVIRONMENT_KEYS)
        if reserved:
            raise InvalidParameterValueError(
                "Lambda was unable to configure your environment variables because the "
                "environment variables you have provided contains reserved keys that are "
                "currently not supported for modification. Reserved keys used in this request: "
                + ", ".join(reserved)
            )
        measured = shapes.compact(variables)
        if len(measured.encode()) > MAX_ENVIRONMENT_BYTES:
            raise InvalidParameterValueError(
                "Lambda was unable to configure your environment variables because the "
                "environment variables you have provided exceeded the 4KB limit. "
                f"String measured: {measured}"
            )

    @staticmethod
    def _no_layers(layers: Sequence[str] | None) -> None:
        if layers:
            raise InvalidParameterValueError(
                "kennel does not support Layers.",
                hint="Put the layer's packages in the deployment package instead.",
            )

    def _zip(self, code: CodeSpec) -> bytes:
        if code.zip_file is None:
            raise InvalidParameterValueError(
                "Please provide a ZipFile: kennel takes deployment packages inline "
                "(S3Bucket/S3Key and ImageUri are not supported).",
                hint="boto3: Code={'ZipFile': open('function.zip', 'rb').read()}",
            )
        return decode_zip_file(code.zip_file)

    def _store(self, name: str, data: bytes) -> StoredCode:
        return store_code(
            self.artifacts, name, data, max_zip_bytes=self.settings.function_max_zip_bytes
        )

    # --- functions -------------------------------------------------------------------

    def create_function(self, spec: CreateFunctionSpec) -> dict[str, Any]:
        ref = self.ref(spec.function_name)
        if ref.qualifier is not None:
            raise InvalidParameterValueError(_UNQUALIFIED_ONLY)
        name = ref.name
        if spec.package_type != "Zip":
            raise InvalidParameterValueError(
                "kennel runs .zip deployment packages only (PackageType Zip)."
            )
        if not spec.runtime or not spec.handler:
            raise InvalidParameterValueError(
                "Runtime and Handler are mandatory parameters for functions created with "
                "deployment packages."
            )
        self._check_runtime(spec.runtime)
        self._no_layers(spec.layers)
        variables = spec.environment.variables if spec.environment else {}
        self._check_environment(variables)
        self.check_role(spec.role)
        data = self._zip(spec.code)
        with self.db.session() as session:
            if session.get(LambdaFunction, name) is not None:
                raise ResourceConflictError(f"Function already exist: {name}")
        code = self._store(name, data)
        now = self.clock()
        try:
            with self._writing() as session:
                session.add(
                    LambdaFunction(
                        name=name,
                        arn=self.arn(name),
                        description=spec.description,
                        role=spec.role,
                        handler=spec.handler,
                        runtime=spec.runtime,
                        memory_mb=spec.memory_size,
                        timeout_s=spec.timeout,
                        environment=dict(variables),
                        code_uri=code.uri,
                        code_sha256=code.sha256,
                        code_size=code.size,
                        architecture=(spec.architectures or ["x86_64"])[0],
                        tags=dict(spec.tags or {}),
                        state="Active",
                        state_reason="",
                        last_update_status="Successful",
                        revision_id=_new_revision(),
                        config_revision=_new_revision(),
                        reserved_concurrency=None,
                        next_version=1,
                        created_at=now,
                        last_modified=now,
                    )
                )
        except IntegrityError:
            raise ResourceConflictError(f"Function already exist: {name}") from None
        if spec.publish:
            published = self.publish_version(name, PublishVersionSpec())
            published["FunctionArn"] = self.arn(name)
            return published
        return self.get_function_configuration(name)

    def get_function(self, raw: str, qualifier: str | None = None) -> dict[str, Any]:
        ref = self.ref(raw, qualifier)
        with self.db.session() as session:
            fn = self._function(session, ref.name)
            answer: dict[str, Any] = {
                "Configuration": self._configuration(session, fn, ref.qualifier),
                "Code": {"RepositoryType": "S3", "Location": self._code_location(session, fn, ref)},
            }
            if fn.tags:
                answer["Tags"] = dict(fn.tags)
            if fn.reserved_concurrency is not None:
                answer["Concurrency"] = {"ReservedConcurrentExecutions": fn.reserved_concurrency}
            return answer

    def _code_location(self, session: DbSession, fn: LambdaFunction, ref: FunctionRef) -> str:
        """Where the package is (an artifact store URI: kennel has no presigned S3 URLs)."""
        version = self._version_of(session, fn, ref.qualifier)
        return self._config_row(session, fn, version).code_uri

    def _version_of(self, session: DbSession, fn: LambdaFunction, qualifier: str | None) -> str:
        if qualifier is None or qualifier == LATEST or VERSION.match(qualifier):
            return qualifier or LATEST
        alias = session.get(LambdaAlias, (fn.name, qualifier))
        if alias is None:
            raise ResourceNotFoundError(f"Function not found: {self.arn(fn.name, qualifier)}")
        return alias.function_version

    def get_function_configuration(self, raw: str, qualifier: str | None = None) -> dict[str, Any]:
        ref = self.ref(raw, qualifier)
        with self.db.session() as session:
            fn = self._function(session, ref.name)
            return self._configuration(session, fn, ref.qualifier)

    def _configuration(
        self, session: DbSession, fn: LambdaFunction, qualifier: str | None
    ) -> dict[str, Any]:
        version = self._version_of(session, fn, qualifier)
        row = self._config_row(session, fn, version)
        return shapes.configuration(row, function=fn, arn=self.arn(fn.name, qualifier))

    def list_functions(
        self,
        function_version: str | None = None,
        marker: str | None = None,
        max_items: int | None = None,
    ) -> dict[str, Any]:
        if function_version not in (None, "ALL"):
            raise ValidationError(
                validation_message(
                    function_version, "functionVersion", "Member must satisfy enum value set: [ALL]"
                )
            )
        with self.db.session() as session:
            functions = session.scalars(select(LambdaFunction).order_by(LambdaFunction.name)).all()
            items: list[dict[str, Any]] = []
            for fn in functions:
                if function_version == "ALL":
                    items.append(
                        shapes.configuration(
                            fn, function=fn, arn=self.arn(fn.name, LATEST), listing=True
                        )
                    )
                    items += [
                        shapes.configuration(
                            v, function=fn, arn=self.arn(fn.name, str(v.version)), listing=True
                        )
                        for v in self._versions(session, fn.name)
                    ]
                else:
                    items.append(shapes.configuration(fn, function=fn, arn=fn.arn, listing=True))
        page, next_marker = _page(items, "FunctionArn", marker, max_items, default=50)
        return _with_marker({"Functions": page}, next_marker)

    def _versions(self, session: DbSession, name: str) -> Sequence[LambdaVersion]:
        return session.scalars(
            select(LambdaVersion)
            .where(LambdaVersion.function == name)
            .order_by(LambdaVersion.version)
        ).all()

    def update_function_configuration(
        self, raw: str, spec: UpdateConfigurationSpec
    ) -> dict[str, Any]:
        name = self._unqualified(raw)
        given = spec.model_fields_set
        if spec.runtime is not None:
            self._check_runtime(spec.runtime)
        self._no_layers(spec.layers)
        if spec.environment is not None:
            self._check_environment(spec.environment.variables)
        if spec.role is not None:
            self.check_role(spec.role)
        with self._writing() as session:
            fn = self._function(session, name)
            self._check_revision(spec.revision_id, fn.revision_id)
            if spec.role is not None:
                fn.role = spec.role
            if spec.handler is not None:
                fn.handler = spec.handler
            if spec.runtime is not None:
                fn.runtime = spec.runtime
            if spec.description is not None:
                fn.description = spec.description
            if spec.timeout is not None:
                fn.timeout_s = spec.timeout
            if spec.memory_size is not None:
                fn.memory_mb = spec.memory_size
            if "environment" in given:
                fn.environment = dict(spec.environment.variables) if spec.environment else {}
            self._touch(fn)
            return shapes.configuration(fn, function=fn, arn=fn.arn)

    def _touch(self, fn: LambdaFunction) -> None:
        """$LATEST's code or configuration changed."""
        fn.revision_id = _new_revision()
        fn.config_revision = _new_revision()
        fn.last_modified = self.clock()
        fn.last_update_status = "Successful"

    def update_function_code(self, raw: str, spec: UpdateCodeSpec) -> dict[str, Any]:
        name = self._unqualified(raw)
        data = self._zip(spec)
        with self.db.session() as session:
            fn = self._function(session, name)
            self._check_revision(spec.revision_id, fn.revision_id)
        if spec.dry_run:
            check_zip(data, self.settings.function_max_zip_bytes)
            return self.get_function_configuration(name)
        code = self._store(name, data)
        with self._writing() as session:
            fn = self._function(session, name)
            self._check_revision(spec.revision_id, fn.revision_id)
            previous = fn.code_sha256
            fn.code_uri, fn.code_sha256, fn.code_size = code.uri, code.sha256, code.size
            if spec.architectures:
                fn.architecture = spec.architectures[0]
            self._touch(fn)
            keep = {code.sha256, previous} | {v.code_sha256 for v in self._versions(session, name)}
            shape = shapes.configuration(fn, function=fn, arn=fn.arn)
        # The package $LATEST ran until now stays: an environment may be starting from it.
        prune_code(self.artifacts, name, keep)
        if spec.publish:
            return self.publish_version(name, PublishVersionSpec())
        return shape

    def delete_function(self, raw: str, qualifier: str | None = None) -> None:
        ref = self.ref(raw, qualifier)
        if ref.qualifier == LATEST:
            raise InvalidParameterValueError(
                "$LATEST version cannot be deleted without deleting the function."
            )
        if ref.qualifier is not None:
            self._delete_version(ref.name, ref.qualifier)
            return
        with self._writing() as session:
            self._function(session, ref.name)
            for table in (
                LambdaVersion,
                LambdaAlias,
                LambdaProvisioned,
                LambdaUrl,
                LambdaEventConfig,
                LambdaEvent,
                LambdaLog,
            ):
                session.execute(delete(table).where(table.function == ref.name))
            session.execute(delete(LambdaFunction).where(LambdaFunction.name == ref.name))
            session.execute(
                delete(MetricSample).where(MetricSample.resource == f"function/{ref.name}")
            )
            policies = self._policy_arns(session, ref.name)
        for arn in policies:
            self.iam.delete_resource_policy(arn)
        self.artifacts.delete(f"functions/{ref.name}")

    def _policy_arns(
        self, session: DbSession, name: str, qualifier: str | None = None
    ) -> list[str]:
        """The function's resource policies (only the qualifier's when one is given)."""
        arn = self.arn(name, qualifier)
        condition = (
            ResourcePolicy.resource_arn == arn
            if qualifier
            else or_(
                ResourcePolicy.resource_arn == arn,
                ResourcePolicy.resource_arn.startswith(f"{arn}:", autoescape=True),
            )
        )
        return list(session.scalars(select(ResourcePolicy.resource_arn).where(condition)).all())

    def _delete_version(self, name: str, qualifier: str) -> None:
        if not VERSION.match(qualifier):
            raise InvalidParameterValueError(
                "Deletion of aliases is not supported by DeleteFunction; use DeleteAlias."
            )
        with self._writing() as session:
            self._function(session, name)
            version = self._version(session, name, qualifier)
            users = [
                a.name
                for a in session.scalars(select(LambdaAlias).where(LambdaAlias.function == name))
                if a.function_version == qualifier
                or qualifier in (a.routing_config or {}).get("AdditionalVersionWeights", {})
            ]
            if users:
                raise ResourceConflictError(
                    "Unable to delete version because the following aliases reference it: "
                    f"[{', '.join(users)}]"
                )
            for table in (LambdaProvisioned, LambdaEventConfig):
                session.execute(
                    delete(table).where(table.function == name, table.qualifier == qualifier)
                )
            session.delete(version)
            policies = self._policy_arns(session, name, qualifier)
        for arn in policies:
            self.iam.delete_resource_policy(arn)

    # --- versions --------------------------------------------------------------------

    def publish_version(self, raw: str, spec: PublishVersionSpec) -> dict[str, Any]:
        """Publish $LATEST as a new version, unless nothing changed since the last one."""
        name = self._unqualified(raw)
        with self._writing() as session:
            fn = self._function(session, name)
            self._check_revision(spec.revision_id, fn.revision_id)
            current = sha256_base64(fn.code_sha256)
            if spec.code_sha256 and spec.code_sha256 != current:
                raise InvalidParameterValueError(
                    f"CodeSHA256 ({spec.code_sha256}) is different from current CodeSHA256 in "
                    f"$LATEST ({current}). Please try again with the CodeSHA256 in $LATEST."
                )
            last = session.scalars(
                select(LambdaVersion)
                .where(LambdaVersion.function == name)
                .order_by(LambdaVersion.version.desc())
                .limit(1)
            ).first()
            if last is not None and last.config_revision == fn.config_revision:
                return shapes.configuration(
                    last, function=fn, arn=self.arn(name, str(last.version))
                )
            number = max(fn.next_version, (last.version + 1) if last else 1)
            version = LambdaVersion(
                function=name,
                version=number,
                description=fn.description if spec.description is None else spec.description,
                role=fn.role,
                handler=fn.handler,
                runtime=fn.runtime,
                memory_mb=fn.memory_mb,
                timeout_s=fn.timeout_s,
                environment=dict(fn.environment),
                code_uri=fn.code_uri,
                code_sha256=fn.code_sha256,
                code_size=fn.code_size,
                architecture=fn.architecture,
                revision_id=_new_revision(),
                config_revision=fn.config_revision,
                created_at=self.clock(),
            )
            session.add(version)
            fn.next_version = number + 1
            fn.revision_id = _new_revision()
            session.flush()
            return shapes.configuration(version, function=fn, arn=self.arn(name, str(number)))

    def list_versions(
        self, raw: str, marker: str | None = None, max_items: int | None = None
    ) -> dict[str, Any]:
        name = self._unqualified(raw)
        with self.db.session() as session:
            fn = self._function(session, name)
            items = [
                shapes.configuration(fn, function=fn, arn=self.arn(name, LATEST), listing=True)
            ]
            items += [
                shapes.configuration(
                    v, function=fn, arn=self.arn(name, str(v.version)), listing=True
                )
                for v in self._versions(session, name)
            ]
        page, next_marker = _page(items, "FunctionArn", marker, max_items, default=50)
        return _with_marker({"Versions": page}, next_marker)

    # --- aliases ---------------------------------------------------------------------

    def _check_alias_target(
        self, session: DbSession, name: str, version: str, routing: RoutingConfigSpec | None
    ) -> dict[str, Any]:
        if version != LATEST:
            self._version(session, name, version)
        weights = routing.additional_version_weights if routing else {}
        if len(weights) > 1:
            raise InvalidParameterValueError(
                "Number of items in AdditionalVersionWeights cannot be greater than 1"
            )
        for key, weight in weights.items():
            if not 0.0 <= weight <= 1.0:
                raise ValidationError(
                    validation_message(
                        f"{{{key}={weight}}}",
                        "routingConfig.additionalVersionWeights",
                        "Map value must satisfy constraint: [Member must have value less than or "
                        "equal to 1.0, Member must have value greater than or equal to 0.0, "
                        "Member must not be null]",
                    )
                )
            if key == version:
                raise InvalidParameterValueError(
                    f"Invalid function version {version}. Function version {version} is already "
                    "included in routing configuration."
                )
            if version == LATEST:
                raise InvalidParameterValueError(
                    "$LATEST is not supported for an alias pointing to more than 1 version"
                )
            self._version(session, name, key)
        return {"AdditionalVersionWeights": dict(weights)} if weights else {}

    def create_alias(self, raw: str, spec: CreateAliasSpec) -> dict[str, Any]:
        name = self._unqualified(raw)
        if not ALIAS.match(spec.name):
            raise ValidationError(
                validation_message(
                    spec.name,
                    "name",
                    "Member must satisfy regular expression pattern: (?!^[0-9]+$)([a-zA-Z0-9-_]+)",
                )
            )
        with self._writing() as session:
            self._function(session, name)
            routing = self._check_alias_target(
                session, name, spec.function_version, spec.routing_config
            )
            if session.get(LambdaAlias, (name, spec.name)) is not None:
                raise ResourceConflictError(f"Alias already exists: {self.arn(name, spec.name)}")
            row = LambdaAlias(
                function=name,
                name=spec.name,
                function_version=spec.function_version,
                description=spec.description,
                routing_config=routing,
                revision_id=_new_revision(),
                created_at=self.clock(),
            )
            session.add(row)
            return shapes.alias(row, self.arn(name, spec.name))

    def get_alias(self, raw: str, alias: str) -> dict[str, Any]:
        name = self._unqualified(raw)
        with self.db.session() as session:
            self._function(session, name)
            return shapes.alias(self._alias(session, name, alias), self.arn(name, alias))

    def list_aliases(
        self,
        raw: str,
        function_version: str | None = None,
        marker: str | None = None,
        max_items: int | None = None,
    ) -> dict[str, Any]:
        name = self._unqualified(raw)
        with self.db.session() as session:
            self._function(session, name)
            query = select(LambdaAlias).where(LambdaAlias.function == name)
            if function_version is not None:
                query = query.where(LambdaAlias.function_version == function_version)
            rows = session.scalars(query.order_by(LambdaAlias.name)).all()
            items = [shapes.alias(r, self.arn(name, r.name)) for r in rows]
        page, next_marker = _page(items, "AliasArn", marker, max_items, default=50)
        return _with_marker({"Aliases": page}, next_marker)

    def update_alias(self, raw: str, alias: str, spec: UpdateAliasSpec) -> dict[str, Any]:
        name = self._unqualified(raw)
        with self._writing() as session:
            self._function(session, name)
            row = self._alias(session, name, alias)
            self._check_revision(spec.revision_id, row.revision_id)
            version = spec.function_version or row.function_version
            routing = (
                spec.routing_config
                if spec.routing_config is not None
                else RoutingConfigSpec.model_validate(row.routing_config or {})
            )
            checked = self._check_alias_target(session, name, version, routing)
            if version != row.function_version:
                provisioned = session.get(LambdaProvisioned, (name, alias))
                if provisioned is not None:
                    # The alias's environments are for the old version: provision anew.
                    provisioned.allocated, provisioned.status = 0, "IN_PROGRESS"
                    provisioned.status_reason = ""
                    provisioned.last_modified = self.clock()
            row.function_version = version
            row.routing_config = checked
            if spec.description is not None:
                row.description = spec.description
            row.revision_id = _new_revision()
            return shapes.alias(row, self.arn(name, alias))

    def delete_alias(self, raw: str, alias: str) -> None:
        name = self._unqualified(raw)
        with self._writing() as session:
            self._function(session, name)
            row = self._alias(session, name, alias)
            for table in (LambdaProvisioned, LambdaUrl, LambdaEventConfig):
                session.execute(
                    delete(table).where(table.function == name, table.qualifier == alias)
                )
            session.delete(row)
            policies = self._policy_arns(session, name, alias)
        for arn in policies:
            self.iam.delete_resource_policy(arn)

    # --- concurrency -----------------------------------------------------------------

    def put_function_concurrency(self, raw: str, spec: ConcurrencySpec) -> dict[str, Any]:
        name = self._unqualified(raw)
        wanted = spec.reserved_concurrent_executions
        limit, minimum = self.concurrency_limits()
        with self._writing() as session:
            fn = self._function(session, name)
            others = self._reserved_total(session, but=name)
            if limit - others - wanted < minimum:
                raise InvalidParameterValueError(
                    _UNRESERVED_BELOW_MINIMUM.format(
                        what="ReservedConcurrentExecutions", minimum=minimum
                    )
                )
            provisioned = self._provisioned_total(session, name)
            if provisioned > wanted:
                raise InvalidParameterValueError(
                    f" ReservedConcurrentExecutions  {wanted} should not be lower than "
                    f"function's total provisioned concurrency [{provisioned}]."
                )
            fn.reserved_concurrency = wanted
        return {"ReservedConcurrentExecutions": wanted}

    def get_function_concurrency(self, raw: str) -> dict[str, Any]:
        name = self._unqualified(raw)
        with self.db.session() as session:
            fn = self._function(session, name)
            if fn.reserved_concurrency is None:
                return {}
            return {"ReservedConcurrentExecutions": fn.reserved_concurrency}

    def delete_function_concurrency(self, raw: str) -> None:
        name = self._unqualified(raw)
        with self._writing() as session:
            self._function(session, name).reserved_concurrency = None

    def _provisioned_total(self, session: DbSession, name: str, *, but: str = "") -> int:
        query = select(func.coalesce(func.sum(LambdaProvisioned.requested), 0)).where(
            LambdaProvisioned.function == name, LambdaProvisioned.qualifier != but
        )
        return int(session.scalar(query) or 0)

    def _provisioned_qualifier(self, raw: str, qualifier: str | None) -> tuple[str, str]:
        ref = self.ref(raw, qualifier)
        if ref.qualifier is None:
            raise ValidationError(
                "1 validation error detected: Value null at 'qualifier' failed to satisfy "
                "constraint: Member must not be null"
            )
        return ref.name, ref.qualifier

    def _check_provisioned_target(self, session: DbSession, name: str, qualifier: str) -> None:
        if VERSION.match(qualifier):
            self._version(session, name, qualifier)
        elif ALIAS.match(qualifier):
            self._alias(session, name, qualifier)
        else:
            raise ResourceNotFoundError(f"Function not found: {self.arn(name, qualifier)}")

    def put_provisioned_concurrency(
        self, raw: str, qualifier: str | None, spec: ProvisionedConcurrencySpec
    ) -> dict[str, Any]:
        name, qualifier = self._provisioned_qualifier(raw, qualifier)
        if qualifier == LATEST:
            raise InvalidParameterValueError(
                "Provisioned Concurrency Configs cannot be applied to unpublished function "
                "versions."
            )
        wanted = spec.provisioned_concurrent_executions
        limit, minimum = self.concurrency_limits()
        with self._writing() as session:
            fn = self._function(session, name)
            self._check_provisioned_target(session, name, qualifier)
            self._check_provisioned_overlap(session, name, qualifier)
            same_function = self._provisioned_total(session, name, but=qualifier)
            if fn.reserved_concurrency is not None:
                if fn.reserved_concurrency < same_function + wanted:
                    raise InvalidParameterValueError(
                        "Requested Provisioned Concurrency should not be greater than the "
                        "reservedConcurrentExecution for function"
                    )
            else:
                if wanted > limit:
                    raise InvalidParameterValueError(
                        "Specified ConcurrentExecutions for function is greater than account's "
                        f"unreserved concurrency [{limit}]."
                    )
                unreserved = (
                    limit
                    - self._reserved_total(session)
                    - self._unreserved_provisioned(session, but=(name, qualifier))
                )
                if unreserved - wanted < minimum:
                    raise InvalidParameterValueError(
                        _UNRESERVED_BELOW_MINIMUM.format(
                            what="ConcurrentExecutions", minimum=minimum
                        )
                    )
            row = session.get(LambdaProvisioned, (name, qualifier))
            now = self.clock()
            if row is None:
                row = LambdaProvisioned(
                    function=name, qualifier=qualifier, requested=wanted, allocated=0
                )
                session.add(row)
            row.requested = wanted
            row.allocated = min(row.allocated or 0, wanted)
            row.status = "READY" if row.allocated >= wanted else "IN_PROGRESS"
            row.status_reason = ""
            row.last_modified = now
            session.flush()
            shape = shapes.provisioned(row)
            shape.pop("StatusReason", None)
            return shape

    def _check_provisioned_overlap(self, session: DbSession, name: str, qualifier: str) -> None:
        """One version's environments are provisioned through it or one alias, not both."""
        if VERSION.match(qualifier):
            for alias in session.scalars(
                select(LambdaAlias).where(
                    LambdaAlias.function == name, LambdaAlias.function_version == qualifier
                )
            ):
                if session.get(LambdaProvisioned, (name, alias.name)) is not None:
                    raise ResourceConflictError(
                        "Version is pointed by a Provisioned Concurrency alias"
                    )
        else:
            alias = self._alias(session, name, qualifier)
            if session.get(LambdaProvisioned, (name, alias.function_version)) is not None:
                raise ResourceConflictError(
                    "Alias can't be used for Provisioned Concurrency configuration on an already "
                    "Provisioned version"
                )

    def _unreserved_provisioned(self, session: DbSession, *, but: tuple[str, str]) -> int:
        """Provisioned concurrency of functions without a reservation (it is unreserved)."""
        rows = session.execute(
            select(
                LambdaProvisioned.function, LambdaProvisioned.qualifier, LambdaProvisioned.requested
            )
            .join(LambdaFunction, LambdaFunction.name == LambdaProvisioned.function)
            .where(LambdaFunction.reserved_concurrency.is_(None))
        ).all()
        return sum(requested for fn, q, requested in rows if (fn, q) != but)

    def get_provisioned_concurrency(self, raw: str, qualifier: str | None) -> dict[str, Any]:
        name, qualifier = self._provisioned_qualifier(raw, qualifier)
        if qualifier == LATEST:
            raise InvalidParameterValueError(
                "The function resource provided must be an alias or a published version."
            )
        with self.db.session() as session:
            self._function(session, name)
            self._check_provisioned_target(session, name, qualifier)
            row = session.get(LambdaProvisioned, (name, qualifier))
            if row is None:
                raise ProvisionedConcurrencyConfigNotFoundError(
                    "No Provisioned Concurrency Config found for this function"
                )
            return shapes.provisioned(row)

    def list_provisioned_concurrency(
        self, raw: str, marker: str | None = None, max_items: int | None = None
    ) -> dict[str, Any]:
        name = self._unqualified(raw)
        with self.db.session() as session:
            self._function(session, name)
            rows = session.scalars(
                select(LambdaProvisioned)
                .where(LambdaProvisioned.function == name)
                .order_by(LambdaProvisioned.qualifier)
            ).all()
            items = [shapes.provisioned(r, self.arn(name, r.qualifier)) for r in rows]
        page, next_marker = _page(items, "FunctionArn", marker, max_items, default=50)
        return _with_marker({"ProvisionedConcurrencyConfigs": page}, next_marker)

    def delete_provisioned_concurrency(self, raw: str, qualifier: str | None) -> None:
        name, qualifier = self._provisioned_qualifier(raw, qualifier)
        if qualifier == LATEST:
            raise InvalidParameterValueError(
                "The function resource provided must be an alias or a published version."
            )
        with self._writing() as session:
            self._function(session, name)
            self._check_provisioned_target(session, name, qualifier)
            session.execute(
                delete(LambdaProvisioned).where(
                    LambdaProvisioned.function == name, LambdaProvisioned.qualifier == qualifier
                )
            )

    def account_settings(self) -> dict[str, Any]:
        limit, _minimum = self.concurrency_limits()
        with self.db.session() as session:
            count = int(session.scalar(select(func.count()).select_from(LambdaFunction)) or 0)
            latest = session.execute(
                select(LambdaFunction.name, LambdaFunction.code_sha256, LambdaFunction.code_size)
            ).all()
            published = session.execute(
                select(LambdaVersion.function, LambdaVersion.code_sha256, LambdaVersion.code_size)
            ).all()
            reserved = self._reserved_total(session)
        stored = {(name, sha): size for name, sha, size in [*latest, *published]}
        return {
            "AccountLimit": {
                "TotalCodeSize": TOTAL_CODE_SIZE,
                "CodeSizeUnzipped": MAX_UNZIPPED_BYTES,
                "CodeSizeZipped": self.settings.function_max_zip_bytes,
                "ConcurrentExecutions": limit,
                "UnreservedConcurrentExecutions": limit - reserved,
            },
            "AccountUsage": {"TotalCodeSize": sum(stored.values()), "FunctionCount": count},
        }

    # --- function URLs ---------------------------------------------------------------

    @staticmethod
    def function_url(base_url: str, name: str, qualifier: str | None) -> str:
        path = f"{name}:{qualifier}" if qualifier else name
        return f"{base_url.rstrip('/')}/fn/{path}/"

    def _url_qualifier(self, raw: str, qualifier: str | None) -> FunctionRef:
        ref = self.ref(raw, qualifier)
        if ref.qualifier is not None and not ALIAS.match(ref.qualifier):
            raise ValidationError(
                validation_message(
                    ref.qualifier,
                    "qualifier",
                    r"Member must satisfy regular expression pattern: ((?!^\d+$)^[0-9a-zA-Z-_]+$)",
                )
            )
        return ref

    def _url_row(self, session: DbSession, ref: FunctionRef) -> LambdaUrl:
        if session.get(LambdaFunction, ref.name) is None:
            raise ResourceNotFoundError("The resource you requested does not exist.")
        row = session.get(LambdaUrl, (ref.name, ref.qualifier or ""))
        if row is None:
            raise ResourceNotFoundError("The resource you requested does not exist.")
        return row

    def create_url_config(
        self, raw: str, qualifier: str | None, spec: CreateUrlConfigSpec, *, base_url: str
    ) -> dict[str, Any]:
        ref = self._url_qualifier(raw, qualifier)
        arn = self.arn(ref.name, ref.qualifier)
        with self._writing() as session:
            if session.get(LambdaFunction, ref.name) is None:
                raise ResourceNotFoundError("Function does not exist")
            if session.get(LambdaUrl, (ref.name, ref.qualifier or "")) is not None:
                raise ResourceConflictError(
                    f"Failed to create function url config for [functionArn = {arn}]. "
                    "Error message:  FunctionUrlConfig exists for this Lambda function"
                )
            if ref.qualifier and session.get(LambdaAlias, (ref.name, ref.qualifier)) is None:
                raise ResourceNotFoundError("Function does not exist")
            now = self.clock()
            row = LambdaUrl(
                function=ref.name,
                qualifier=ref.qualifier or "",
                url_id="".join(secrets.choice(_URL_ID_ALPHABET) for _ in range(32)),
                auth_type=spec.auth_type,
                cors=_cors(spec.cors),
                invoke_mode=spec.invoke_mode or "BUFFERED",
                created_at=now,
                last_modified=now,
            )
            session.add(row)
            url = self.function_url(base_url, ref.name, ref.qualifier)
            return shapes.url_config(row, url=url, arn=arn, modified=False)

    def get_url_config(self, raw: str, qualifier: str | None, *, base_url: str) -> dict[str, Any]:
        ref = self._url_qualifier(raw, qualifier)
        with self.db.session() as session:
            row = self._url_row(session, ref)
            url = self.function_url(base_url, ref.name, ref.qualifier)
            return shapes.url_config(row, url=url, arn=self.arn(ref.name, ref.qualifier))

    def update_url_config(
        self, raw: str, qualifier: str | None, spec: UpdateUrlConfigSpec, *, base_url: str
    ) -> dict[str, Any]:
        ref = self._url_qualifier(raw, qualifier)
        with self._writing() as session:
            row = self._url_row(session, ref)
            if spec.auth_type is not None:
                row.auth_type = spec.auth_type
            if spec.cors is not None:
                row.cors = _cors(spec.cors)
            if spec.invoke_mode is not None:
                row.invoke_mode = spec.invoke_mode
            row.last_modified = self.clock()
            url = self.function_url(base_url, ref.name, ref.qualifier)
            return shapes.url_config(row, url=url, arn=self.arn(ref.name, ref.qualifier))

    def delete_url_config(self, raw: str, qualifier: str | None) -> None:
        ref = self._url_qualifier(raw, qualifier)
        with self._writing() as session:
            session.delete(self._url_row(session, ref))

    def list_url_configs(
        self, raw: str, *, base_url: str, marker: str | None = None, max_items: int | None = None
    ) -> dict[str, Any]:
        name = self._unqualified(raw)
        with self.db.session() as session:
            if session.get(LambdaFunction, name) is None:
                raise ResourceNotFoundError("Function does not exist")
            rows = session.scalars(
                select(LambdaUrl).where(LambdaUrl.function == name).order_by(LambdaUrl.qualifier)
            ).all()
            items = [
                shapes.url_config(
                    r,
                    url=self.function_url(base_url, name, r.qualifier or None),
                    arn=self.arn(name, r.qualifier or None),
                )
                for r in rows
            ]
        page, next_marker = _page(items, "FunctionArn", marker, max_items, default=50)
        return _with_marker({"FunctionUrlConfigs": page}, next_marker)

    # --- resource policy (permissions) -----------------------------------------------

    def _policy_document(self, session: DbSession, arn: str) -> dict[str, Any] | None:
        row = session.get(ResourcePolicy, arn)
        if row is None:
            return None
        document: dict[str, Any] = json.loads(row.document)
        statements = document.get("Statement", [])
        document["Statement"] = statements if isinstance(statements, list) else [statements]
        return document

    def add_permission(
        self, raw: str, qualifier: str | None, spec: PermissionSpec
    ) -> dict[str, Any]:
        ref = self.ref(raw, qualifier)
        if ref.qualifier == LATEST:
            raise InvalidParameterValueError(
                "We currently do not support adding policies for $LATEST."
            )
        arn = self.arn(ref.name, ref.qualifier)
        with self._writing() as session:
            fn = self._function(session, ref.name)
            target = self._target(session, fn, ref.qualifier)
            self._check_revision(spec.revision_id, target.revision_id)
            document = self._policy_document(session, arn) or empty_policy()
            if any(s.get("Sid") == spec.statement_id for s in document["Statement"]):
                raise ResourceConflictError(
                    f"The statement id ({spec.statement_id}) provided already exists. Please "
                    "provide a new statement id, or remove the existing statement."
                )
            statement = build_statement(arn, spec)
            document["Statement"].append(statement)
            # Through IamService: it checks the document as a policy and tells the authorizer.
            self.iam.put_resource_policy(arn, shapes.compact(document))
            target.revision_id = _new_revision()
        return {"Statement": shapes.compact(statement)}

    def get_policy(self, raw: str, qualifier: str | None = None) -> dict[str, Any]:
        ref = self.ref(raw, qualifier)
        with self.db.session() as session:
            fn = self._function(session, ref.name)
            document = self._policy_document(session, self.arn(ref.name, ref.qualifier))
            if document is None:
                raise ResourceNotFoundError("The resource you requested does not exist.")
            target = self._target(session, fn, ref.qualifier)
            return {"Policy": shapes.compact(document), "RevisionId": target.revision_id}

    def remove_permission(
        self,
        raw: str,
        statement_id: str,
        qualifier: str | None = None,
        revision_id: str | None = None,
    ) -> None:
        ref = self.ref(raw, qualifier)
        arn = self.arn(ref.name, ref.qualifier)
        with self._writing() as session:
            fn = session.get(LambdaFunction, ref.name)
            if fn is None:
                raise ResourceNotFoundError(f"No policy found for: {self.arn(ref.name)}")
            target = self._target(session, fn, ref.qualifier)
            document = self._policy_document(session, arn)
            if document is None:
                raise ResourceNotFoundError("No policy is associated with the given resource.")
            kept = [s for s in document["Statement"] if s.get("Sid") != statement_id]
            if len(kept) == len(document["Statement"]):
                raise ResourceNotFoundError(
                    f"Statement {statement_id} is not found in resource policy."
                )
            self._check_revision(revision_id, target.revision_id)
            if kept:
                self.iam.put_resource_policy(arn, shapes.compact({**document, "Statement": kept}))
            else:
                self.iam.delete_resource_policy(arn)
            target.revision_id = _new_revision()

    # --- asynchronous invocation config ----------------------------------------------

    def _event_target(self, session: DbSession, ref: FunctionRef) -> None:
        fn = session.get(LambdaFunction, ref.name)
        if fn is None:
            raise ResourceNotFoundError("The function doesn't exist.")
        try:
            self._target(session, fn, ref.qualifier)
        except ResourceNotFoundError:
            raise ResourceNotFoundError("The function doesn't exist.") from None

    def _no_event_config(self, ref: FunctionRef) -> ResourceNotFoundError:
        arn = self.arn(ref.name, ref.qualifier or LATEST)
        return ResourceNotFoundError(f"The function {arn} doesn't have an EventInvokeConfig")

    def _check_destinations(self, name: str, spec: EventInvokeConfigSpec) -> dict[str, Any]:
        config = spec.destination_config
        if config is None:
            return {}
        result: dict[str, Any] = {}
        for key, destination in (
            ("OnSuccess", config.on_success),
            ("OnFailure", config.on_failure),
        ):
            target = destination.destination if destination else None
            if not target:
                continue
            if not re.match(r"^arn:aws[a-zA-Z0-9-]*:(lambda|sqs|sns|events):", target):
                raise InvalidParameterValueError(
                    f"The destination ARN {target} is invalid.",
                    hint="Destinations are functions, queues, topics or event buses (ARNs).",
                )
            if target.split(":")[2] == "lambda":
                destination_ref = self.ref(target)
                if destination_ref.name == name:
                    raise InvalidParameterValueError(
                        "You can't specify the function as a destination for itself."
                    )
            result[key] = {"Destination": target}
        return result

    def put_event_invoke_config(
        self, raw: str, qualifier: str | None, spec: EventInvokeConfigSpec, *, merge: bool = False
    ) -> dict[str, Any]:
        """PutFunctionEventInvokeConfig (replace), or Update... with ``merge``."""
        if (
            spec.maximum_retry_attempts is None
            and spec.maximum_event_age_in_seconds is None
            and spec.destination_config is None
        ):
            raise InvalidParameterValueError(
                "You must specify at least one of error handling or destination setting."
            )
        ref = self.ref(raw, qualifier)
        destinations = self._check_destinations(ref.name, spec)
        key = (ref.name, ref.qualifier or LATEST)
        with self._writing() as session:
            self._event_target(session, ref)
            row = session.get(LambdaEventConfig, key)
            if merge and row is None:
                raise self._no_event_config(ref)
            if row is None:
                row = LambdaEventConfig(function=key[0], qualifier=key[1], destination_config={})
                session.add(row)
            if not merge or spec.maximum_retry_attempts is not None:
                row.max_retry_attempts = spec.maximum_retry_attempts
            if not merge or spec.maximum_event_age_in_seconds is not None:
                row.max_event_age_s = spec.maximum_event_age_in_seconds
            if not merge or spec.destination_config is not None:
                row.destination_config = destinations
            row.last_modified = self.clock()
            return shapes.event_invoke_config(row, self.arn(*key))

    def get_event_invoke_config(self, raw: str, qualifier: str | None = None) -> dict[str, Any]:
        ref = self.ref(raw, qualifier)
        key = (ref.name, ref.qualifier or LATEST)
        with self.db.session() as session:
            row = session.get(LambdaEventConfig, key)
            if row is None:
                raise self._no_event_config(ref)
            return shapes.event_invoke_config(row, self.arn(*key))

    def delete_event_invoke_config(self, raw: str, qualifier: str | None = None) -> None:
        ref = self.ref(raw, qualifier)
        with self._writing() as session:
            row = session.get(LambdaEventConfig, (ref.name, ref.qualifier or LATEST))
            if row is None:
                raise self._no_event_config(ref)
            session.delete(row)

    def list_event_invoke_configs(
        self, raw: str, marker: str | None = None, max_items: int | None = None
    ) -> dict[str, Any]:
        name = self._unqualified(raw)
        with self.db.session() as session:
            if session.get(LambdaFunction, name) is None:
                raise ResourceNotFoundError("The function doesn't exist.")
            rows = session.scalars(
                select(LambdaEventConfig)
                .where(LambdaEventConfig.function == name)
                .order_by(LambdaEventConfig.qualifier)
            ).all()
            items = [shapes.event_invoke_config(r, self.arn(name, r.qualifier)) for r in rows]
        page, next_marker = _page(items, "FunctionArn", marker, max_items, default=50)
        return _with_marker({"FunctionEventInvokeConfigs": page}, next_marker)

    # --- tags ------------------------------------------------------------------------

    def _tagged(self, resource_arn: str) -> str:
        ref = self.ref(resource_arn)
        if ref.qualifier is not None:
            raise InvalidParameterValueError(
                "Tags on function aliases and versions are not supported. Please specify a "
                "function ARN."
            )
        return ref.name

    def list_tags(self, resource_arn: str) -> dict[str, Any]:
        name = self._tagged(resource_arn)
        with self.db.session() as session:
            return {"Tags": dict(self._function(session, name).tags or {})}

    def tag_resource(self, resource_arn: str, tags: dict[str, str]) -> None:
        name = self._tagged(resource_arn)
        if not tags:
            raise InvalidParameterValueError(
                "An error occurred and the request cannot be processed."
            )
        with self._writing() as session:
            fn = self._function(session, name)
            fn.tags = {**(fn.tags or {}), **tags}
            fn.revision_id = _new_revision()

    def untag_resource(self, resource_arn: str, keys: Sequence[str]) -> None:
        name = self._tagged(resource_arn)
        with self._writing() as session:
            fn = self._function(session, name)
            fn.tags = {k: v for k, v in (fn.tags or {}).items() if k not in set(keys)}
            fn.revision_id = _new_revision()

    # --- kennel's own reads: logs, asynchronous events, metrics ----------------------

    def _exists(self, session: DbSession, raw: str) -> str:
        name = self._unqualified(raw)
        self._function(session, name)
        return name

    def logs(
        self,
        raw: str,
        *,
        since_ms: int | None = None,
        after_id: int | None = None,
        limit: int = 1000,
    ) -> dict[str, Any]:
        """The function's invocation logs, oldest first (``after_id`` to follow them)."""
        with self.db.session() as session:
            name = self._exists(session, raw)
            query = select(LambdaLog).where(LambdaLog.function == name)
            if after_id is not None:
                query = query.where(LambdaLog.id > after_id)
            if since_ms is not None:
                since = datetime.fromtimestamp(since_ms / 1000, UTC)
                query = query.where(LambdaLog.timestamp >= since)
            rows = session.scalars(query.order_by(LambdaLog.id).limit(limit)).all()
            return {
                "events": [
                    {
                        "id": r.id,
                        "timestamp": int(_aware(r.timestamp).timestamp() * 1000),
                        "request_id": r.request_id,
                        "version": r.version,
                        "stream": r.stream,
                        "message": r.message,
                    }
                    for r in rows
                ]
            }

    def events(self, raw: str, *, status: str | None = None, limit: int = 1000) -> dict[str, Any]:
        """The function's asynchronous invocations, newest first (failed ones keep their error)."""
        with self.db.session() as session:
            name = self._exists(session, raw)
            query = select(LambdaEvent).where(LambdaEvent.function == name)
            if status is not None:
                query = query.where(LambdaEvent.status == status)
            rows = session.scalars(query.order_by(LambdaEvent.created_at.desc()).limit(limit)).all()
            return {"events": [_event_dict(r) for r in rows]}

    def metrics(self, raw: str, since_seconds: float = 3600.0) -> dict[str, Any]:
        since = self.clock() - timedelta(seconds=since_seconds)
        with self.db.session() as session:
            name = self._exists(session, raw)
            rows = session.scalars(
                select(MetricSample)
                .where(MetricSample.resource == f"function/{name}", MetricSample.timestamp >= since)
                .order_by(MetricSample.timestamp)
            ).all()
            series: dict[str, list[dict[str, Any]]] = {}
            for row in rows:
                series.setdefault(row.name, []).append(
                    {"timestamp": _aware(row.timestamp).isoformat(), "value": row.value}
                )
        return {
            "function": name,
            "period_seconds": self.settings.function_metrics_period_seconds,
            "metrics": series,
        }


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _event_dict(row: LambdaEvent) -> dict[str, Any]:
    return {
        "id": row.id,
        "qualifier": row.qualifier or None,
        "status": row.status,
        "attempts": row.attempts,
        "created_at": _aware(row.created_at).isoformat(),
        "next_attempt_at": _aware(row.next_attempt_at).isoformat(),
        "finished_at": _aware(row.finished_at).isoformat() if row.finished_at else None,
        "executed_version": row.executed_version,
        "last_error": row.last_error,
        "payload": row.payload.decode("utf-8", "replace"),
    }


def _cors(spec: Any) -> dict[str, Any]:
    if spec is None:
        return {}
    dumped: dict[str, Any] = spec.model_dump(by_alias=True, exclude_none=True)
    return dumped


def _page(
    items: list[dict[str, Any]],
    key: str,
    marker: str | None,
    max_items: int | None,
    *,
    default: int,
) -> tuple[list[dict[str, Any]], str | None]:
    """One page of ``items`` after the one whose ``key`` is ``marker``; the next marker."""
    start = 0
    if marker:
        for index, item in enumerate(items):
            if item[key] == marker:
                start = index + 1
                break
    size = max_items or default
    page = items[start : start + size]
    more = start + size < len(items)
    return page, (page[-1][key] if more and page else None)


def _with_marker(answer: dict[str, Any], marker: str | None) -> dict[str, Any]:
    if marker is not None:
        answer["NextMarker"] = marker
    return answer
