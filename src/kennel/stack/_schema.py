"""The stack file: a whole workflow declared in YAML, validated on entry.

A stack names its resources by kind and logical name. Blocks reuse the API's own specs
(a training block is a ``TrainingJobSpec`` without its name, a scaling block is the
``ScalingSpec`` the endpoints API takes, a role's policies are IAM policy documents), so a
field means the same everywhere and a stack file can hold nothing the API would refuse.

Blocks refer to each other by logical name in their reference fields (``dataset: digits``,
``training_job: train``, ``role: invoker``) and, inside any string, with
``${kind.name.attribute}`` (``${endpoints.classifier.arn}``); both make the dependency
order. Paths (``source_dir``, a function's ``code``) are relative to the stack file.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, field_validator, model_validator

from kennel._errors import ValidationError
from kennel._spec import Spec
from kennel.endpoints._capture import DataCaptureSpec
from kennel.endpoints._scaling_spec import ScalingSpec
from kennel.endpoints._spec import DEFAULT_VARIANT
from kennel.training._spec import TrainingJobSpec
from kennel.tuning._spec import TuningJobSpec

VERSION: Literal[1] = 1
LOGICAL_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,39}$")
"""A logical name: SageMaker's rule, at most 40 characters (an immutable resource's
physical name adds ``-`` and 8 hex digits of its spec's hash; see ``_types.physical``)."""
TUNING_LOGICAL_MAX = 23
"""A tuning job's name is at most 32 characters (its trials add ``-NNN-xxxxxxxx``)."""
REFERENCE = re.compile(r"\$\{([a-z_]+)\.([a-zA-Z0-9-]+)(?:\.([a-z_]+))?\}")
"""``${kind.name}`` or ``${kind.name.attribute}`` inside a string."""

MAX_DEPTH = 100
"""How deep a stack file may nest (its deepest blocks, policy documents, need under ten)."""
MAX_VALUES = 100_000
"""How many values a stack file may hold once its YAML aliases are expanded."""

KINDS = (
    "datasets",
    "tuning_jobs",
    "training_jobs",
    "models",
    "endpoints",
    "roles",
    "functions",
)
"""The sections of a stack file, in the order a reader meets them."""


class DemoDataset(Spec):
    image_size: int = Field(default=64, ge=8, le=512)
    seed: int = 0


class DatasetBlock(Spec):
    """A data set: rendered from the demo digits, or fetched from a URL (an archive with
    train/valid/test class folders, as dogImages.zip is)."""

    demo: DemoDataset | None = None
    source_url: str | None = None

    @model_validator(mode="after")
    def _one_source(self) -> DatasetBlock:
        if (self.demo is None) == (self.source_url is None):
            raise ValueError("give exactly one of demo and source_url")
        return self


class TuningBlock(TuningJobSpec):
    """A tuning job (``TuningJobSpec`` without its name; ``dataset`` names a stack data set
    or one that exists). ``source_dir`` is uploaded as the trials' ``source_uri``."""

    name: str | None = None  # type: ignore[assignment]  # the stack names it
    source_dir: str | None = None

    @model_validator(mode="after")
    def _unnamed(self) -> TuningBlock:
        _refuse_name(self.name)
        return self


class TrainingBlock(TrainingJobSpec):
    """A training job (``TrainingJobSpec`` without its name). ``hyperparameters_from`` takes
    the best trial's hyperparameters of a stack tuning job; those given here win."""

    source_dir: str | None = None
    hyperparameters_from: str | None = None

    @model_validator(mode="after")
    def _unnamed(self) -> TrainingBlock:
        _refuse_name(self.name)
        return self


def _refuse_name(name: str | None) -> None:
    if name is not None:
        raise ValueError(
            f"name {name!r}: the stack names this resource (its logical name and a hash of "
            "its spec); leave name out"
        )


