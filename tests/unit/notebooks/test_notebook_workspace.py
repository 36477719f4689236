"""The workspace ``kennel notebook`` serves: examples copied without losing the user's work,
the environment kernels inherit, and the pieces of the launcher that need no server."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from tests._server import REPO

from kennel._errors import ValidationError
from kennel._settings import Settings
from kennel.notebooks._jupyter import require_jupyterlab, url_host
from kennel.notebooks._launcher import heartbeat_interval
from kennel.notebooks._workspace import (
    Connection,
    aws_files,
    copy_examples,
    default_workspace,
    find_examples,
    kennel_variables,
    notebook_environment,
    prepare_workspace,
    write_env_file,
)


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


@pytest.fixture
def examples(tmp_path: Path) -> Path:
    source = tmp_path / "examples"
    write(source / "intro.ipynb", "v1")
    write(source / "functions" / "fn.py", "def handler(e, c): ...\n")
    write(source / "functions" / "__pycache__" / "fn.cpython-311.pyc", "junk")
    write(source / ".hidden", "not an example")
    return source


def test_first_copy_brings_every_example_and_skips_caches(examples: Path, tmp_path: Path) -> None:
    workspace = tmp_path / "ws"
    result = copy_examples(examples, workspace)
    assert sorted(result.copied) == ["functions/fn.py", "intro.ipynb"]
    assert (workspace / "examples" / "intro.ipynb").read_text() == "v1"
    assert not (workspace / "examples" / "functions" / "__pycache__").exists()
    assert not (workspace / "examples" / ".hidden").exists()
    again = copy_examples(examples, workspace)
    assert sorted(again.unchanged) == ["functions/fn.py", "intro.ipynb"] and not again.copied


def test_new_versions_update_untouched_files_but_never_the_users_changes(
    examples: Path, tmp_path: Path
) -> None:
    workspace = tmp_path / "ws"
    copy_examples(examples, workspace)
    (workspace / "examples" / "intro.ipynb").write_text("my notes")
    (workspace / "examples" / "functions" / "fn.py").unlink()
    write(examples / "intro.ipynb", "v2")
    write(examples / "functions" / "fn.py", "def handler(e, c): return 1\n")
    write(examples / "new.ipynb", "new")

    result = copy_examples(examples, workspace)
    assert result.kept_changed == ["intro.ipynb"]
    assert result.kept_removed == ["functions/fn.py"]
    assert result.copied == ["new.ipynb"]
    assert (workspace / "examples" / "intro.ipynb").read_text() == "my notes"
    assert not (workspace / "examples" / "functions" / "fn.py").exists()
    assert "1 kept as you changed them" in result.summary()

    (workspace / "examples" / "intro.ipynb").write_text("v2")  # the user takes the new one
    assert "intro.ipynb" in copy_examples(examples, workspace).unchanged
    write(examples / "intro.ipynb", "v3")  # so the next version is brought in
    assert copy_examples(examples, workspace).updated == ["intro.ipynb"]
    assert (workspace / "examples" / "intro.ipynb").read_text() == "v3"


def test_a_file_the_user_made_under_an_examples_name_is_theirs(
    examples: Path, tmp_path: Path
) -> None:
    workspace = tmp_path / "ws"
    write(workspace / "examples" / "intro.ipynb", "mine, before any copy")
    assert copy_examples(examples, workspace).kept_changed == ["intro.ipynb"]
    assert (workspace / "examples" / "intro.ipynb").read_text() == "mine, before any copy"
    manifest = json.loads((workspace / ".kennel" / "examples.json").read_text())
    assert "intro.ipynb" not in manifest["files"]  # so a later version does not overwrite it


def test_examples_are_found_in_the_setting_or_the_source_checkout(tmp_path: Path) -> None:
    assert find_examples(Settings()) == REPO / "examples"
    assert find_examples(Settings(), package_dir=tmp_path / "site-packages" / "kennel") is None
    assert find_examples(Settings(examples_dir=tmp_path)) == tmp_path
    with pytest.raises(ValidationError, match="KENNEL_EXAMPLES_DIR"):
        find_examples(Settings(examples_dir=tmp_path / "missing"))


def test_the_workspace_defaults_under_the_home_and_must_be_writable(tmp_path: Path) -> None:
    assert default_workspace(Settings(home=tmp_path), "nb") == tmp_path / "notebooks" / "nb"
    made = prepare_workspace(tmp_path / "a" / "b")
    assert made.is_dir() and (made / ".kennel").is_dir()
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValidationError, match="Cannot use"):
        prepare_workspace(tmp_path / "file" / "ws")


def connection(tmp_path: Path) -> Connection:
    return Connection(
        "http://127.0.0.1:7777",
        "eu-west-1",
        "kennel",
        tmp_path / "aws" / "credentials",
        tmp_path / "aws" / "config",
    )


def test_kernels_get_kennels_endpoint_and_profile_and_lose_ambient_keys(tmp_path: Path) -> None:
    base = {"PATH": "/usr/bin", "AWS_ACCESS_KEY_ID": "AKIAREALAWS", "AWS_PROFILE": "work"}
    env = notebook_environment(base, connection(tmp_path), "nb")
    assert env["PATH"] == "/usr/bin" and "AWS_ACCESS_KEY_ID" not in env
    assert env["KENNEL_ENDPOINT_URL"] == "http://127.0.0.1:7777"
    assert env["KENNEL_PROFILE"] == env["AWS_PROFILE"] == "kennel"
    assert env["AWS_DEFAULT_REGION"] == env["KENNEL_REGION"] == "eu-west-1"
    assert env["AWS_SHARED_CREDENTIALS_FILE"] == str(tmp_path / "aws" / "credentials")
    assert env["AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME"] == "http://127.0.0.1:7777"
    assert env["AWS_ENDPOINT_URL_LAMBDA"] == "http://127.0.0.1:7777"
    assert "AWS_ENDPOINT_URL_S3" not in env  # real S3 stays real S3
    assert env["KENNEL_NOTEBOOK_INSTANCE"] == "nb"


def test_aws_files_resolve_like_boto3(tmp_path: Path) -> None:
    home = Path("~").expanduser()
    assert aws_files({}) == (home / ".aws" / "credentials", home / ".aws" / "config")
    given = {"AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "c"), "AWS_CONFIG_FILE": "~/cfg"}
    assert aws_files(given) == (tmp_path / "c", home / "cfg")


def test_the_env_file_sources_in_a_shell(tmp_path: Path) -> None:
    variables = kennel_variables(connection(tmp_path / "it's here"), "nb")
    path = write_env_file(tmp_path, variables)
    shown = subprocess.run(
        ["bash", "-c", f". {path} && env"], capture_output=True, text=True, check=True, timeout=30
    ).stdout
    seen = dict(line.split("=", 1) for line in shown.splitlines() if "=" in line)
    for key, value in variables.items():
        assert seen[key] == value


def test_heartbeats_come_at_least_three_times_per_server_timeout() -> None:
    assert heartbeat_interval(10, 60) == 10
    assert heartbeat_interval(10, 6) == 2
    assert heartbeat_interval(10, 0.01) == 0.2  # and never in a busy loop


def test_browsers_reach_wildcard_addresses_on_loopback() -> None:
    assert url_host("0.0.0.0") == "127.0.0.1"
    assert url_host("::1") == "[::1]"
    assert url_host("127.0.0.1") == "127.0.0.1"


def test_jupyterlab_is_installed_here() -> None:
    require_jupyterlab()  # the dev extra has it; its absence is checked end to end
