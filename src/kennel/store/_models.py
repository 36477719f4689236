"""The tables. Every change here comes with an Alembic migration in migrations/versions."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSON, list[str]: JSON}


class Account(Base):
    """The one AWS-style account a kennel installation serves."""

    __tablename__ = "accounts"

    account_id: Mapped[str] = mapped_column(String(12), primary_key=True)
    region: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class User(Base):
    __tablename__ = "users"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    arn: Mapped[str] = mapped_column(String(256), unique=True)
    is_admin: Mapped[bool] = mapped_column(default=False)
    """Unused since IAM (0004): the admin user has AdministratorAccess attached instead."""
    user_id: Mapped[str] = mapped_column(String(32), default="")
    path: Mapped[str] = mapped_column(String(512), default="/")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class AccessKey(Base):
    """An access key; the secret is stored encrypted (Fernet), never in plain text."""

    __tablename__ = "access_keys"

    access_key_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    user_name: Mapped[str] = mapped_column(ForeignKey("users.name", ondelete="CASCADE"))
    secret_encrypted: Mapped[bytes] = mapped_column(LargeBinary)
    status: Mapped[str] = mapped_column(String(16), default="Active")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_used_service: Mapped[str | None] = mapped_column(String(32))


class Dataset(Base):
    """A labelled image set in the train/valid/test class-folder layout."""

    __tablename__ = "datasets"

    name: Mapped[str] = mapped_column(String(63), primary_key=True)
    status: Mapped[str] = mapped_column(String(16))
    source: Mapped[str] = mapped_column(Text, default="")
    artifact_uri: Mapped[str] = mapped_column(Text, default="")
    classes: Mapped[list[str]] = mapped_column(default=list)
    splits: Mapped[dict[str, Any]] = mapped_column(default=dict)
    total_images: Mapped[int] = mapped_column(Integer, default=0)
    total_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    failure_reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class TrainingJob(Base):
    """A SageMaker-style training job: an entry point run on N instances of a type."""

    __tablename__ = "training_jobs"

    name: Mapped[str] = mapped_column(String(63), primary_key=True)
    status: Mapped[str] = mapped_column(String(16))
    secondary_status: Mapped[str] = mapped_column(String(32))
    status_message: Mapped[str] = mapped_column(Text, default="")
    failure_reason: Mapped[str | None] = mapped_column(Text)
    entry_point: Mapped[str] = mapped_column(Text)
    source_uri: Mapped[str | None] = mapped_column(Text)
    hyperparameters: Mapped[dict[str, Any]] = mapped_column(default=dict)
    channels: Mapped[dict[str, Any]] = mapped_column(default=dict)
    environment: Mapped[dict[str, Any]] = mapped_column(default=dict)
    metric_definitions: Mapped[list[Any]] = mapped_column(JSON, default=list)
    instance_type: Mapped[str] = mapped_column(String(32))
    instance_count: Mapped[int] = mapped_column(Integer)
    max_runtime_seconds: Mapped[int] = mapped_column(Integer)
    output_path: Mapped[str] = mapped_column(Text)
    model_artifact_uri: Mapped[str | None] = mapped_column(Text)
    placement: Mapped[dict[str, Any]] = mapped_column(default=dict)
    status_transitions: Mapped[list[Any]] = mapped_column(JSON, default=list)
    final_metrics: Mapped[dict[str, Any]] = mapped_column(default=dict)
    stop_requested: Mapped[bool] = mapped_column(default=False)
    debugger_config: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    profiler_config: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    rule_evaluations: Mapped[list[Any]] = mapped_column(JSON, default=list)
    billable_seconds: Mapped[int] = mapped_column(Integer, default=0)
    cost_usd: Mapped[float] = mapped_column(default=0.0)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    training_started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class TuningJob(Base):
    """A SageMaker-style hyperparameter tuning job; its trials are training jobs.

    The trials live here as JSON, written only by the tuning job's controller thread
    (one writer), so a describe is one row read; Optuna's own study holds the search.
    """

    __tablename__ = "tuning_jobs"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    status: Mapped[str] = mapped_column(String(16), index=True)
    status_message: Mapped[str] = mapped_column(Text, default="")
    failure_reason: Mapped[str | None] = mapped_column(Text)
    spec: Mapped[dict[str, Any]] = mapped_column(default=dict)
    trials: Mapped[list[Any]] = mapped_column(JSON, default=list)
    counters: Mapped[dict[str, Any]] = mapped_column(default=dict)
    best_training_job: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    stop_requested: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class MetricSample(Base):
    """One point of a time series (a training metric, later endpoint metrics)."""

    __tablename__ = "metric_samples"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    resource: Mapped[str] = mapped_column(String(200), index=True)
    name: Mapped[str] = mapped_column(String(200))
    value: Mapped[float]
    timestamp: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    step: Mapped[int | None] = mapped_column(Integer)


class Model(Base):
    """A SageMaker-style model: a model.tar.gz (plus its ONNX export) kept in the store."""

    __tablename__ = "models"

    name: Mapped[str] = mapped_column(String(63), primary_key=True)
    arn: Mapped[str] = mapped_column(String(256))
    artifact_uri: Mapped[str] = mapped_column(Text)
    source: Mapped[str] = mapped_column(Text, default="")
    kind: Mapped[str] = mapped_column(String(32))
    onnx_uri: Mapped[str | None] = mapped_column(Text)
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)
    environment: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class EndpointConfig(Base):
    """Production variants: which model runs on how many instances of which type, weighted."""

    __tablename__ = "endpoint_configs"

    name: Mapped[str] = mapped_column(String(63), primary_key=True)
    arn: Mapped[str] = mapped_column(String(256))
    variants: Mapped[list[Any]] = mapped_column(JSON, default=list)
    data_capture: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    """SageMaker's DataCaptureConfig (snake_case); None: nothing is captured."""
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Endpoint(Base):
    """A serving endpoint: the config it runs, its state, and its last deployment's story."""

    __tablename__ = "endpoints"

    name: Mapped[str] = mapped_column(String(63), primary_key=True)
    arn: Mapped[str] = mapped_column(String(256))
    status: Mapped[str] = mapped_column(String(16))
    config_name: Mapped[str] = mapped_column(String(63))
    pending_config_name: Mapped[str | None] = mapped_column(String(63))
    failure_reason: Mapped[str | None] = mapped_column(Text)
    desired_counts: Mapped[dict[str, Any]] = mapped_column(default=dict)
    last_deployment: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    modified_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class NotebookInstance(Base):
    """A SageMaker-style notebook instance: a JupyterLab that ``kennel notebook`` runs.

    JupyterLab runs where the command runs; the server keeps the record, the state (kept
    honest by the command's heartbeats) and the bill. ``running_seconds`` and ``cost_usd``
    hold the running periods that have ended; the current one (since ``last_started_at``)
    is added when the instance is read.
    """

    __tablename__ = "notebook_instances"

    name: Mapped[str] = mapped_column(String(63), primary_key=True)
    arn: Mapped[str] = mapped_column(String(256))
    status: Mapped[str] = mapped_column(String(16), index=True)
    status_reason: Mapped[str] = mapped_column(Text, default="")
    instance_type: Mapped[str] = mapped_column(String(32))
    workspace: Mapped[str] = mapped_column(Text, default="")
    """The folder JupyterLab serves, on the machine that runs ``kennel notebook``."""
    url: Mapped[str | None] = mapped_column(Text)
    """Where JupyterLab answers, without its token."""
    client: Mapped[dict[str, Any]] = mapped_column(default=dict)
    """The ``kennel notebook`` process: host and pid."""
    running_seconds: Mapped[float] = mapped_column(default=0.0)
    cost_usd: Mapped[float] = mapped_column(default=0.0)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    last_modified_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    last_started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    """When the current (or the last) running period began: JupyterLab answered."""
    last_heartbeat_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    stopped_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Stack(Base):
    """A stack file's resources as ``kennel up`` made them (so ``up`` resumes and ``down``
    removes what the stack made, even after the file changed).

    The command writes the whole record (it is the only writer of a stack while it runs):
    each resource's address, physical name, fingerprint, status and attributes, and the
    resolved outputs.
    """

    __tablename__ = "stacks"

    name: Mapped[str] = mapped_column(String(63), primary_key=True)
    arn: Mapped[str] = mapped_column(String(256))
    status: Mapped[str] = mapped_column(String(32))
    status_reason: Mapped[str] = mapped_column(Text, default="")
    description: Mapped[str] = mapped_column(Text, default="")
    file: Mapped[str] = mapped_column(Text, default="")
    """Where the stack file was when it was last applied (for a person reading the record)."""
    resources: Mapped[list[Any]] = mapped_column(JSON, default=list)
    outputs: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    # The lock of the run changing the stack (``kennel up``/``down``): only its owner may
    # write the record until it releases it or stops renewing it past ``lock_expires_at``.
    lock_owner: Mapped[str | None] = mapped_column(String(64), default=None)
    """The holding run's random token; None when no run holds the stack."""
    lock_holder: Mapped[str | None] = mapped_column(Text, default=None)
    """Who holds it, for a person: ``kennel up on HOST (pid N)``."""
    lock_operation: Mapped[str | None] = mapped_column(String(8), default=None)
    lock_acquired_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    lock_renewed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    lock_expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    lock_lease_seconds: Mapped[float | None] = mapped_column(default=None)


