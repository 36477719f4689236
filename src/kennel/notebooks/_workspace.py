"""The folder ``kennel notebook`` serves: where it is, the examples in it, the environment.

The workspace defaults to ``$KENNEL_HOME/notebooks/<name>``: one folder per notebook
instance that outlives stops and starts, as a SageMaker notebook instance's volume does,
wherever the command is run from. The examples are copied into ``examples/`` inside it,
and a manifest (``.kennel/examples.json``) remembers what was copied, so a later start
brings new and updated examples in but never overwrites (or brings back) a file the user
changed or removed.

The examples are found in ``KENNEL_EXAMPLES_DIR`` when set, else in the source checkout
kennel runs from (``examples/`` beside ``pyproject.toml``); an installed wheel carries
none, and the workspace then starts without them.
"""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import shutil
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import kennel
from kennel._errors import ValidationError
from kennel._settings import Settings

EXAMPLES = "examples"
STATE = ".kennel"
"""Inside the workspace: the manifest, the environment file, JupyterLab's log."""
MANIFEST = "examples.json"
ENV_FILE = "env"
SKIPPED = {"__pycache__", ".ipynb_checkpoints", ".pytest_cache", ".DS_Store"}
KENNEL_SERVICES = ("SAGEMAKER_RUNTIME", "LAMBDA", "IAM", "STS", "APPLICATION_AUTO_SCALING")
"""The AWS services kennel answers: boto3 clients of these in a notebook reach kennel."""
AMBIENT_KEYS = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
)
"""Dropped from kernels: boto3 prefers them to the profile, and kennel's key is the profile's."""


def default_workspace(settings: Settings, name: str) -> Path:
    return settings.home / "notebooks" / name


def find_examples(settings: Settings, package_dir: Path | None = None) -> Path | None:
    """``KENNEL_EXAMPLES_DIR``, else ``examples/`` of the source checkout, else None."""
    if settings.examples_dir is not None:
        folder = settings.examples_dir.expanduser()
        if not folder.is_dir():
            raise ValidationError(
                f"KENNEL_EXAMPLES_DIR {str(folder)!r} is not a folder.",
                hint="Point it at a folder of examples, or unset it.",
            )
        return folder
    start = package_dir or Path(kennel.__file__).resolve().parent
    for parent in list(start.parents)[:3]:  # src/kennel -> src -> checkout
        project = parent / "pyproject.toml"
        if (parent / EXAMPLES).is_dir() and project.is_file() and _is_kennel(project):
            return parent / EXAMPLES
    return None


def _is_kennel(pyproject: Path) -> bool:
    try:
        return 'name = "kennel"' in pyproject.read_text(encoding="utf-8")
    except OSError:
        return False


@dataclass
class ExamplesCopy:
    """What a copy of the examples did, file by file (paths relative to ``examples/``)."""

    copied: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    kept_changed: list[str] = field(default_factory=list)
    """The user changed these: their version stays, the example's is not copied."""
    kept_removed: list[str] = field(default_factory=list)
    """The user removed these: they stay removed."""
    unchanged: list[str] = field(default_factory=list)

    def summary(self) -> str:
        parts = [
            f"{len(self.copied)} copied",
            f"{len(self.updated)} updated",
            f"{len(self.unchanged)} up to date",
        ]
        if self.kept_changed:
            parts.append(f"{len(self.kept_changed)} kept as you changed them")
        if self.kept_removed:
            parts.append(f"{len(self.kept_removed)} kept removed")
        return ", ".join(parts)


def copy_examples(source: Path, workspace: Path) -> ExamplesCopy:
    """Bring ``source`` into ``workspace/examples`` without overwriting the user's changes."""
    target = workspace / EXAMPLES
    manifest_path = workspace / STATE / MANIFEST
    known = _read_manifest(manifest_path)
    result = ExamplesCopy()
    for relative in _example_files(source):
        key = relative.as_posix()
        new_digest = _sha256(source / relative)
        dest = target / relative
        if not dest.exists():
            if key in known:
                result.kept_removed.append(key)
                continue
            _copy(source / relative, dest)
            result.copied.append(key)
        else:
            current = _sha256(dest) if dest.is_file() else None
            if current == new_digest:
                result.unchanged.append(key)
            elif current is not None and current == known.get(key):
                _copy(source / relative, dest)
                result.updated.append(key)
            else:
                result.kept_changed.append(key)
                continue  # the manifest keeps what was copied last, not the user's version
        known[key] = new_digest
    _write_manifest(manifest_path, known)
    return result