class ModelBlock(Spec):
    """A model from a stack training job (its ``model.tar.gz``) or an artifact URI."""

    training_job: str | None = None
    artifact_uri: str | None = None
    environment: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _one_source(self) -> ModelBlock:
        if (self.training_job is None) == (self.artifact_uri is None):
            raise ValueError("give exactly one of training_job and artifact_uri")
        return self


class VariantBlock(Spec):
    variant_name: str = DEFAULT_VARIANT
    model: str
    instance_type: str = "ml.m5.large"
    initial_instance_count: int = Field(default=1, ge=1, le=20)
    initial_weight: float = Field(default=1.0, ge=0.0)


class EndpointBlock(Spec):
    """An endpoint, its config (made from ``variants``) and its variants' scaling."""

    variants: list[VariantBlock] = Field(min_length=1, max_length=10)
    scaling: list[ScalingSpec] = Field(default_factory=list)
    """One per scaled variant (``variant`` names it; AllTraffic by default)."""
    data_capture: DataCaptureSpec | None = None
    """Capture a share of requests and responses (the config's data capture)."""

    @model_validator(mode="after")
    def _scaled_variants_exist(self) -> EndpointBlock:
        names = [v.variant_name for v in self.variants]
        if len(set(names)) != len(names):
            raise ValueError(f"variant names must be distinct, got {names}")
        for scaling in self.scaling:
            if scaling.variant not in names:
                raise ValueError(
                    f"scaling names variant {scaling.variant!r}, which is not one of {names}"
                )
        return self


class RoleBlock(Spec):
    """An IAM role: who may assume it and its inline policies (IAM policy documents)."""

    assumed_by: list[str] = Field(default_factory=lambda: ["lambda.amazonaws.com"], min_length=1)
    """Service principals in the trust policy."""
    description: str = ""
    policies: dict[str, dict[str, Any]] = Field(default_factory=dict)
    """Inline policies by name; the documents are checked as IAM checks them."""
    managed_policies: list[str] = Field(default_factory=list)
    """ARNs of managed policies to attach (arn:aws:iam::aws:policy/AmazonSageMakerFullAccess)."""


class FunctionUrlBlock(Spec):
    auth_type: Literal["NONE", "AWS_IAM"] = "AWS_IAM"


class FunctionBlock(Spec):
    """A Lambda-style function: code folder, handler, role, concurrency and URL."""

    code: str
    """A folder (relative to the stack file) zipped as the deployment package."""
    handler: str = "lambda_function.lambda_handler"
    runtime: str = "python3.11"
    role: str
    """A stack role's logical name, or a role ARN."""
    description: str = ""
    timeout: int = Field(default=3, ge=1, le=900)
    memory_size: int = Field(default=128, ge=128, le=10240)
    environment: dict[str, str] = Field(default_factory=dict)
    reserved_concurrency: int | None = Field(default=None, ge=0)
    provisioned_concurrency: int | None = Field(default=None, ge=1)
    """On an alias (``alias``) of a version published by the stack, as Lambda requires."""
    alias: str = "live"
    url: FunctionUrlBlock | None = None


