"""Settings: ``KENNEL_*`` environment variables, then ``$KENNEL_HOME/config.toml``.

The one piece of global state kennel allows; everything else is passed in.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import AliasChoices, Field, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

DEFAULT_PORT = 7733
"""The documented default port of ``kennel server`` (override with KENNEL_PORT / --port)."""


def default_home() -> Path:
    return Path("~/.kennel").expanduser()


class Settings(BaseSettings):
    """Everything a kennel server or client can be configured with."""

    model_config = SettingsConfigDict(env_prefix="KENNEL_", extra="ignore")

    home: Path = Field(default_factory=default_home)
    host: str = "127.0.0.1"
    """The address the gateway binds. Anything but a loopback address needs TLS (below) or
    ``allow_plaintext``: keys are not sent, but every request and answer would be readable."""
    port: int = Field(default=DEFAULT_PORT, ge=0, le=65535)
    endpoint_url: str | None = None
    """Where clients find the server; defaults to http(s)://host:port."""
    tls_cert_file: Path | None = None
    """PEM certificate (with its chain) the gateway serves HTTPS with; unset: plain HTTP."""
    tls_key_file: Path | None = None
    """The certificate's PEM private key (unset: it is in ``tls_cert_file``)."""
    allow_plaintext: bool = False
    """Serve plain HTTP on a non-loopback host anyway: only for a TLS-terminating proxy in
    front that alone can reach the port."""
    ca_bundle: Path | None = None
    """PEM CA certificates that clients (the CLI, the SDK, the AWS profile the server
    writes, function environments) trust for an https endpoint. Unset: AWS_CA_BUNDLE or
    the profile's ``ca_bundle``, else the usual trust store; a server whose certificate is
    self-signed uses that certificate."""
    profile: str = "kennel"
    """The AWS shared-credentials profile the bootstrap writes and clients read."""
    region: str = "us-east-1"
    database_url: str | None = None
    """SQLAlchemy URL; defaults to a SQLite file in the home folder."""
    artifact_url: str | None = None
    """fsspec URL of the artifact store; defaults to a folder in the home folder."""
    ray_address: str | None = Field(
        default=None, validation_alias=AliasChoices("KENNEL_RAY_ADDRESS", "RAY_ADDRESS")
    )
    """A Ray cluster to join; unset means: start a local Ray head."""
    master_key: str | None = None
    """Fernet key that encrypts secret keys at rest; defaults to a 0600 file in the home."""
    write_aws_profile: bool = True
    """Write the bootstrap admin's key into the AWS shared credentials/config files."""
    warm_trials: bool = True
    """Tuning jobs hold max_parallel warm slots (data downloaded, torch imported) and fork
    each one-instance trial there: it starts in well under a second instead of seconds.
    Off (KENNEL_WARM_TRIALS=0): every trial is a fresh training job, as on SageMaker."""
    max_clock_skew_seconds: int = 300
    max_request_bytes: int = 20 * 2**30
    max_json_bytes: int = 6 * 2**20
    dataset_max_bytes: int = 20 * 2**30
    dataset_max_files: int = 200_000
    fetch_allow_networks: str = ""
    """CIDRs/addresses model servers may fetch image URLs from although not public."""
    endpoint_model_timeout_seconds: float = Field(default=60.0, gt=0)
    """How long an instance may take to answer one invocation (SageMaker: 60 s)."""
    endpoint_health_timeout_seconds: float = Field(default=600.0, gt=0)
    """How long new instances may take to answer GET /ping with 200."""
    endpoint_health_check_seconds: float = Field(default=1.0, gt=0)
    """How often instances are checked (a crashed one is replaced)."""
    endpoint_metrics_period_seconds: float = Field(default=60.0, gt=0)
    """One endpoint metric sample per variant per period (CloudWatch's: one minute).

    Autoscaling alarms count in these periods (3 above the target to scale out)."""
    endpoint_metrics_retention_seconds: float = Field(default=15 * 86400, gt=0)
    """How long endpoint metric samples are kept (CloudWatch keeps 1-minute data 15 days)."""
    endpoint_hold_seconds: float = Field(default=120.0, gt=0)
    """How long a request to a variant scaled to zero waits for its first instance."""
    endpoint_hold_max_requests: int = Field(default=256, ge=0)
    """How many requests a variant at zero instances holds; more get 429 + Retry-After."""
    sts_min_session_seconds: int = Field(default=900, ge=1)
    """The shortest temporary credentials STS hands out (AWS: 900 s; tests lower it)."""
    function_concurrency_limit: int = Field(default=100, ge=1)
    """The account's concurrent executions of functions (AWS: 1000 by default)."""
    function_unreserved_min: int = Field(default=10, ge=0)
    """What reserved concurrency must leave to the unreserved pool (AWS: 100)."""
    function_idle_seconds: float = Field(default=300.0, gt=0)
    """How long a warm execution environment waits for work before it is reaped."""
    function_async_retry_delays: str = "60,120"
    """Seconds before the first and second retry of a failed asynchronous invocation."""
    function_spawn_timeout_seconds: float = Field(default=30.0, gt=0)
    """How long starting one execution environment may take."""
    function_max_zip_bytes: int = Field(default=50 * 2**20, ge=1)
    """The largest deployment package (zipped) CreateFunction/UpdateFunctionCode accept."""
    function_metrics_period_seconds: float = Field(default=60.0, gt=0)
    """One function metric sample per period (CloudWatch's: one minute)."""
    notebook_heartbeat_seconds: float = Field(default=10.0, gt=0)
    """How often ``kennel notebook`` tells the server its JupyterLab still runs (it goes
    faster when the server's timeout below asks for it: at least three per timeout)."""
    notebook_heartbeat_timeout_seconds: float = Field(default=60.0, gt=0)
    """Server side: a notebook instance silent this long is shown Stopped (its command
    died, e.g. kill -9), and its cost stops at its last heartbeat."""
    notebook_start_timeout_seconds: float = Field(default=180.0, gt=0)
    """How long ``kennel notebook`` waits for JupyterLab to answer before giving up."""
    stack_lock_seconds: float = Field(default=60.0, ge=1.0, le=3600.0)
    """Client side: the lease of a stack's lock that ``kennel up``/``down`` takes (renewed
    every third of it while the command runs). A command killed without releasing it
    blocks other runs of that stack for at most this long; then the next one takes over."""
    log_format: Literal["text", "json"] = "text"
    """The server log: ``text`` lines, or ``json``: one JSON object per line (time, level,
    logger, message, the request id inside a request, the traceback) plus one access line
    per request."""
    examples_dir: Path | None = None
    """The examples ``kennel notebook`` copies into its workspace (default: the source
    checkout's ``examples/``)."""

    @field_validator("home", mode="before")
    @classmethod
    def _expand_home(cls, value: Any) -> Any:
        return Path(value).expanduser() if isinstance(value, str | Path) else value

    @field_validator("tls_cert_file", "tls_key_file", "ca_bundle", mode="before")
    @classmethod
    def _absolute_file(cls, value: Any) -> Any:
        """Absolute: the server hands these paths to a background child and to the AWS
        profile it writes, which are read from other working directories."""
        if isinstance(value, str) and not value.strip():
            return None
        return Path(value).expanduser().absolute() if isinstance(value, str | Path) else value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        home = _home_from_env()
        toml = TomlConfigSettingsSource(settings_cls, toml_file=home / "config.toml")
        return (init_settings, env_settings, toml)

    # Derived locations -------------------------------------------------------

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.home / 'kennel.db'}"

    @property
    def resolved_artifact_url(self) -> str:
        return self.artifact_url or str(self.home / "artifacts")

    @property
    def tls_enabled(self) -> bool:
        return self.tls_cert_file is not None

    @property
    def binds_loopback(self) -> bool:
        """Whether ``host`` is reachable from this machine only (127.0.0.0/8, ::1)."""
        if self.host.lower() == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host.strip("[]")).is_loopback
        except ValueError:
            return False  # a name: it may resolve to any interface

    @property
    def resolved_endpoint_url(self) -> str:
        if self.endpoint_url:
            return self.endpoint_url.rstrip("/")
        host = {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "::1"}.get(self.host, self.host)
        if ":" in host and not host.startswith("["):
            host = f"[{host}]"  # an IPv6 literal
        scheme = "https" if self.tls_enabled else "http"
        return f"{scheme}://{host}:{self.port}"

    @property
    def tmp_dir(self) -> Path:
        return self.home / "tmp"

    @property
    def log_dir(self) -> Path:
        return self.home / "logs"

    @property
    def server_file(self) -> Path:
        """Written by a running server: its pid and URL (for ``server stop``/``status``)."""
        return self.home / "server.json"


SERVER_SECRET_VARIABLES = ("KENNEL_MASTER_KEY", "KENNEL_DATABASE_URL")
"""The server's own secrets in its environment: the key that decrypts every stored secret
key, and a database URL that may hold a password."""


def without_server_secrets(environ: Mapping[str, str]) -> dict[str, str]:
    """``environ`` for a process that runs user code (a training script, a model server's
    handlers, a function's template): the server's secrets removed. Such a process often
    prints its environment, and its log is the user's to read."""
    return {k: v for k, v in environ.items() if k not in SERVER_SECRET_VARIABLES}


def _home_from_env() -> Path:
    import os

    raw = os.environ.get("KENNEL_HOME")
    return Path(raw).expanduser() if raw else default_home()


def load_settings(**overrides: Any) -> Settings:
    """Read settings now (env + config file), with explicit overrides on top."""
    return Settings(**{k: v for k, v in overrides.items() if v is not None})