def _example_files(source: Path) -> Iterator[Path]:
    for path in sorted(source.rglob("*")):
        relative = path.relative_to(source)
        if any(part in SKIPPED or part.startswith(".") for part in relative.parts):
            continue
        if path.is_file() and not path.is_symlink() and path.suffix != ".pyc":
            yield relative


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(2**20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _copy(source: Path, dest: Path) -> None:
    # copyfile, not copy2: an example from a read-only install must land writable.
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(dest.name + ".kennel-tmp")
    shutil.copyfile(source, tmp)
    os.replace(tmp, dest)


def _read_manifest(path: Path) -> dict[str, str]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    files = data.get("files") if isinstance(data, dict) else None
    if not isinstance(files, dict):
        return {}
    return {str(k): str(v) for k, v in files.items()}


def _write_manifest(path: Path, files: dict[str, str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".kennel-tmp")
    tmp.write_text(json.dumps({"files": dict(sorted(files.items()))}, indent=2), encoding="utf-8")
    os.replace(tmp, path)


@dataclass(frozen=True)
class Connection:
    """Where kennel is and whose key signs: what a notebook needs to reach it."""

    endpoint_url: str
    region: str
    profile: str
    credentials_file: Path
    config_file: Path
    ca_bundle: str | None = None
    """The CA certificates an https kennel is verified with (None: the usual trust store)."""


def aws_files(environ: Mapping[str, str]) -> tuple[Path, Path]:
    """The AWS shared credentials and config files, as boto3 resolves them (absolute)."""
    creds = environ.get("AWS_SHARED_CREDENTIALS_FILE") or "~/.aws/credentials"
    config = environ.get("AWS_CONFIG_FILE") or "~/.aws/config"
    return Path(creds).expanduser().resolve(), Path(config).expanduser().resolve()


def kennel_variables(connection: Connection, name: str) -> dict[str, str]:
    """The variables that point ``kennel.Session()`` and boto3 at this kennel."""
    variables = {
        "KENNEL_ENDPOINT_URL": connection.endpoint_url,
        "KENNEL_PROFILE": connection.profile,
        "KENNEL_REGION": connection.region,
        "KENNEL_NOTEBOOK_INSTANCE": name,
        "AWS_PROFILE": connection.profile,
        "AWS_DEFAULT_REGION": connection.region,
        "AWS_SHARED_CREDENTIALS_FILE": str(connection.credentials_file),
        "AWS_CONFIG_FILE": str(connection.config_file),
    }
    for service in KENNEL_SERVICES:
        variables[f"AWS_ENDPOINT_URL_{service}"] = connection.endpoint_url
    if connection.ca_bundle:
        variables["KENNEL_CA_BUNDLE"] = connection.ca_bundle
        variables["AWS_CA_BUNDLE"] = connection.ca_bundle
    return variables


def notebook_environment(
    base: Mapping[str, str], connection: Connection, name: str
) -> dict[str, str]:
    """JupyterLab's environment, which its kernels and terminals inherit: ``base`` with
    kennel's endpoint, profile and region set and ambient AWS keys removed."""
    env = {k: v for k, v in base.items() if k not in AMBIENT_KEYS}
    env.update(kennel_variables(connection, name))
    return env


def write_env_file(workspace: Path, variables: Mapping[str, str]) -> Path:
    """``.kennel/env``: the same variables for a shell or an editor (``. .kennel/env``)."""
    path = workspace / STATE / ENV_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = ["# Written by `kennel notebook`: what its kernels have set to reach kennel."]
    lines += [f"export {key}={shlex.quote(value)}" for key, value in sorted(variables.items())]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def prepare_workspace(folder: Path) -> Path:
    """Make the workspace folder (and its parents), or say why it cannot be."""
    folder = folder.expanduser().resolve()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / STATE).mkdir(exist_ok=True)
    except OSError as error:
        raise ValidationError(
            f"Cannot use {folder} as the workspace: {error.strerror or error}.",
            hint="Give --workspace a folder you can write to.",
        ) from None
    if not os.access(folder, os.W_OK):
        raise ValidationError(
            f"Cannot write to the workspace {folder}.",
            hint="Give --workspace a folder you can write to.",
        )
    return folder