# --- IAM -------------------------------------------------------------------------------
# Users and access keys are above (they came first); the rest of IAM's model is here.
# Principals are named by kind ("user", "group", "role") and name in the link tables.


class Group(Base):
    __tablename__ = "iam_groups"

    name: Mapped[str] = mapped_column(String(128), primary_key=True)
    arn: Mapped[str] = mapped_column(String(256), unique=True)
    group_id: Mapped[str] = mapped_column(String(32))
    path: Mapped[str] = mapped_column(String(512), default="/")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class GroupMember(Base):
    __tablename__ = "iam_group_members"

    group_name: Mapped[str] = mapped_column(
        ForeignKey("iam_groups.name", ondelete="CASCADE"), primary_key=True
    )
    user_name: Mapped[str] = mapped_column(
        ForeignKey("users.name", ondelete="CASCADE"), primary_key=True
    )


class Role(Base):
    """A role: a trust policy says who may assume it; its policies say what it may do."""

    __tablename__ = "iam_roles"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    arn: Mapped[str] = mapped_column(String(256), unique=True)
    role_id: Mapped[str] = mapped_column(String(32))
    path: Mapped[str] = mapped_column(String(512), default="/")
    description: Mapped[str] = mapped_column(Text, default="")
    trust_policy: Mapped[str] = mapped_column(Text)
    max_session_duration: Mapped[int] = mapped_column(Integer, default=3600)
    permissions_boundary: Mapped[str | None] = mapped_column(String(256))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class ManagedPolicy(Base):
    """A managed policy: customer ones (account ARN) and kennel's built-ins (``aws`` ARN)."""

    __tablename__ = "iam_policies"

    arn: Mapped[str] = mapped_column(String(256), primary_key=True)
    name: Mapped[str] = mapped_column(String(128))
    policy_id: Mapped[str] = mapped_column(String(32))
    path: Mapped[str] = mapped_column(String(512), default="/")
    description: Mapped[str] = mapped_column(Text, default="")
    document: Mapped[str] = mapped_column(Text)
    default_version_id: Mapped[str] = mapped_column(String(16), default="v1")
    versions: Mapped[list[Any]] = mapped_column(JSON, default=list)
    builtin: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class PolicyAttachment(Base):
    __tablename__ = "iam_attachments"

    principal_kind: Mapped[str] = mapped_column(String(8), primary_key=True)
    principal_name: Mapped[str] = mapped_column(String(128), primary_key=True)
    policy_arn: Mapped[str] = mapped_column(
        ForeignKey("iam_policies.arn", ondelete="CASCADE"), primary_key=True
    )
    attached_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class InlinePolicy(Base):
    __tablename__ = "iam_inline_policies"

    principal_kind: Mapped[str] = mapped_column(String(8), primary_key=True)
    principal_name: Mapped[str] = mapped_column(String(128), primary_key=True)
    policy_name: Mapped[str] = mapped_column(String(128), primary_key=True)
    document: Mapped[str] = mapped_column(Text)


