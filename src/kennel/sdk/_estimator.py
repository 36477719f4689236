"""``Estimator`` and ``PyTorch``: training jobs in the shape of the SageMaker Python SDK.

::

    estimator = PyTorch(
        entry_point="train.py", source_dir="src", role=role,
        instance_count=2, instance_type="ml.m5.xlarge",
        hyperparameters={"epochs": 3, "lr": 0.01},
        rules=[Rule.sagemaker(rule_configs.exploding_tensor())],
    )
    estimator.fit({"train": "s3://bucket/train", "valid": "s3://bucket/valid"})
    predictor = estimator.deploy(1, "ml.m5.large")

An estimator is a client of kennel's HTTP API: ``fit`` uploads the source folder once
(again only when a file in it changed), posts the job (``POST /api/v1/training-jobs``)
and, with ``wait=True``, prints its log until it ends. Every SageMaker argument kennel
cannot honour is refused by name with a ``ValidationError``, never ignored; leaving it
out, or at SageMaker's default, is always fine.
"""

from __future__ import annotations

import difflib
import importlib.metadata
import re
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

from kennel._client import path_segment
from kennel._errors import UnexpectedStatusError, ValidationError
from kennel._names import check_name
from kennel.sdk._debugger import DebuggerHookConfig, ProfilerConfig, Rule, spec_blocks
from kennel.sdk._inputs import Inputs, inputs_to_spec
from kennel.sdk._session import Session

if TYPE_CHECKING:
    from kennel.sdk._predictor import Deserializer, Predictor, Serializer

BUILTIN_TRAINER = "kennel.trainer"
"""The built-in image classifier trainer (needs no source)."""
TRAINING_JOBS = "/api/v1/training-jobs"
ACTIVE = ("InProgress", "Stopping")
ENDED_WELL = ("Completed", "Stopped")
"""What ``wait`` accepts, as SageMaker's does; ``Failed`` raises."""
MAX_RUN_LIMIT = 28 * 86_400
ROLE_ARN = re.compile(r"arn:aws[a-z-]*:iam::(\d{12}):role/(?:[\w+=,.@-]+/)*([\w+=,.@-]{1,64})")

HyperparameterValue = str | int | float | bool


# Arguments kennel refuses -----------------------------------------------------------------


@dataclass(frozen=True)
class _Unsupported:
    accepted: tuple[object, ...]
    """Values that mean "not used" (SageMaker's defaults): these pass."""
    why: str
    hint: str


_NO_VPC = "kennel's instances run on its Ray cluster's own network: there is no VPC"
_NO_KMS = "kennel does not encrypt with KMS keys"
UNSUPPORTED: dict[str, _Unsupported] = {
    "image_uri": _Unsupported(
        (None,),
        "kennel runs Python entry points in its own Python environment, not containers",
        "Give entry_point (a script in source_dir), or entry_point='kennel.trainer'.",
    ),
    "use_spot_instances": _Unsupported(
        (False,), "kennel runs on your own machines: there are no Spot instances", ""
    ),
    "max_wait": _Unsupported((None,), "it is for Spot training, which kennel does not have", ""),
    "volume_size": _Unsupported((30,), "instances use their node's own disk", ""),
    "volume_kms_key": _Unsupported((None,), _NO_KMS, ""),
    "output_kms_key": _Unsupported((None,), _NO_KMS, ""),
    "subnets": _Unsupported((None, []), _NO_VPC, ""),
    "security_group_ids": _Unsupported((None, []), _NO_VPC, ""),
    "encrypt_inter_container_traffic": _Unsupported((None, False), _NO_VPC, ""),
    "enable_network_isolation": _Unsupported(
        (None, False), "kennel's instances are processes on your machines, with network", ""
    ),
    "checkpoint_s3_uri": _Unsupported(
        (None,),
        "kennel does not sync checkpoints: SM_CHECKPOINT_DIR is a folder on the instance, "
        "gone when the job ends",
        "Save what must outlive the job in SM_MODEL_DIR (it becomes model.tar.gz).",
    ),
    "checkpoint_local_path": _Unsupported(
        (None, "/opt/ml/checkpoints"), "the checkpoint folder is SM_CHECKPOINT_DIR", ""
    ),
    "input_mode": _Unsupported(
        ("File", "FastFile"),
        "kennel puts each channel's files in a folder before the script starts (File mode)",
        "",
    ),
    "model_uri": _Unsupported(
        (None,),
        "kennel has no model channel of its own",
        "Pass the model as an input channel: fit({'model': uri, ...}).",
    ),
    "model_channel_name": _Unsupported(("model",), "kennel has no model channel", ""),
    "tensorboard_output_config": _Unsupported(
        (None,),
        "kennel does not sync TensorBoard output",
        "Write the logs into SM_MODEL_DIR to keep them.",
    ),
    "enable_sagemaker_metrics": _Unsupported(
        (None, True), "kennel always records the metrics of metric_definitions", ""
    ),
    "max_retry_attempts": _Unsupported((None, 0), "kennel does not retry failed jobs", ""),
    "git_config": _Unsupported((None,), "kennel does not clone repositories", "Clone it first."),
    "dependencies": _Unsupported(
        (None, []),
        "kennel uploads source_dir alone",
        "Put the dependencies inside source_dir (or a requirements-free package in it).",
    ),
    "container_log_level": _Unsupported((20,), "kennel sets SM_LOG_LEVEL=20 (INFO)", ""),
    "code_location": _Unsupported(
        (None,), "kennel uploads the source to its own artifact store", ""
    ),
    "instance_groups": _Unsupported((None,), "kennel's jobs have one instance type", ""),
    "keep_alive_period_in_seconds": _Unsupported(
        (None, 0), "kennel keeps no warm pools of training instances", ""
    ),
    "container_entry_point": _Unsupported((None,), "kennel runs no containers", ""),
    "container_arguments": _Unsupported(
        (None,), "kennel runs no containers", "Use hyperparameters: they become arguments."
    ),
    "disable_output_compression": _Unsupported((False,), "kennel always writes model.tar.gz", ""),
    "enable_remote_debug": _Unsupported((None, False), "kennel has no remote debugging", ""),
    "enable_infra_check": _Unsupported((None, False), "kennel has no infrastructure check", ""),
    "training_repository_access_mode": _Unsupported((None,), "kennel runs no containers", ""),
    "training_repository_credentials_provider_arn": _Unsupported(
        (None,), "kennel runs no containers", ""
    ),
    "enable_session_tag_chaining": _Unsupported((None, False), "kennel has no tags", ""),
    "training_plan": _Unsupported((None,), "kennel has no training plans", ""),
    "tags": _Unsupported(
        (None, []),
        "kennel's training jobs carry no tags",
        "Leave tags out; the job name (base_job_name) is how to tell jobs apart.",
    ),
    "compiler_config": _Unsupported((None,), "kennel has no Training Compiler", ""),
    "training_recipe": _Unsupported((None,), "kennel has no training recipes", ""),
    "recipe_overrides": _Unsupported((None,), "kennel has no training recipes", ""),
}
"""SageMaker's estimator arguments kennel does not honour: each passes only at a value
that means "not used", and is refused by name otherwise."""

