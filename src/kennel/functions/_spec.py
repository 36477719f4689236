"""The Lambda API's request bodies, validated where they enter.

Field names are Lambda's (``FunctionName``, ``MemorySize`` ...) through a PascalCase alias;
limits are Lambda's, and a violation is answered with Lambda's ValidationException text
(``1 validation error detected: Value '20000' at 'memorySize' failed to satisfy
constraint: ...``).
"""

from __future__ import annotations

from typing import Any, Literal, TypeVar

import pydantic
from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_pascal

from kennel._errors import ValidationError

MAX_TIMEOUT_SECONDS = 900
MIN_MEMORY_MB = 128
MAX_MEMORY_MB = 10240

Model = TypeVar("Model", bound=BaseModel)


class _Body(BaseModel):
    model_config = ConfigDict(alias_generator=to_pascal, populate_by_name=True, extra="ignore")


class CodeSpec(_Body):
    zip_file: str | None = None
    """Base64, as boto3 sends a blob in JSON."""
    s3_bucket: str | None = None
    s3_key: str | None = None
    s3_object_version: str | None = None
    image_uri: str | None = None


class EnvironmentSpec(_Body):
    variables: dict[str, str] = Field(default_factory=dict)


class CreateFunctionSpec(_Body):
    function_name: str = Field(min_length=1, max_length=140)
    role: str = Field(min_length=1, max_length=10000)
    code: CodeSpec
    runtime: str | None = None
    handler: str | None = Field(default=None, max_length=128, pattern=r"^\S+$")
    description: str = Field(default="", max_length=256)
    timeout: int = Field(default=3, ge=1, le=MAX_TIMEOUT_SECONDS)
    memory_size: int = Field(default=MIN_MEMORY_MB, ge=MIN_MEMORY_MB, le=MAX_MEMORY_MB)
    publish: bool = False
    package_type: Literal["Zip", "Image"] = "Zip"
    environment: EnvironmentSpec | None = None
    architectures: list[Literal["x86_64", "arm64"]] | None = Field(
        default=None, min_length=1, max_length=1
    )
    tags: dict[str, str] | None = None
    layers: list[str] | None = None


class UpdateConfigurationSpec(_Body):
    role: str | None = Field(default=None, min_length=1, max_length=10000)
    runtime: str | None = None
    handler: str | None = Field(default=None, max_length=128, pattern=r"^\S+$")
    description: str | None = Field(default=None, max_length=256)
    timeout: int | None = Field(default=None, ge=1, le=MAX_TIMEOUT_SECONDS)
    memory_size: int | None = Field(default=None, ge=MIN_MEMORY_MB, le=MAX_MEMORY_MB)
    environment: EnvironmentSpec | None = None
    revision_id: str | None = None
    layers: list[str] | None = None


class UpdateCodeSpec(CodeSpec):
    publish: bool = False
    dry_run: bool = False
    revision_id: str | None = None
    architectures: list[Literal["x86_64", "arm64"]] | None = Field(
        default=None, min_length=1, max_length=1
    )


class PublishVersionSpec(_Body):
    code_sha256: str | None = None
    description: str | None = Field(default=None, max_length=256)
    revision_id: str | None = None


class RoutingConfigSpec(_Body):
    additional_version_weights: dict[str, float] = Field(default_factory=dict)


class CreateAliasSpec(_Body):
    name: str = Field(min_length=1, max_length=128)
    function_version: str = Field(min_length=1, max_length=1024)
    description: str = Field(default="", max_length=256)
    routing_config: RoutingConfigSpec | None = None


class UpdateAliasSpec(_Body):
    function_version: str | None = Field(default=None, min_length=1, max_length=1024)
    description: str | None = Field(default=None, max_length=256)
    routing_config: RoutingConfigSpec | None = None
    revision_id: str | None = None


class ConcurrencySpec(_Body):
    reserved_concurrent_executions: int = Field(ge=0)


class ProvisionedConcurrencySpec(_Body):
    provisioned_concurrent_executions: int = Field(ge=1)