class Boundary(Base):
    """A permissions boundary set on a user or a role."""

    __tablename__ = "iam_boundaries"

    principal_kind: Mapped[str] = mapped_column(String(8), primary_key=True)
    principal_name: Mapped[str] = mapped_column(String(128), primary_key=True)
    policy_arn: Mapped[str] = mapped_column(String(256))


class Session(Base):
    """Temporary credentials (ASIA keys) from AssumeRole or GetSessionToken."""

    __tablename__ = "iam_sessions"

    access_key_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    secret_encrypted: Mapped[bytes] = mapped_column(LargeBinary)
    token_encrypted: Mapped[bytes] = mapped_column(LargeBinary)
    kind: Mapped[str] = mapped_column(String(8))
    """"role" (AssumeRole) or "user" (GetSessionToken)."""
    principal_name: Mapped[str] = mapped_column(String(128))
    principal_arn: Mapped[str] = mapped_column(String(256), index=True)
    session_name: Mapped[str] = mapped_column(String(64), default="")
    source_arn: Mapped[str] = mapped_column(String(256), default="")
    mfa: Mapped[bool] = mapped_column(default=False)
    session_policy: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)


class MfaDevice(Base):
    """A virtual (TOTP) MFA device; ``enabled_at`` once paired with a user by two codes."""

    __tablename__ = "iam_mfa_devices"

    serial_number: Mapped[str] = mapped_column(String(256), primary_key=True)
    name: Mapped[str] = mapped_column(String(128))
    seed_encrypted: Mapped[bytes] = mapped_column(LargeBinary)
    user_name: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    enabled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_code_step: Mapped[int] = mapped_column(BigInteger, default=0)