_HONOURED = [
    "entry_point",
    "source_dir",
    "role",
    "instance_count",
    "instance_type",
    "hyperparameters",
    "metric_definitions",
    "max_run",
    "output_path",
    "environment",
    "base_job_name",
    "rules",
    "debugger_hook_config",
    "profiler_config",
    "disable_profiler",
    "sagemaker_session",
    "framework_version",
    "py_version",
    "distribution",
]


def _accepted(value: object, accepted: tuple[object, ...]) -> bool:
    return any(value is ok or (type(value) is type(ok) and value == ok) for ok in accepted)


def refuse_unsupported(where: str, arguments: Mapping[str, Any]) -> None:
    """Refuse, by name, a SageMaker argument kennel does not honour (or does not know).

    Raises:
        ValidationError: The first such argument, with why and what to do instead.
    """
    for name, value in arguments.items():
        rule = UNSUPPORTED.get(name)
        if rule is None:
            close = difflib.get_close_matches(name, [*_HONOURED, *UNSUPPORTED], n=1)
            raise ValidationError(
                f"{where}() got an unknown argument {name!r}.",
                hint=f"Did you mean {close[0]!r}?" if close else f"See help({where}).",
            )
        if not _accepted(value, rule.accepted):
            shown = " or ".join(repr(v) for v in rule.accepted if v is not None)
            default = f"leave it out or give {shown}" if shown else "leave it out"
            raise ValidationError(
                f"{where}({name}={value!r}) is not supported: {rule.why}.",
                hint=rule.hint or f"kennel cannot honour {name}; {default}.",
            )


# Checks of the honoured arguments -------------------------------------------------------