class CorsSpec(_Body):
    allow_credentials: bool | None = None
    allow_headers: list[str] | None = Field(default=None, max_length=100)
    allow_methods: list[str] | None = Field(default=None, max_length=6)
    allow_origins: list[str] | None = Field(default=None, max_length=100)
    expose_headers: list[str] | None = Field(default=None, max_length=100)
    max_age: int | None = Field(default=None, ge=0, le=86400)


AuthType = Literal["AWS_IAM", "NONE"]
InvokeMode = Literal["BUFFERED", "RESPONSE_STREAM"]


class CreateUrlConfigSpec(_Body):
    auth_type: AuthType
    cors: CorsSpec | None = None
    invoke_mode: InvokeMode | None = None


class UpdateUrlConfigSpec(_Body):
    auth_type: AuthType | None = None
    cors: CorsSpec | None = None
    invoke_mode: InvokeMode | None = None


class PermissionSpec(_Body):
    statement_id: str = Field(min_length=1, max_length=100, pattern=r"^[a-zA-Z0-9_-]+$")
    action: str = Field(pattern=r"^(lambda:[*]|lambda:[a-zA-Z]+|[*])$")
    principal: str = Field(min_length=1, max_length=2048, pattern=r"^\S+$")
    source_arn: str | None = None
    source_account: str | None = Field(default=None, pattern=r"^\d{12}$")
    event_source_token: str | None = Field(default=None, pattern=r"^[a-zA-Z0-9._-]+$")
    revision_id: str | None = None
    principal_org_id: str | None = Field(
        default=None, alias="PrincipalOrgID", pattern=r"^o-[a-z0-9]{10,32}$"
    )
    function_url_auth_type: AuthType | None = None


class DestinationSpec(_Body):
    destination: str | None = None


class DestinationConfigSpec(_Body):
    on_success: DestinationSpec | None = None
    on_failure: DestinationSpec | None = None


class EventInvokeConfigSpec(_Body):
    maximum_retry_attempts: int | None = Field(default=None, ge=0, le=2)
    maximum_event_age_in_seconds: int | None = Field(default=None, ge=60, le=21600)
    destination_config: DestinationConfigSpec | None = None


class TagsSpec(_Body):
    tags: dict[str, str]


def parse(model: type[Model], document: Any) -> Model:
    """``model`` from a request body, or Lambda's ValidationException saying what is wrong."""
    try:
        return model.model_validate(document if document is not None else {})
    except pydantic.ValidationError as exc:
        problems = [_problem(error) for error in exc.errors()]
        count = len(problems)
        raise ValidationError(
            f"{count} validation error{'s' if count > 1 else ''} detected: " + "; ".join(problems)
        ) from None


def _problem(error: Any) -> str:
    field = ".".join(_camel(str(part)) for part in error["loc"] if not isinstance(part, int))
    context = error.get("ctx") or {}
    at_least, at_most = (
        "Member must have length greater than or equal to",
        ("Member must have length less than or equal to"),
    )
    value_at_least = "Member must have value greater than or equal to"
    constraint = {
        "missing": "Member must not be null",
        "greater_than_equal": f"{value_at_least} {context.get('ge')}",
        "less_than_equal": f"Member must have value less than or equal to {context.get('le')}",
        "string_too_long": f"{at_most} {context.get('max_length')}",
        "string_too_short": f"{at_least} {context.get('min_length')}",
        "too_long": f"{at_most} {context.get('max_length')}",
        "too_short": f"{at_least} {context.get('min_length')}",
        "string_pattern_mismatch": "Member must satisfy regular expression pattern: "
        + str(context.get("pattern", "")).strip("^$"),
        "literal_error": f"Member must satisfy enum value set: [{context.get('expected', '')}]",
    }.get(error["type"], error["msg"])
    value = "null" if error["type"] == "missing" else f"'{error.get('input')}'"
    return f"Value {value} at '{field}' failed to satisfy constraint: {constraint}"


def _camel(name: str) -> str:
    return name[:1].lower() + name[1:]