class LoginProfile(Base):
    """A user's console password (IAM's login profile), kept only as a scrypt hash."""

    __tablename__ = "iam_login_profiles"

    user_name: Mapped[str] = mapped_column(
        ForeignKey("users.name", ondelete="CASCADE"), primary_key=True
    )
    password_hash: Mapped[str] = mapped_column(Text)
    """``scrypt$N$r$p$<salt b64>$<hash b64>``: the parameters travel with the hash."""
    password_reset_required: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    password_changed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    """When the password was last set: MaxPasswordAge counts from here."""
    previous_password_hashes: Mapped[list[str]] = mapped_column(default=list)
    """scrypt hashes of the passwords before this one, newest first (at most 24), for
    PasswordReusePrevention; never the passwords themselves."""


class AccountPasswordPolicy(Base):
    """The account's password policy (IAM's UpdateAccountPasswordPolicy): one row or none."""

    __tablename__ = "iam_account_password_policy"

    account_id: Mapped[str] = mapped_column(String(12), primary_key=True)
    minimum_password_length: Mapped[int] = mapped_column(Integer)
    require_symbols: Mapped[bool]
    require_numbers: Mapped[bool]
    require_uppercase_characters: Mapped[bool]
    require_lowercase_characters: Mapped[bool]
    allow_users_to_change_password: Mapped[bool]
    max_password_age: Mapped[int] = mapped_column(Integer)
    """Days a password is valid; 0 = it never expires."""
    password_reuse_prevention: Mapped[int] = mapped_column(Integer)
    """How many previous passwords a new one must differ from; 0 = off."""
    hard_expiry: Mapped[bool]
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ResourcePolicy(Base):
    """A resource-based policy (a function's permissions from ``add-permission``)."""

    __tablename__ = "iam_resource_policies"

    resource_arn: Mapped[str] = mapped_column(String(512), primary_key=True)
    document: Mapped[str] = mapped_column(Text)


class AccessLogEntry(Base):
    """One authorization decision: who tried what on which resource, and what decided it."""

    __tablename__ = "iam_access_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    request_id: Mapped[str] = mapped_column(String(64), index=True)
    time: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    principal_arn: Mapped[str] = mapped_column(String(256), index=True)
    access_key_id: Mapped[str] = mapped_column(String(32), default="")
    action: Mapped[str] = mapped_column(String(128))
    resource: Mapped[str] = mapped_column(String(512))
    allowed: Mapped[bool]
    reason: Mapped[str] = mapped_column(String(16))
    statement: Mapped[dict[str, Any]] = mapped_column(default=dict)
    context: Mapped[dict[str, Any]] = mapped_column(default=dict)
    message: Mapped[str] = mapped_column(Text, default="")


