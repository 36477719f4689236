"""The gateway over HTTPS with a self-signed certificate, as the README sets it up, and the
rule that keeps plain HTTP on loopback."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import boto3
import botocore.exceptions
import botocore.session
import httpx
import pytest
from botocore.config import Config
from tests._certs import self_signed
from tests._server import free_port, kennel_env
from tests.integration.functions.conftest import LAMBDA_TRUST, code_zip, wait_active

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

NO_RETRIES = Config(retries={"total_max_attempts": 1}, connect_timeout=5, read_timeout=60)

# Runs inside a function environment: plain boto3, pointed at the gateway by kennel.
CALLS_BACK = """
import boto3, os

def handler(event, context):
    identity = boto3.client("sts").get_caller_identity()
    return {"arn": identity["Arn"], "endpoint": os.environ["AWS_ENDPOINT_URL"]}
"""


def _kennel(
    env: dict[str, str], *args: str, timeout: float = 240
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "kennel", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def _profile_session(home: Path) -> boto3.Session:
    """boto3 with the profile the server wrote (its endpoint_url and ca_bundle), nothing else."""
    core = botocore.session.Session(profile="kennel")
    core.set_config_variable("config_file", str(home / "aws" / "config"))
    core.set_config_variable("credentials_file", str(home / "aws" / "credentials"))
    return boto3.Session(botocore_session=core)


def test_https_with_a_self_signed_certificate(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AWS_CA_BUNDLE", raising=False)
    tls = self_signed(tmp_path / "tls", ("127.0.0.1", "localhost"))
    home, port = tmp_path / "home", free_port()
    env = kennel_env(home, port)
    started = _kennel(
        env,
        "server",
        "--background",
        "--tls-cert-file",
        str(tls.cert),
        "--tls-key-file",
        str(tls.key),
    )
    try:
        assert started.returncode == 0, started.stdout + started.stderr
        url = f"https://127.0.0.1:{port}"
        assert f"running at {url}" in started.stdout
        assert json.loads((home / "server.json").read_text())["url"] == url
        config = (home / "aws" / "config").read_text()
        assert f"endpoint_url = {url}" in config
        assert f"ca_bundle = {tls.cert}" in config  # self-signed: its own CA bundle

        # (a) boto3 over https: verifying with the certificate, and with just the profile.
        session = _profile_session(home)
        iam = session.client("iam", endpoint_url=url, verify=str(tls.cert), config=NO_RETRIES)
        assert any(u["UserName"] == "admin" for u in iam.list_users()["Users"])
        sts = session.client("sts", config=NO_RETRIES)  # endpoint and CA from the profile
        assert sts.get_caller_identity()["Arn"].endswith(":user/admin")
        untrusting = session.client("sts", endpoint_url=url, verify=True, config=NO_RETRIES)
        with pytest.raises(botocore.exceptions.SSLError):
            untrusting.get_caller_identity()  # the usual trust store does not know it

        # (b) plain HTTP to the TLS port gets no answer.
        with pytest.raises(httpx.HTTPError):
            httpx.get(f"http://127.0.0.1:{port}/api/v1/status", timeout=5)

        # (c) the CLI, with the CA from the profile or from KENNEL_CA_BUNDLE; a wrong CA
        # is one clear line.
        users = _kennel(env, "iam", "users", "list", "--json")
        assert users.returncode == 0, users.stderr
        assert "admin" in [u["UserName"] for u in json.loads(users.stdout)]
        status = _kennel({**env, "KENNEL_CA_BUNDLE": str(tls.cert)}, "status", "--json")
        assert status.returncode == 0, status.stderr
        assert json.loads(status.stdout)["server"]["url"] == url
        stranger = self_signed(tmp_path / "stranger", ("127.0.0.1",))
        wrong = _kennel({**env, "KENNEL_CA_BUNDLE": str(stranger.cert)}, "iam", "users", "list")
        assert wrong.returncode == 1
        assert "TLS handshake" in wrong.stderr and "KENNEL_CA_BUNDLE" in wrong.stderr

        # Inside: a function's plain boto3 reaches the gateway over https, trusting it.
        assert _function_calls_back(session, url, tls.cert) == {
            "arn_is_role": True,
            "endpoint": url,
        }
    finally:
        stopped = _kennel(env, "server", "stop", timeout=120)
        assert stopped.returncode == 0, stopped.stdout + stopped.stderr
    log = (home / "logs" / "server.log").read_text()
    assert "Traceback" not in log, log[-4000:]


def _function_calls_back(session: boto3.Session, url: str, ca: Path) -> dict[str, Any]:
    iam = session.client("iam", endpoint_url=url, verify=str(ca), config=NO_RETRIES)
    lam = session.client("lambda", endpoint_url=url, verify=str(ca), config=NO_RETRIES)
    role = iam.create_role(RoleName="tls-caller", AssumeRolePolicyDocument=json.dumps(LAMBDA_TRUST))
    lam.create_function(
        FunctionName="tls-caller",
        Runtime="python3.11",
        Role=role["Role"]["Arn"],
        Handler="app.handler",
        Code={"ZipFile": code_zip({"app.py": CALLS_BACK})},
        Timeout=30,
    )
    wait_active(lam, "tls-caller")
    response = lam.invoke(FunctionName="tls-caller", Payload=b"{}")
    body = json.loads(response["Payload"].read())
    assert "FunctionError" not in response, body
    return {"arn_is_role": ":assumed-role/tls-caller/" in body["arn"], "endpoint": body["endpoint"]}


def test_a_non_loopback_host_needs_tls_or_the_opt_out(tmp_path: Path) -> None:
    home, port = tmp_path / "home", free_port()
    env = kennel_env(home, port)
    for background in ([], ["--background"]):
        refused = _kennel(env, "server", "--host", "0.0.0.0", *background, timeout=60)
        assert refused.returncode == 1, refused.stdout + refused.stderr
        message = " ".join(refused.stderr.split())  # rich wraps the line
        assert "Refusing to serve plain HTTP on 0.0.0.0" in message
        assert "--tls-cert-file" in message and "--allow-plaintext" in message
    assert not (home / "server.json").exists()

    log = tmp_path / "plaintext.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "kennel", "server", "--host", "0.0.0.0", "--allow-plaintext"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    try:
        answer = _first_answer(f"http://127.0.0.1:{port}/api/v1/status", process, log)
        assert answer.status_code == 403  # it serves (and checks signatures, as always)
        assert json.loads((home / "server.json").read_text())["url"] == (f"http://127.0.0.1:{port}")
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            code = process.wait(60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
            raise
    assert code == 0, log.read_text()[-4000:]


def _first_answer(url: str, process: subprocess.Popen[bytes], log: Path) -> httpx.Response:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"server exited {process.returncode}:\n{log.read_text()}")
        try:
            return httpx.get(url, timeout=5)
        except httpx.TransportError:
            time.sleep(0.2)
    raise AssertionError(f"no answer at {url} in 120 s:\n{log.read_text()[-4000:]}")