def _hyperparameter_string(value: HyperparameterValue) -> str:
    """How the script receives a value (as kennel's server writes it: booleans in
    lower case, like JSON)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _check_hyperparameters(values: Mapping[str, Any]) -> dict[str, HyperparameterValue]:
    checked: dict[str, HyperparameterValue] = {}
    for key, value in values.items():
        if not isinstance(key, str) or not key:
            raise ValidationError(f"hyperparameters: the name {key!r} is not a string.")
        if not isinstance(value, str | int | float | bool):
            raise ValidationError(
                f"hyperparameters[{key!r}] is a {type(value).__name__}; the script gets each "
                "hyperparameter as one string.",
                hint="Give a string, a number or a bool (e.g. json.dumps(value)).",
            )
        checked[key] = value
    return checked


def _metric_definitions(definitions: list[Mapping[str, str]] | None) -> list[dict[str, str]]:
    """SageMaker's ``[{"Name": ..., "Regex": ...}]`` as kennel's ``[{"name", "regex"}]``."""
    converted: list[dict[str, str]] = []
    for index, item in enumerate(definitions or []):
        where = f"metric_definitions[{index}]"
        if not isinstance(item, Mapping):
            raise ValidationError(f"{where} is not a dict with 'Name' and 'Regex'.")
        lowered = {str(k).lower(): v for k, v in item.items()}
        extra = sorted(set(lowered) - {"name", "regex"})
        if extra or not {"name", "regex"} <= set(lowered):
            raise ValidationError(
                f"{where} must have exactly 'Name' and 'Regex', not {sorted(item)}.",
                hint="e.g. {'Name': 'train:loss', 'Regex': 'loss=([0-9.]+)'}",
            )
        name, regex = str(lowered["name"]), str(lowered["regex"])
        try:
            groups = re.compile(regex).groups
        except re.error as exc:
            raise ValidationError(f"{where}: Regex {regex!r} does not compile: {exc}.") from None
        if not name or groups < 1:
            raise ValidationError(
                f"{where}: Regex {regex!r} needs a group ( ) around the value."
                if name
                else f"{where}: Name is empty."
            )
        converted.append({"name": name, "regex": regex})
    return converted


def _check_role(role: str | None) -> None:
    if role is not None and not ROLE_ARN.fullmatch(role):
        raise ValidationError(
            f"role {role!r} is not an IAM role ARN.",
            hint="Give arn:aws:iam::<account>:role/<name> (see `aws iam list-roles` against "
            "kennel), or leave role out: kennel runs the job with your own credentials.",
        )


def role_exists(session: Session, role: str) -> None:
    """Check with kennel's IAM that ``role`` is one of its roles.

    A caller who may not read roles (``iam:GetRole``) is not stopped: the role is only
    recorded, as kennel runs the job with the caller's credentials.

    Raises:
        ValidationError: No such role in kennel's account.
    """
    import boto3
    import botocore.exceptions
    from botocore.config import Config

    api = session.api
    creds = api.credentials
    iam = boto3.client(
        "iam",
        endpoint_url=api.endpoint_url,
        region_name=api.region,
        aws_access_key_id=creds.access_key,
        aws_secret_access_key=creds.secret_key,
        aws_session_token=creds.token,
        config=Config(connect_timeout=5, read_timeout=30, retries={"total_max_attempts": 1}),
        verify=api.ca_bundle,
    )
    name = role.rsplit("/", 1)[1]
    try:
        found = str(iam.get_role(RoleName=name)["Role"]["Arn"])
    except botocore.exceptions.ClientError as exc:
        code = str(exc.response.get("Error", {}).get("Code", ""))
        if code == "NoSuchEntity":
            raise ValidationError(
                f"role {role!r} does not exist in kennel.",
                hint="Create it (`aws iam create-role` against kennel) or leave role out: "
                "kennel runs the job with your own credentials.",
            ) from None
        if code.startswith("AccessDenied"):
            return
        raise
    if found != role:
        raise ValidationError(
            f"role {role!r} does not exist in kennel; its role {name!r} is {found}.",
            hint=f"Give role={found!r}.",
        )


def _release(text: str, where: str) -> tuple[int, ...]:
    match = re.fullmatch(r"(\d+)(?:\.(\d+))?(?:\.(\d+))?", text)
    if match is None:
        raise ValidationError(f"{where}: {text!r} is not a version like '2.4'.")
    return tuple(int(part) for part in match.groups() if part is not None)


def check_framework_version(framework_version: str | None) -> None:
    """``framework_version`` must be the torch kennel trains with, in major.minor.

    kennel runs the script with the torch of its own Python environment; the SDK checks
    against the torch installed where it runs, which is that environment when client and
    server share an installation (kennel's usual setup). Without torch here, no check.

    Raises:
        ValidationError: The versions differ; the message gives the one to use.
    """
    if framework_version is None:
        return
    wanted = _release(framework_version, "PyTorch(framework_version=...)")
    try:
        installed = importlib.metadata.version("torch")
    except importlib.metadata.PackageNotFoundError:
        return
    found = re.match(r"(\d+)\.(\d+)", installed)
    if found is None:
        return
    have = (int(found.group(1)), int(found.group(2)))
    if wanted[:2] != have[: min(2, len(wanted))]:
        raise ValidationError(
            f"PyTorch(framework_version={framework_version!r}) is not the torch kennel "
            f"trains with: {installed}.",
            hint=f"Give framework_version='{have[0]}.{have[1]}', or leave it out.",
        )


def check_py_version(py_version: str | None) -> None:
    """``py_version`` (``'py311'``) must be the Python kennel runs (the SDK's own).

    Raises:
        ValidationError: It is not; the message gives the one to use.
    """
    if py_version is None:
        return
    match = re.fullmatch(r"py(\d)(\d*)", py_version)
    running = f"py{sys.version_info.major}{sys.version_info.minor}"
    if match is None:
        raise ValidationError(
            f"PyTorch(py_version={py_version!r}) is not like 'py311'.",
            hint=f"Give py_version={running!r}, or leave it out.",
        )
    major, minor = int(match.group(1)), match.group(2)
    if major != sys.version_info.major or (minor and int(minor) != sys.version_info.minor):
        raise ValidationError(
            f"PyTorch(py_version={py_version!r}) is not the Python kennel runs: "
            f"{sys.version_info.major}.{sys.version_info.minor}.",
            hint=f"Give py_version={running!r}, or leave it out.",
        )


def check_distribution(distribution: Mapping[str, Any] | None) -> None:
    """Only torch.distributed's launchers, which kennel needs no switch for.

    Raises:
        ValidationError: Another strategy (smdistributed, MPI, parameter server, XLA).
    """
    if not distribution:
        return
    if not isinstance(distribution, Mapping):
        raise ValidationError(f"PyTorch(distribution={distribution!r}) is not a dict.")
    for key, value in distribution.items():
        if key not in ("torch_distributed", "pytorchddp"):
            raise ValidationError(
                f"PyTorch(distribution={{{key!r}: ...}}) is not supported: kennel starts one "
                "process per instance with torch.distributed's environment (MASTER_ADDR, "
                "MASTER_PORT, WORLD_SIZE, RANK).",
                hint="Leave distribution out (or give {'torch_distributed': {'enabled': True}}) "
                "and call torch.distributed.init_process_group in the script.",
            )
        extra = sorted(set(value or {}) - {"enabled"}) if isinstance(value, Mapping) else None
        if extra is None or extra:
            raise ValidationError(
                f"PyTorch(distribution={{{key!r}: {value!r}}}): kennel takes only "
                "{'enabled': True} here (one process per instance).",
                hint="Drop the other settings.",
            )


def _job_name(base: str) -> str:
    """SageMaker's ``name_from_base``: ``<base>-YYYY-MM-DD-HH-MM-SS-mmm`` in 63 characters."""
    now = datetime.now(UTC)
    stamp = now.strftime("%Y-%m-%d-%H-%M-%S") + f"-{now.microsecond // 1000:03d}"
    return f"{base[: 63 - len(stamp) - 1]}-{stamp}"


def _fingerprint(path: Path) -> tuple[tuple[str, int, int], ...]:
    """What changes when a file of the source changes (names, sizes, modification times)."""
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    found: list[tuple[str, int, int]] = []
    for file in files:
        stat = file.stat()
        found.append(
            (
                str(file.relative_to(path) if path.is_dir() else file.name),
                stat.st_size,
                stat.st_mtime_ns,
            )
        )
    return tuple(found)


# The training job ------------------------------------------------------------------------


class TrainingJob(str):
    """A training job an estimator started: its name (it *is* the name string), and
    SageMaker's ``estimator.latest_training_job`` methods.

    ``estimator.latest_training_job.name``, ``.describe()``, ``.rule_job_summary()``,
    ``.wait()`` and ``.stop()`` work as in SageMaker.
    """

    sagemaker_session: Session
    poll_seconds: float = 1.0

    def __new__(cls, name: str, sagemaker_session: Session) -> TrainingJob:
        job = super().__new__(cls, name)
        job.sagemaker_session = sagemaker_session
        return job

    @property
    def name(self) -> str:
        """The job's name."""
        return str(self)

    @property
    def job_name(self) -> str:
        """The job's name (SageMaker's other spelling)."""
        return str(self)

    @property
    def _path(self) -> str:
        return f"{TRAINING_JOBS}/{path_segment(str(self))}"

    def describe(self) -> dict[str, Any]:
        """The job as kennel describes it (``GET /api/v1/training-jobs/{name}``)."""
        job: dict[str, Any] = self.sagemaker_session.api.get(self._path)
        return job

    def rule_job_summary(self) -> list[dict[str, Any]]:
        """The rules' statuses, Debugger and profiler rules alike, in SageMaker's shape:
        ``RuleConfigurationName``, ``RuleEvaluationStatus`` (``InProgress``,
        ``NoIssuesFound``, ``IssuesFound``, ``Error``), ``StatusDetails``,
        ``LastModifiedTime``; plus kennel's ``Advice`` (what to do when it fired)."""
        return [
            {
                "RuleConfigurationName": rule["rule_configuration_name"],
                "RuleEvaluationStatus": rule["status"],
                "StatusDetails": rule.get("status_details") or "",
                "LastModifiedTime": rule.get("last_modified_time"),
                "Advice": rule.get("advice") or "",
            }
            for rule in self.describe().get("rule_evaluations") or []
        ]

    def stop(self) -> None:
        """Ask the job to stop (SIGTERM to its scripts, SIGKILL after 10 s)."""
        self.sagemaker_session.api.post(f"{self._path}/stop", {})

    def wait(self, logs: bool | str = True) -> dict[str, Any]:
        """Wait until the job ends; with ``logs``, print its log meanwhile.

        Args:
            logs: ``True``/``"All"``: the log of every instance (prefixed ``[algo-N]``
                when there are several), the status changes and, at the end, the rule
                statuses; ``"Training"``: the log only; ``"Rules"``: the rule statuses
                only; ``False``/``"None"``: nothing.

        Returns:
            The job as it ended.

        Raises:
            UnexpectedStatusError: The job Failed (the message names it and its reason).
        """
        show_log, show_rules = _log_choice(logs)
        job = self._follow() if show_log else self._poll()
        if show_rules and job.get("rule_evaluations"):
            _print_rules(job["rule_evaluations"])
        if show_log:
            print(f"Billable seconds: {job.get('billable_seconds', 0)}", flush=True)
        if job["status"] not in ENDED_WELL:
            raise UnexpectedStatusError(
                f"Training job {self} {job['status']}: "
                f"{job.get('failure_reason') or job.get('status_message') or 'no reason given'}",
                allowed_statuses=ENDED_WELL,
                actual_status=str(job["status"]),
                hint=f"See its log: `kennel jobs logs {self}` (every instance: --host algo-N).",
            )
        return job

    def logs(self) -> None:
        """Print the job's log (every instance's) until the job ends."""
        self._follow()

    def _poll(self) -> dict[str, Any]:
        while True:
            job = self.describe()
            if job["status"] not in ACTIVE:
                return job
            time.sleep(self.poll_seconds)

    def _follow(self) -> dict[str, Any]:
        """Print the log as it grows, and the status as it changes, until the job ends."""
        api = self.sagemaker_session.api
        job = self.describe()
        hosts = [f"algo-{i + 1}" for i in range(int(job["instance_count"]))]
        log = _LogPrinter(hosts)
        state = _print_state(job, None)
        while True:
            got_data, complete = False, True
            for host in hosts:
                chunk = api.get(f"{self._path}/logs", params={"host": host, "offset": log[host]})
                log.add(host, chunk["data"], chunk["next_offset"])
                got_data = got_data or bool(chunk["data"])
                complete = complete and bool(chunk["complete"])
            if (chunk["status"], chunk["secondary_status"]) != state:
                state = _print_state(self.describe(), state)
            if complete and not got_data:
                break
            if not got_data:
                time.sleep(self.poll_seconds)
        log.flush()
        final = self.describe()
        _print_state(final, state)
        return final


def _log_choice(logs: bool | str) -> tuple[bool, bool]:
    choices = {
        True: (True, True),
        "All": (True, True),
        "Training": (True, False),
        "Rules": (False, True),
        False: (False, False),
        "None": (False, False),
    }
    if isinstance(logs, bool | str) and logs in choices:
        return choices[logs]
    raise ValidationError(
        f"logs={logs!r} is not one of True, False, 'All', 'Training', 'Rules', 'None'."
    )


class _LogPrinter:
    """Whole lines of each instance's log, prefixed ``[algo-N]`` when there are several."""

    def __init__(self, hosts: list[str]) -> None:
        self.offsets = dict.fromkeys(hosts, 0)
        self.pending = dict.fromkeys(hosts, "")
        self.prefixed = len(hosts) > 1

    def __getitem__(self, host: str) -> int:
        return self.offsets[host]

    def add(self, host: str, data: str, next_offset: int) -> None:
        self.offsets[host] = int(next_offset)
        if not data:
            return
        *lines, self.pending[host] = (self.pending[host] + data).split("\n")
        for line in lines:
            self._print(host, line)

    def flush(self) -> None:
        for host, rest in self.pending.items():
            if rest:
                self._print(host, rest)
            self.pending[host] = ""

    def _print(self, host: str, line: str) -> None:
        print(f"[{host}] {line}" if self.prefixed else line, flush=True)


def _print_state(job: dict[str, Any], seen: tuple[str, str] | None) -> tuple[str, str]:
    state = (str(job["status"]), str(job["secondary_status"]))
    if state != seen:
        stamp = datetime.now().strftime("%Y-%m-%d %H:%M:%S")
        message = job.get("status_message") or ""
        print(f"{stamp} {state[1]} - {message}".rstrip(" -"), flush=True)
    return state


def _print_rules(statuses: list[dict[str, Any]]) -> None:
    """The rule statuses, as SageMaker prints them at the end of the log."""
    print("\n********* Debugger Rule Status *********\n*", flush=True)
    for rule in statuses:
        print(f"*  {rule['rule_configuration_name']}: {rule['status']}", flush=True)
    print("*\n****************************************", flush=True)


# Estimators --------------------------------------------------------------------------------


class Estimator:
    """A training job's definition, run with ``fit`` (SageMaker's ``Estimator``).

    The script is kennel's built-in trainer (``entry_point="kennel.trainer"``, no source)
    or yours: a Python file in ``source_dir``, run under SageMaker's training contract
    (``SM_MODEL_DIR``, ``SM_CHANNEL_<NAME>``, hyperparameters as ``--name value``, and
    torch.distributed's environment when ``instance_count > 1``).

    Args:
        entry_point: ``"kennel.trainer"``, or the script's path inside ``source_dir`` (with
            no ``source_dir``, the path of the script here, uploaded alone).
        source_dir: The folder with the script and what it imports (uploaded as
            ``sourcedir.tar.gz``, again only when a file changed), or the URI of a
            ``.tar.gz`` already uploaded.
        role: An IAM role ARN of kennel's account. Recorded on the estimator and checked
            to exist at the first ``fit``; kennel runs the job with your credentials.
        instance_count: Instances (1-16; DDP environment when more than one).
        instance_type: e.g. ``ml.m5.xlarge`` (see ``kennel instance-types``).
        hyperparameters: Passed to the script as ``--name value`` strings.
        metric_definitions: ``[{"Name": "train:loss", "Regex": "loss=([0-9.]+)"}]``:
            metrics read from the log (the built-in trainer has its own).
        max_run: Seconds before the job is stopped (default one day, at most 28).
        output_path: A prefix in kennel's artifact store: the model goes to
            ``<output_path>/<job name>/output/model.tar.gz`` as in SageMaker (default:
            ``training-jobs/<job name>/output`` in the store).
        environment: Environment variables for the script.
        base_job_name: Job names are ``<base_job_name>-<timestamp>`` unless ``fit`` gets a
            ``job_name``.
        rules: ``Rule.sagemaker(...)`` and ``ProfilerRule.sagemaker(...)`` rules.
        debugger_hook_config: What the hook saves (``DebuggerHookConfig``), or ``False``:
            no hook. By default the hook saves only when there are Debugger rules.
        profiler_config: The profiler's interval (``ProfilerConfig``); on by default.
        disable_profiler: Turn the profiler and its rules off.
        sagemaker_session: Where the calls go (default ``Session()``).
        **sagemaker_arguments: SageMaker's other arguments. Each is refused by name
            unless it is at a value that means "not used" (``use_spot_instances=False``,
            ``volume_size=30``, ``tags=None``, ...): image_uri, use_spot_instances,
            max_wait, volume_size, volume_kms_key, output_kms_key, subnets,
            security_group_ids, encrypt_inter_container_traffic, enable_network_isolation,
            checkpoint_s3_uri, checkpoint_local_path, input_mode (``File`` and
            ``FastFile`` pass), model_uri, tensorboard_output_config,
            enable_sagemaker_metrics, max_retry_attempts, git_config, dependencies,
            container_log_level, code_location, instance_groups,
            keep_alive_period_in_seconds, container_entry_point, container_arguments,
            disable_output_compression, enable_remote_debug, tags, ...

    Raises:
        ValidationError: An argument kennel cannot honour or a bad value, named.
    """

    default_base_job_name = "training-job"

    def __init__(
        self,
        entry_point: str | None = None,
        *,
        source_dir: str | Path | None = None,
        role: str | None = None,
        instance_count: int = 1,
        instance_type: str = "ml.m5.large",
        hyperparameters: Mapping[str, HyperparameterValue] | None = None,
        metric_definitions: list[Mapping[str, str]] | None = None,
        max_run: int = 24 * 60 * 60,
        output_path: str | None = None,
        environment: Mapping[str, str] | None = None,
        base_job_name: str | None = None,
        rules: list[Rule] | None = None,
        debugger_hook_config: DebuggerHookConfig | bool | None = None,
        profiler_config: ProfilerConfig | None = None,
        disable_profiler: bool | None = None,
        sagemaker_session: Session | None = None,
        **sagemaker_arguments: Any,
    ) -> None:
        where = type(self).__name__
        refuse_unsupported(where, sagemaker_arguments)
        if not entry_point:
            raise ValidationError(
                f"{where}() needs entry_point: a script in source_dir, or 'kennel.trainer'.",
                hint="kennel runs Python entry points, not containers (no image_uri).",
            )
        if entry_point == BUILTIN_TRAINER and source_dir is not None:
            raise ValidationError(
                f"{where}(entry_point='kennel.trainer') is built in: source_dir is not used.",
                hint="Leave source_dir out, or give your own script as entry_point.",
            )
        if instance_type.startswith("local"):
            raise ValidationError(
                f"{where}(instance_type={instance_type!r}): SageMaker's local mode is not "
                "supported by the SDK.",
                hint="Give a kennel instance type (ml.m5.large, ...); `kennel train --local` "
                "runs a script in the foreground.",
            )
        if not isinstance(instance_count, int) or isinstance(instance_count, bool):
            raise ValidationError(f"{where}(instance_count={instance_count!r}) is not a number.")
        if not 1 <= instance_count <= 16:
            raise ValidationError(f"{where}(instance_count={instance_count}) must be 1 to 16.")
        if not 1 <= max_run <= MAX_RUN_LIMIT:
            raise ValidationError(
                f"{where}(max_run={max_run}) must be 1 to {MAX_RUN_LIMIT} seconds (28 days)."
            )
        for key, value in (environment or {}).items():
            if not isinstance(value, str):
                raise ValidationError(
                    f"{where}(environment={{{key!r}: {value!r}}}): values are strings."
                )
        _check_role(role)
        if base_job_name is not None:
            check_name("base_job_name", base_job_name)
        self.entry_point = entry_point
        self.source_dir = source_dir
        self.role = role
        self.instance_count = instance_count
        self.instance_type = instance_type
        self._hyperparameters = _check_hyperparameters(hyperparameters or {})
        self.metric_definitions = [dict(m) for m in metric_definitions or []]
        self._metrics = _metric_definitions(metric_definitions)
        self.max_run = max_run
        self.output_path = output_path
        self.environment = dict(environment or {})
        self.base_job_name = base_job_name
        self.rules = list(rules or [])
        self.debugger_hook_config = debugger_hook_config
        self.profiler_config = profiler_config
        self.disable_profiler = bool(disable_profiler)
        self._blocks = spec_blocks(
            self.rules, debugger_hook_config, profiler_config, self.disable_profiler
        )
        self.sagemaker_session = sagemaker_session or Session()
        self.latest_training_job: TrainingJob | None = None
        self._uploaded: tuple[object, str] | None = None
        self._source_uri = _uploaded_source(source_dir)
        self._role_checked = False

    # Hyperparameters -----------------------------------------------------------------

    def hyperparameters(self) -> dict[str, str]:
        """The hyperparameters as the script gets them: strings (booleans as
        ``true``/``false``)."""
        return {k: _hyperparameter_string(v) for k, v in self._hyperparameters.items()}

    def set_hyperparameters(self, **hyperparameters: HyperparameterValue) -> None:
        """Add or change hyperparameters (SageMaker's ``set_hyperparameters``)."""
        self._hyperparameters.update(_check_hyperparameters(hyperparameters))

    # The job's body -------------------------------------------------------------------

    def training_job_spec(
        self, inputs: Inputs | None = None, job_name: str | None = None
    ) -> dict[str, Any]:
        """The body of ``POST /api/v1/training-jobs`` for these inputs (what ``fit``
        posts; a tuner takes it as its training job template).

        The source is uploaded the first time, and again only when a file changed.

        Args:
            inputs: As ``fit`` takes them.
            job_name: The job's name (default ``<base_job_name>-<timestamp>``).

        Raises:
            ValidationError: Bad inputs, a name SageMaker would refuse, a missing entry
                point or source folder, or a role kennel does not have.
        """
        name = job_name or _job_name(self.base_job_name or self.default_base_job_name)
        check_name("Training job", name)
        if self.role is not None and not self._role_checked:
            role_exists(self.sagemaker_session, self.role)
            self._role_checked = True
        body: dict[str, Any] = {
            "name": name,
            "entry_point": self._entry_point_in_source(),
            "hyperparameters": self.hyperparameters(),
            "instance_type": self.instance_type,
            "instance_count": self.instance_count,
            "max_runtime_seconds": self.max_run,
            "environment": dict(self.environment),
            "metric_definitions": [dict(m) for m in self._metrics],
            **inputs_to_spec(inputs),
            **self._blocks,
        }
        source = self._upload_source()
        if source is not None:
            body["source_uri"] = source
        if self.output_path:
            body["output_path"] = f"{self.output_path.rstrip('/')}/{name}/output"
        return body

    def _entry_point_in_source(self) -> str:
        assert self.entry_point is not None
        if self.entry_point == BUILTIN_TRAINER or self.source_dir is not None:
            return self.entry_point
        if self._source_uri is not None:  # attached: the job's own entry point
            return self.entry_point
        return Path(self.entry_point).name

    def _upload_source(self) -> str | None:
        if self.entry_point == BUILTIN_TRAINER:
            return None
        if self._source_uri is not None:
            return self._source_uri
        assert self.entry_point is not None
        if self.source_dir is None:
            path = Path(self.entry_point)
            if not path.is_file():
                raise ValidationError(
                    f"entry_point {self.entry_point!r} is not a file here.",
                    hint="With no source_dir, entry_point is the path of your script; or give "
                    "source_dir and entry_point's path inside it.",
                )
        else:
            path = Path(self.source_dir)
            if not path.exists():
                raise ValidationError(
                    f"source_dir {str(path)!r} does not exist.",
                    hint="Give the folder that holds your entry point.",
                )
        fingerprint = (str(path.resolve()), self.entry_point, _fingerprint(path))
        if self._uploaded is not None and self._uploaded[0] == fingerprint:
            return self._uploaded[1]
        entry = self.entry_point if self.source_dir is not None else None
        uri = self.sagemaker_session.upload_source(path, entry)
        self._uploaded = (fingerprint, uri)
        return uri

    # Running ------------------------------------------------------------------------------

    def fit(
        self,
        inputs: Inputs | None = None,
        wait: bool = True,
        logs: bool | str = True,
        job_name: str | None = None,
        experiment_config: Mapping[str, str] | None = None,
    ) -> None:
        """Start a training job; with ``wait``, print its log until it ends.

        Args:
            inputs: The channels: a URI (the ``training`` channel, as in SageMaker), a
                ``TrainingInput``, a dict of channel name to URI or ``TrainingInput``, or
                ``DatasetInput(name)``: a kennel data set, whose train/valid/test splits
                become the channels of those names. A URI is anything kennel's store reads
                (a path on the server's machine, ``file://``, ``s3://``, an artifact URI).
            wait: Wait until the job ends.
            logs: With ``wait``: ``True``/``"All"`` prints every instance's log, the
                status changes and the rule statuses; ``"Training"``, ``"Rules"``,
                ``False``/``"None"`` as in SageMaker.
            job_name: The job's name (default ``<base_job_name>-<timestamp>``).
            experiment_config: Only ``None``: kennel has no SageMaker Experiments.

        Raises:
            ValidationError: Bad inputs or arguments (nothing was started).
            UnexpectedStatusError: With ``wait``, the job Failed; the message names the job
                and the reason.
        """
        if experiment_config is not None:
            raise ValidationError(
                "fit(experiment_config=...) is not supported: kennel has no SageMaker Experiments.",
                hint="Leave it out; `kennel jobs list` and the job names keep the record.",
            )
        _log_choice(logs)
        body = self.training_job_spec(inputs, job_name)
        job = self.sagemaker_session.api.post(TRAINING_JOBS, body)
        self.latest_training_job = TrainingJob(job["name"], self.sagemaker_session)
        if wait:
            self.latest_training_job.wait(logs=logs)

    def _latest(self) -> TrainingJob:
        if self.latest_training_job is None:
            raise ValidationError(
                "This estimator has no training job yet.",
                hint="Call fit() first, or Estimator.attach(training_job_name).",
            )
        return self.latest_training_job

    @property
    def _current_job_name(self) -> str | None:
        """The latest job's name (SageMaker's attribute)."""
        return None if self.latest_training_job is None else str(self.latest_training_job)

    def describe(self) -> dict[str, Any]:
        """The latest training job as kennel describes it."""
        return self._latest().describe()

    def logs(self) -> None:
        """Print the latest job's log (every instance's) until it ends."""
        self._latest().logs()

    def rule_job_summary(self) -> list[dict[str, Any]]:
        """The latest job's rule statuses (see ``TrainingJob.rule_job_summary``)."""
        return self._latest().rule_job_summary()

    def stop(self) -> None:
        """Stop the latest training job."""
        self._latest().stop()

    @property
    def model_data(self) -> str:
        """The URI of the latest job's ``model.tar.gz``.

        Raises:
            ValidationError: No job yet, or the job has no model (not Completed).
        """
        job = self.describe()
        uri = job.get("model_artifact_uri")
        if not uri:
            raise ValidationError(
                f"Training job {job['name']} has no model: it is {job['status']}.",
                hint="Wait for it: estimator.latest_training_job.wait().",
            )
        return str(uri)

    # Attach and deploy ------------------------------------------------------------------------

    @classmethod
    def attach(
        cls,
        training_job_name: str,
        sagemaker_session: Session | None = None,
        model_channel_name: str = "model",
    ) -> Self:
        """An estimator for an existing training job, as it was made.

        ``model_data``, ``describe()``, ``deploy()`` and the rest work on that job, and
        ``fit`` runs it again (with new inputs) under a new name.

        Args:
            training_job_name: The job.
            sagemaker_session: Where the calls go (default ``Session()``).
            model_channel_name: Only ``"model"`` (kennel has no model channel).

        Raises:
            NotFoundError: No such job.
        """
        refuse_unsupported(f"{cls.__name__}.attach", {"model_channel_name": model_channel_name})
        session = sagemaker_session or Session()
        job: dict[str, Any] = session.api.get(f"{TRAINING_JOBS}/{path_segment(training_job_name)}")
        estimator = cls(
            entry_point=job["entry_point"],
            instance_count=int(job["instance_count"]),
            instance_type=str(job["instance_type"]),
            hyperparameters=job.get("hyperparameters") or {},
            metric_definitions=[
                {"Name": m["name"], "Regex": m["regex"]}
                for m in job.get("metric_definitions") or []
            ],
            max_run=int(job["max_runtime_seconds"]),
            output_path=_output_prefix(job),
            environment=job.get("environment") or {},
            sagemaker_session=session,
        )
        estimator._source_uri = job.get("source_uri")
        blocks = {"debugger": job.get("debugger"), "profiler": job.get("profiler")}
        estimator._blocks = {k: v for k, v in blocks.items() if v is not None}
        estimator.latest_training_job = TrainingJob(job["name"], session)
        return estimator

    def deploy(
        self,
        initial_instance_count: int | None = None,
        instance_type: str | None = None,
        serializer: Serializer | None = None,
        deserializer: Deserializer | None = None,
        endpoint_name: str | None = None,
        wait: bool = True,
        **unsupported: Any,
    ) -> Predictor:
        """Serve the latest job's model on a new real-time endpoint.

        Args:
            initial_instance_count: Instances (1-20).
            instance_type: e.g. ``ml.m5.large``.
            serializer: How ``predict`` encodes its data (default: by the model).
            deserializer: How ``predict`` decodes the answer (default: by the model).
            endpoint_name: The endpoint's name (default: the job's).
            wait: Wait until it is InService.
            **unsupported: SageMaker's other ``deploy`` arguments (``accelerator_type``,
                ``data_capture_config``, ``kms_key``, ``tags``, ...): refused by name
                unless ``None`` or ``False``.

        Returns:
            A ``Predictor`` for the endpoint.

        Raises:
            ValidationError: No completed job, or an argument kennel cannot honour.
        """
        for name, value in unsupported.items():
            if value is not None and value is not False:
                raise ValidationError(
                    f"deploy({name}={value!r}) is not supported by Estimator.deploy.",
                    hint=f"Leave {name} out.",
                )
        if initial_instance_count is None or instance_type is None:
            raise ValidationError(
                "deploy() needs initial_instance_count and instance_type.",
                hint="e.g. estimator.deploy(initial_instance_count=1, instance_type='ml.m5.large')",
            )
        job = self._latest()
        from kennel.sdk._predictor import deploy_training_job

        return deploy_training_job(
            self.sagemaker_session,
            str(job),
            initial_instance_count=initial_instance_count,
            instance_type=instance_type,
            endpoint_name=endpoint_name,
            serializer=serializer,
            deserializer=deserializer,
            wait=wait,
        )

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(entry_point={self.entry_point!r}, "
            f"instance_count={self.instance_count}, instance_type={self.instance_type!r})"
        )


def _uploaded_source(source_dir: str | Path | None) -> str | None:
    """A source_dir that is already an archive (a URI, or a ``.tar.gz``) is used as is."""
    if source_dir is None:
        return None
    text = str(source_dir)
    return text if "://" in text or text.endswith(".tar.gz") else None


def _output_prefix(job: dict[str, Any]) -> str | None:
    """The output_path that gives this job's output folder back (``<prefix>/<name>/output``)."""
    output = str(job.get("output_path") or "").rstrip("/")
    suffix = f"/{job['name']}/output"
    return output[: -len(suffix)] if output.endswith(suffix) else None


class PyTorch(Estimator):
    """A PyTorch training script (SageMaker's ``sagemaker.pytorch.PyTorch``).

    The script runs with the torch of kennel's Python environment, one process per
    instance; with ``instance_count > 1`` it gets torch.distributed's environment
    (``MASTER_ADDR``, ``MASTER_PORT``, ``WORLD_SIZE``, ``RANK``, ``LOCAL_RANK``) and calls
    ``torch.distributed.init_process_group`` itself, as under SageMaker's
    ``torch_distributed`` launcher (which would start one process per GPU).

    Args:
        entry_point: The script's path inside ``source_dir`` (or here, with no
            ``source_dir``), or ``"kennel.trainer"``.
        framework_version: The torch version the script expects (``"2.4"``); checked in
            major.minor against the torch kennel trains with, and refused when they differ
            (the message says which to give). Leave it out to take kennel's.
        py_version: ``"py311"``: checked against the Python kennel runs, likewise.
        source_dir: The folder with the script (see ``Estimator``).
        hyperparameters: Passed to the script as ``--name value`` strings.
        image_uri: Only ``None``: kennel runs the script in its own Python environment.
        distribution: ``None``, ``{"torch_distributed": {"enabled": True}}`` or
            ``{"pytorchddp": {"enabled": True}}`` (no switch needed: kennel always sets
            torch.distributed's environment); other strategies are refused.
        **kwargs: The ``Estimator``'s arguments (``role``, ``instance_count``,
            ``instance_type``, ``rules``, ...), and SageMaker's others, refused by name
            unless at their "not used" values.

    Raises:
        ValidationError: An argument kennel cannot honour, or a version it does not run.
    """

    default_base_job_name = "pytorch-training"

    def __init__(
        self,
        entry_point: str | None = None,
        framework_version: str | None = None,
        py_version: str | None = None,
        source_dir: str | Path | None = None,
        hyperparameters: Mapping[str, HyperparameterValue] | None = None,
        image_uri: str | None = None,
        distribution: Mapping[str, Any] | None = None,
        *,
        role: str | None = None,
        instance_count: int = 1,
        instance_type: str = "ml.m5.large",
        metric_definitions: list[Mapping[str, str]] | None = None,
        max_run: int = 24 * 60 * 60,
        output_path: str | None = None,
        environment: Mapping[str, str] | None = None,
        base_job_name: str | None = None,
        rules: list[Rule] | None = None,
        debugger_hook_config: DebuggerHookConfig | bool | None = None,
        profiler_config: ProfilerConfig | None = None,
        disable_profiler: bool | None = None,
        sagemaker_session: Session | None = None,
        **kwargs: Any,
    ) -> None:
        check_framework_version(framework_version)
        check_py_version(py_version)
        check_distribution(distribution)
        self.framework_version = framework_version
        self.py_version = py_version
        self.distribution = dict(distribution or {})
        super().__init__(
            entry_point,
            source_dir=source_dir,
            role=role,
            instance_count=instance_count,
            instance_type=instance_type,
            hyperparameters=hyperparameters,
            metric_definitions=metric_definitions,
            max_run=max_run,
            output_path=output_path,
            environment=environment,
            base_job_name=base_job_name,
            rules=rules,
            debugger_hook_config=debugger_hook_config,
            profiler_config=profiler_config,
            disable_profiler=disable_profiler,
            sagemaker_session=sagemaker_session,
            image_uri=image_uri,
            **kwargs,
        )