class StackFile(Spec):
    """A whole workflow. Sections are maps from logical name to block."""

    version: Literal[1] = VERSION
    name: str = Field(pattern=LOGICAL_NAME.pattern)
    description: str = ""
    datasets: dict[str, DatasetBlock] = Field(default_factory=dict)
    tuning_jobs: dict[str, TuningBlock] = Field(default_factory=dict)
    training_jobs: dict[str, TrainingBlock] = Field(default_factory=dict)
    models: dict[str, ModelBlock] = Field(default_factory=dict)
    endpoints: dict[str, EndpointBlock] = Field(default_factory=dict)
    roles: dict[str, RoleBlock] = Field(default_factory=dict)
    functions: dict[str, FunctionBlock] = Field(default_factory=dict)
    outputs: dict[str, str] = Field(default_factory=dict)
    """Values to print after ``kennel up`` (strings with ``${...}`` references)."""

    @field_validator(*KINDS)
    @classmethod
    def _logical_names(cls, value: dict[str, Any]) -> dict[str, Any]:
        for name in value:
            if not LOGICAL_NAME.match(name):
                raise ValueError(
                    f"{name!r} is not a valid logical name: 1-40 letters, digits and "
                    "hyphens, starting and ending with a letter or digit"
                )
        return value

    @field_validator("tuning_jobs")
    @classmethod
    def _tuning_names(cls, value: dict[str, Any]) -> dict[str, Any]:
        for name in value:
            if len(name) > TUNING_LOGICAL_MAX:
                raise ValueError(
                    f"tuning job {name!r} is longer than {TUNING_LOGICAL_MAX} characters (its "
                    "name gets a hash suffix, and a tuning job's name is at most 32)"
                )
        return value


def load_stack(path: str | Path) -> tuple[StackFile, Path]:
    """Read and validate a stack file; returns it and the folder its paths are relative to.

    Raises:
        ValidationError: The file is missing, is not YAML, or does not fit the schema
            (every problem is named by its place in the file).
    """
    file = Path(path)
    try:
        text = file.read_text()
    except OSError as exc:
        raise ValidationError(
            f"Cannot read stack file {str(file)!r}: {exc.strerror}.",
            hint="Give the path of a stack YAML file (see examples/quickstart/stack.yaml).",
        ) from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ValidationError(f"{file} is not valid YAML: {exc}", hint="Fix the YAML.") from exc
    except RecursionError:
        raise _too_big(str(file), f"it nests deeper than {MAX_DEPTH} levels") from None
    return parse_stack(data, where=str(file)), file.resolve().parent


def parse_stack(data: Any, *, where: str = "stack") -> StackFile:
    """Validate a stack's data (as parsed from YAML), naming every problem's place."""
    import pydantic

    if not isinstance(data, dict):
        raise ValidationError(
            f"{where} must be a YAML mapping with at least `name:`.",
            hint="See examples/quickstart/stack.yaml.",
        )
    _check_size(data, where)
    try:
        return StackFile.model_validate(data)
    except pydantic.ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'stack'}: {e['msg']}" for e in exc.errors()
        )
        raise ValidationError(
            f"{where} is not a valid stack: {problems}",
            hint="Fix the fields named (kennel stack schema prints the JSON Schema).",
        ) from exc


def _check_size(data: Any, where: str) -> None:
    """Refuse data nested deeper than MAX_DEPTH, or holding more than MAX_VALUES values.

    A YAML alias is a reference, not a copy: ten levels of ``&a [*b, *b, ...]`` stand for
    billions of values and ``&a [*a]`` for infinitely many, which validating or hashing the
    stack would try to walk. The walk here is iterative and stops at the first limit.
    """
    pending: list[tuple[Any, int]] = [(data, 1)]
    seen = 0
    while pending:
        value, depth = pending.pop()
        seen += 1
        if seen > MAX_VALUES:
            raise _too_big(
                where, f"it holds more than {MAX_VALUES} values (YAML aliases count once per use)"
            )
        if depth > MAX_DEPTH:
            raise _too_big(
                where, f"it nests deeper than {MAX_DEPTH} levels (or an alias refers to itself)"
            )
        children = (
            value.values() if isinstance(value, dict) else value if isinstance(value, list) else ()
        )
        pending.extend((child, depth + 1) for child in children)


def _too_big(where: str, why: str) -> ValidationError:
    return ValidationError(
        f"{where} is not a stack kennel will read: {why}.",
        hint="A stack file declares blocks a few levels deep; see examples/quickstart/stack.yaml.",
    )


def json_schema() -> dict[str, Any]:
    """The stack file's JSON Schema, for editors (``# yaml-language-server: $schema=...``)."""
    schema = StackFile.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "kennel stack file"
    return schema