# --- functions (Lambda) ------------------------------------------------------------------
# A function's $LATEST is its lambda_functions row; published versions are immutable
# snapshots. Every other table is keyed by (function, qualifier) and removed with it.


class LambdaFunction(Base):
    """A function: its $LATEST configuration and code, and its function-wide settings."""

    __tablename__ = "lambda_functions"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    arn: Mapped[str] = mapped_column(String(256))
    description: Mapped[str] = mapped_column(Text, default="")
    role: Mapped[str] = mapped_column(String(256))
    handler: Mapped[str] = mapped_column(String(128))
    runtime: Mapped[str] = mapped_column(String(32))
    memory_mb: Mapped[int] = mapped_column(Integer)
    timeout_s: Mapped[int] = mapped_column(Integer)
    environment: Mapped[dict[str, Any]] = mapped_column(default=dict)
    code_uri: Mapped[str] = mapped_column(Text)
    code_sha256: Mapped[str] = mapped_column(String(64))
    """Hex digest (the API shows it base64-encoded, as AWS does)."""
    code_size: Mapped[int] = mapped_column(BigInteger)
    architecture: Mapped[str] = mapped_column(String(16), default="x86_64")
    tags: Mapped[dict[str, Any]] = mapped_column(default=dict)
    state: Mapped[str] = mapped_column(String(16), default="Active")
    state_reason: Mapped[str] = mapped_column(Text, default="")
    last_update_status: Mapped[str] = mapped_column(String(16), default="Successful")
    revision_id: Mapped[str] = mapped_column(String(36))
    """AWS's RevisionId: changes with every change to the function (permissions too)."""
    config_revision: Mapped[str] = mapped_column(String(36))
    """Changes only when the code or the configuration does (what environments run)."""
    reserved_concurrency: Mapped[int | None] = mapped_column(Integer)
    next_version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    last_modified: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class LambdaVersion(Base):
    """A published version: an immutable snapshot of $LATEST's configuration and code."""

    __tablename__ = "lambda_versions"

    function: Mapped[str] = mapped_column(
        ForeignKey("lambda_functions.name", ondelete="CASCADE"), primary_key=True
    )
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    description: Mapped[str] = mapped_column(Text, default="")
    role: Mapped[str] = mapped_column(String(256))
    handler: Mapped[str] = mapped_column(String(128))
    runtime: Mapped[str] = mapped_column(String(32))
    memory_mb: Mapped[int] = mapped_column(Integer)
    timeout_s: Mapped[int] = mapped_column(Integer)
    environment: Mapped[dict[str, Any]] = mapped_column(default=dict)
    code_uri: Mapped[str] = mapped_column(Text)
    code_sha256: Mapped[str] = mapped_column(String(64))
    code_size: Mapped[int] = mapped_column(BigInteger)
    architecture: Mapped[str] = mapped_column(String(16), default="x86_64")
    revision_id: Mapped[str] = mapped_column(String(36))
    config_revision: Mapped[str] = mapped_column(String(36))
    """$LATEST's config_revision when this version was published."""
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class LambdaAlias(Base):
    __tablename__ = "lambda_aliases"

    function: Mapped[str] = mapped_column(
        ForeignKey("lambda_functions.name", ondelete="CASCADE"), primary_key=True
    )
    name: Mapped[str] = mapped_column(String(128), primary_key=True)
    function_version: Mapped[str] = mapped_column(String(16))
    """"$LATEST" or a version number."""
    description: Mapped[str] = mapped_column(Text, default="")
    routing_config: Mapped[dict[str, Any]] = mapped_column(default=dict)
    revision_id: Mapped[str] = mapped_column(String(36))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class LambdaProvisioned(Base):
    """A provisioned-concurrency config of a version or alias, and how far it got."""

    __tablename__ = "lambda_provisioned"

    function: Mapped[str] = mapped_column(
        ForeignKey("lambda_functions.name", ondelete="CASCADE"), primary_key=True
    )
    qualifier: Mapped[str] = mapped_column(String(128), primary_key=True)
    requested: Mapped[int] = mapped_column(Integer)
    allocated: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[str] = mapped_column(String(16), default="IN_PROGRESS")
    status_reason: Mapped[str] = mapped_column(Text, default="")
    last_modified: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class LambdaUrl(Base):
    """A function URL (``/fn/<name>/``, or ``/fn/<name>:<alias>/`` for an alias)."""

    __tablename__ = "lambda_urls"

    function: Mapped[str] = mapped_column(
        ForeignKey("lambda_functions.name", ondelete="CASCADE"), primary_key=True
    )
    qualifier: Mapped[str] = mapped_column(String(128), primary_key=True)
    """"" for the function itself, else an alias name."""
    url_id: Mapped[str] = mapped_column(String(40))
    auth_type: Mapped[str] = mapped_column(String(16))
    cors: Mapped[dict[str, Any]] = mapped_column(default=dict)
    invoke_mode: Mapped[str] = mapped_column(String(16), default="BUFFERED")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    last_modified: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class LambdaEventConfig(Base):
    """How asynchronous invocations of a function (or of one qualifier) are retried."""

    __tablename__ = "lambda_event_configs"

    function: Mapped[str] = mapped_column(
        ForeignKey("lambda_functions.name", ondelete="CASCADE"), primary_key=True
    )
    qualifier: Mapped[str] = mapped_column(String(128), primary_key=True)
    """"$LATEST" for the unqualified function."""
    max_retry_attempts: Mapped[int | None] = mapped_column(Integer)
    max_event_age_s: Mapped[int | None] = mapped_column(Integer)
    destination_config: Mapped[dict[str, Any]] = mapped_column(default=dict)
    last_modified: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class LambdaEvent(Base):
    """An asynchronous invocation: written before the 202 goes out, so none is lost."""

    __tablename__ = "lambda_events"
    __table_args__ = (Index("ix_lambda_events_status_next", "status", "next_attempt_at"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    """The request id of the Invoke that queued it."""
    function: Mapped[str] = mapped_column(String(64), index=True)
    qualifier: Mapped[str] = mapped_column(String(128), default="")
    payload: Mapped[bytes] = mapped_column(LargeBinary)
    client_context: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="queued")
    """queued | running | succeeded | failed | expired"""
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_error: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    executed_version: Mapped[str | None] = mapped_column(String(16))


class LambdaLog(Base):
    """One invocation's log: its START .. REPORT text."""

    __tablename__ = "lambda_logs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    function: Mapped[str] = mapped_column(String(64), index=True)
    version: Mapped[str] = mapped_column(String(16))
    stream: Mapped[str] = mapped_column(String(128))
    request_id: Mapped[str] = mapped_column(String(64))
    timestamp: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    message: Mapped[str] = mapped_column(Text)


# --- Application Auto Scaling (endpoint variants) ----------------------------------------
# A scalable target is keyed by its ResourceId (``endpoint/<name>/variant/<variant>``): kennel
# scales one dimension of one namespace, so the id alone names it. Policies and scheduled
# actions go with their target; activities outlive it (AWS keeps them six weeks).


class ScalableTarget(Base):
    """An endpoint variant registered for scaling: its capacity bounds and suspensions."""

    __tablename__ = "scaling_targets"

    resource_id: Mapped[str] = mapped_column(String(256), primary_key=True)
    service_namespace: Mapped[str] = mapped_column(String(32))
    scalable_dimension: Mapped[str] = mapped_column(String(64))
    min_capacity: Mapped[int] = mapped_column(Integer)
    max_capacity: Mapped[int] = mapped_column(Integer)
    role_arn: Mapped[str] = mapped_column(String(256))
    suspended_state: Mapped[dict[str, Any]] = mapped_column(default=dict)
    """DynamicScalingInSuspended, DynamicScalingOutSuspended, ScheduledScalingSuspended."""
    tags: Mapped[dict[str, Any]] = mapped_column(default=dict)
    arn: Mapped[str] = mapped_column(String(256))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ScalingPolicy(Base):
    """A scaling policy of a target, keyed by its AWS-form policy ARN."""

    __tablename__ = "scaling_policies"
    __table_args__ = (UniqueConstraint("resource_id", "name", name="uq_scaling_policies_name"),)

    arn: Mapped[str] = mapped_column(String(512), primary_key=True)
    name: Mapped[str] = mapped_column(String(256))
    resource_id: Mapped[str] = mapped_column(
        ForeignKey("scaling_targets.resource_id", ondelete="CASCADE"), index=True
    )
    policy_type: Mapped[str] = mapped_column(String(32))
    configuration: Mapped[dict[str, Any]] = mapped_column(default=dict)
    """TargetTrackingScalingPolicyConfiguration as the caller gave it (validated)."""
    alarms: Mapped[list[Any]] = mapped_column(JSON, default=list)
    """``[{"AlarmName", "AlarmARN"}]``, the alarms AWS would create for the policy."""
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ScalingActivity(Base):
    """One scaling action (or attempt) on a target, as DescribeScalingActivities shows it."""

    __tablename__ = "scaling_activities"
    __table_args__ = (Index("ix_scaling_activities_resource_start", "resource_id", "start_time"),)

    activity_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    resource_id: Mapped[str] = mapped_column(String(256))
    description: Mapped[str] = mapped_column(Text)
    cause: Mapped[str] = mapped_column(Text)
    status_code: Mapped[str] = mapped_column(String(16))
    status_message: Mapped[str | None] = mapped_column(Text)
    start_time: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    end_time: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    details: Mapped[str | None] = mapped_column(Text)


class ScheduledAction(Base):
    """A scheduled change of a target's min/max capacity (``at(...)`` once or ``rate(...)``)."""

    __tablename__ = "scaling_scheduled_actions"
    __table_args__ = (
        UniqueConstraint("resource_id", "name", name="uq_scaling_scheduled_actions_name"),
    )

    arn: Mapped[str] = mapped_column(String(512), primary_key=True)
    name: Mapped[str] = mapped_column(String(256))
    resource_id: Mapped[str] = mapped_column(
        ForeignKey("scaling_targets.resource_id", ondelete="CASCADE"), index=True
    )
    schedule: Mapped[str] = mapped_column(String(256))
    timezone: Mapped[str | None] = mapped_column(String(64))
    start_time: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    end_time: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    min_capacity: Mapped[int | None] = mapped_column(Integer)
    max_capacity: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


# --- Model monitoring (an endpoint's captured traffic compared with its model's baseline) ---


class MonitoringSchedule(Base):
    """How often an endpoint's captured window is compared with the baseline, and its alarm."""

    __tablename__ = "monitoring_schedules"

    endpoint: Mapped[str] = mapped_column(String(63), primary_key=True)
    interval_seconds: Mapped[int] = mapped_column(Integer, default=3600)
    window_seconds: Mapped[int | None] = mapped_column(Integer)
    """How far back the first run looks (later runs start where the last one ended)."""
    thresholds: Mapped[dict[str, Any]] = mapped_column(default=dict)
    alarm: Mapped[dict[str, Any]] = mapped_column(default=dict)
    """``{"state": "OK|ALARM|INSUFFICIENT_DATA", "reason", "updated_at", "function"}``."""
    status: Mapped[str] = mapped_column(String(16), default="Scheduled")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    last_run_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class MonitoringExecution(Base):
    """One comparison of a captured window with the baseline: its checks and its report."""

    __tablename__ = "monitoring_executions"
    __table_args__ = (Index("ix_monitoring_executions_endpoint_started", "endpoint", "started_at"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    endpoint: Mapped[str] = mapped_column(String(63))
    status: Mapped[str] = mapped_column(String(32))
    """InProgress, Completed, CompletedWithViolations or Failed."""
    failure_reason: Mapped[str | None] = mapped_column(Text)
    trigger: Mapped[str] = mapped_column(String(16), default="OnDemand")
    window_start: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    window_end: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    counts: Mapped[dict[str, Any]] = mapped_column(default=dict)
    result: Mapped[dict[str, Any]] = mapped_column(default=dict)
    metrics: Mapped[dict[str, Any]] = mapped_column(default=dict)
    report_key: Mapped[str | None] = mapped_column(Text)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
