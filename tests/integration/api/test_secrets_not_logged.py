"""No secret reaches a log: a real server does everything that carries one (new access
keys, STS sessions, an MFA seed, presigned URLs, function variables and credentials,
signatures, wrong secrets), then every log it and its processes wrote is searched.

Searched: the server's own output, every file under ``$KENNEL_HOME/logs`` and
``$KENNEL_HOME/jobs`` (training job logs), Ray's session folder (its and its workers'
logs), the work folders of function environments and training instances, and the two logs
kept in the database (IAM's access log and the functions' invocation logs). Each secret
is looked for as itself, URL-encoded and JSON-escaped.
"""

from __future__ import annotations

import json
import re
import secrets
import shutil
import sqlite3
import string
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import boto3
import httpx
import pyotp
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from cryptography.fernet import Fernet
from tests._server import RunningServer, start_server, stop_server
from tests._uploads import upload_sources
from tests.integration.functions.conftest import (
    BASIC_EXECUTION,
    LAMBDA_TRUST,
    code_zip,
    wait_active,
)

from kennel._client import KennelClient

pytestmark = [pytest.mark.slow, pytest.mark.timeout(420)]

NO_RETRIES = Config(retries={"total_max_attempts": 1}, connect_timeout=5, read_timeout=120)
SIGNATURE = re.compile(r"Signature=([0-9a-f]{64})")
HEX64 = re.compile(rb"[0-9a-f]{64}")
MAX_SCANNED_BYTES = 256 * 2**20

FUNCTION = """
import os

def handler(event, context):
    print("handling", event.get("kind"))
    if event.get("kind") == "fail":
        raise ValueError("the handler failed on purpose")
    return {
        "secret": os.environ["AWS_SECRET_ACCESS_KEY"],
        "token": os.environ["AWS_SESSION_TOKEN"],
    }
"""

# A SageMaker script that prints its whole environment, as many do while being debugged:
# what kennel hands a job must hold no secret of the server's.
TRAINING_SCRIPT = """
import json, os, pathlib
print("environment:", json.dumps(dict(os.environ), sort_keys=True), flush=True)
pathlib.Path(os.environ["SM_MODEL_DIR"], "model.txt").write_text("done")
"""


class Secrets:
    """What must not be logged, by a name that says where it came from."""

    def __init__(self) -> None:
        self.values: dict[str, str] = {}
        self.signatures: dict[str, str] = {}

    def add(self, name: str, value: str | bytes | None) -> None:
        assert value, f"{name} is empty: the test did not get the secret it meant to"
        self.values[name] = value.decode() if isinstance(value, bytes) else value

    def signed(self, where: str, authorization: str) -> None:
        for signature in SIGNATURE.findall(authorization):
            self.signatures[signature] = where

    def capture(self, client: Any, where: str) -> Any:
        """Record the signature of every request ``client`` sends."""

        def before_send(request: Any, **_: Any) -> None:
            header = request.headers.get("Authorization")
            if header:
                self.signed(where, header.decode() if isinstance(header, bytes) else header)

        client.meta.events.register("before-send", before_send)
        return client

    def needles(self) -> Iterator[tuple[str, bytes]]:
        for name, value in self.values.items():
            forms = {value, quote(value, safe=""), json.dumps(value)[1:-1]}
            for form in forms:
                yield name, form.encode()


class CapturingClient(KennelClient):
    """kennel's own client (as the CLI signs), recording its signatures."""

    found: Secrets

    def _signed_headers(self, *args: Any, **kwargs: Any) -> dict[str, str]:
        headers = super()._signed_headers(*args, **kwargs)
        self.found.signed("kennel client", headers["Authorization"])
        return headers


@pytest.mark.parametrize(
    ("log_format", "key_in_env"), [("json", True), ("text", False)], ids=["json", "text"]
)
def test_no_secret_reaches_a_log(tmp_path: Path, log_format: str, key_in_env: bool) -> None:
    # Short: Ray's socket paths under it must fit in 107 bytes.
    ray_tmp = Path(tempfile.mkdtemp(prefix="kr", dir="/tmp"))
    work = tmp_path / "work"
    home = tmp_path / "home"
    found = Secrets()
    env = {
        "KENNEL_LOG_FORMAT": log_format,
        "KENNEL_STS_MIN_SESSION_SECONDS": "1",
        "RAY_TMPDIR": str(ray_tmp),
        "KENNEL_FUNCTION_WORK_ROOT": str(work / "functions"),
        "KENNEL_JOB_WORK_ROOT": str(work / "jobs"),
        "KENNEL_ENDPOINT_WORK_ROOT": str(work / "endpoints"),
    }
    if key_in_env:
        env["KENNEL_MASTER_KEY"] = Fernet.generate_key().decode()
    try:
        server = start_server(home, **env)
        try:
            _exercise(server, found, tmp_path)
        finally:
            code = stop_server(server)
        assert code == 0, server.log.read_text()[-4000:]
        master = env.get("KENNEL_MASTER_KEY") or (home / "master.key").read_text().strip()
        found.add("master key", master)
        _, admin_secret = server.credentials()
        found.add("admin secret access key", admin_secret)
        assert len(found.signatures) > 20, "too few signed requests were captured"

        hits, searched = _scan(found, _log_texts(server, ray_tmp, work))
        for expected in (
            "server output",
            str(home / "jobs" / "leaky-job" / "algo-1.log"),  # the script's printed environment
            str(work / "functions" / "template.log"),
            "database table lambda_logs",
        ):
            assert expected in searched, f"{expected} was not searched"
        assert any("/logs/raylet" in where for where in searched), "Ray's logs were not searched"
        assert not hits, "secrets in logs:\n" + "\n".join(hits)
    finally:
        shutil.rmtree(ray_tmp, ignore_errors=True)


def _exercise(server: RunningServer, found: Secrets, tmp_path: Path) -> None:
    admin = server.session

    def client(service: str, session: boto3.Session | None = None, **kw: Any) -> Any:
        made = (session or boto3.Session()).client(
            service, endpoint_url=server.url, region_name="us-east-1", config=NO_RETRIES, **kw
        )
        return found.capture(made, service)

    iam = client("iam", admin)
    account = client("sts", admin).get_caller_identity()["Account"]

    # A user and an access key: the new secret comes back in the answer.
    iam.create_user(UserName="leaky")
    key = iam.create_access_key(UserName="leaky")["AccessKey"]
    found.add("user secret access key", key["SecretAccessKey"])
    user = {
        "aws_access_key_id": key["AccessKeyId"],
        "aws_secret_access_key": key["SecretAccessKey"],
    }
    assert client("sts", **user).get_caller_identity()["Arn"].endswith(":user/leaky")
    with pytest.raises(ClientError):
        client("iam", **user).list_users()  # denied: the denial is logged, not the key

    # Sign-ins that fail: a wrong secret, an unknown key, a forged signature and token.
    wrong = _secret_like()
    found.add("wrong secret", wrong)
    with pytest.raises(ClientError, match="SignatureDoesNotMatch|InvalidSignature"):
        client(
            "sts", aws_access_key_id=key["AccessKeyId"], aws_secret_access_key=wrong
        ).get_caller_identity()
    unknown = _secret_like()
    found.add("unknown key's secret", unknown)
    with pytest.raises(ClientError):
        client(
            "sts", aws_access_key_id="AKIA" + "Q" * 16, aws_secret_access_key=unknown
        ).get_caller_identity()
    forged_signature, forged_token = secrets.token_hex(32), _secret_like(120)
    found.signatures[forged_signature] = "forged Authorization header"
    found.add("forged session token", forged_token)
    forged = httpx.post(
        server.url + "/",
        content=b"Action=GetCallerIdentity&Version=2011-06-15",
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Amz-Date": time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()),
            "X-Amz-Security-Token": forged_token,
            "Authorization": "AWS4-HMAC-SHA256 Credential="
            f"{key['AccessKeyId']}/{time.strftime('%Y%m%d', time.gmtime())}/us-east-1/sts/"
            f"aws4_request, SignedHeaders=host;x-amz-date, Signature={forged_signature}",
        },
    )
    assert forged.status_code == 403

    # MFA: the seed, and a session made with a code (and a wrong code refused).
    device = iam.create_virtual_mfa_device(VirtualMFADeviceName="leaky")["VirtualMFADevice"]
    seed = device["Base32StringSeed"]
    found.add("MFA seed", seed)
    totp = pyotp.TOTP(seed.decode())
    step = int(time.time()) // 30
    iam.enable_mfa_device(
        UserName="leaky",
        SerialNumber=device["SerialNumber"],
        AuthenticationCode1=totp.at((step - 1) * 30),
        AuthenticationCode2=totp.at(step * 30),
    )
    good = totp.at((step + 1) * 30)
    with pytest.raises(ClientError):
        client("sts", **user).get_session_token(
            SerialNumber=device["SerialNumber"], TokenCode=f"{(int(good) + 1) % 10**6:06d}"
        )
    mfa = client("sts", **user).get_session_token(
        SerialNumber=device["SerialNumber"], TokenCode=good
    )["Credentials"]
    _use_session(found, "MFA session", mfa, client)

    # STS: AssumeRole and GetSessionToken, each session then used.
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{account}:root"},
                "Action": "sts:AssumeRole",
            }
        ],
    }
    role = iam.create_role(RoleName="leaky-role", AssumeRolePolicyDocument=json.dumps(trust))
    iam.attach_role_policy(RoleName="leaky-role", PolicyArn=BASIC_EXECUTION)
    assumed = client("sts", admin).assume_role(
        RoleArn=role["Role"]["Arn"], RoleSessionName="leaky", DurationSeconds=900
    )["Credentials"]
    _use_session(found, "AssumeRole session", assumed, client)
    session = client("sts", admin).get_session_token(DurationSeconds=900)["Credentials"]
    _use_session(found, "GetSessionToken session", session, client)

    # Presigned URLs: signature and session token in the query string.
    signer = client("lambda", **_keys(session))
    url = signer.generate_presigned_url("list_functions", ExpiresIn=300)
    query = parse_qs(urlsplit(url).query)
    found.signatures[query["X-Amz-Signature"][0]] = "presigned URL"
    assert httpx.get(url).status_code == 200
    tampered = url.replace(query["X-Amz-Signature"][0], secrets.token_hex(32))
    found.signatures[parse_qs(urlsplit(tampered).query)["X-Amz-Signature"][0]] = "tampered URL"
    assert httpx.get(tampered).status_code == 403

    _function(found, client, admin)
    _training_job(server, found, tmp_path)

    # kennel's own client and the CLI sign too.
    CapturingClient.found = found
    creds = admin.get_credentials().get_frozen_credentials()
    with CapturingClient(server.url, creds, "us-east-1") as api:
        api.get("/api/v1/status")
    made = subprocess.run(
        [sys.executable, "-m", "kennel", "iam", "keys", "create", "leaky", "--json"],
        env=server.env,
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )
    assert made.returncode == 0, made.stderr
    found.add("CLI-made secret access key", json.loads(made.stdout)["SecretAccessKey"])


def _use_session(found: Secrets, name: str, creds: dict[str, Any], client: Any) -> None:
    found.add(f"{name} secret", creds["SecretAccessKey"])
    found.add(f"{name} token", creds["SessionToken"])
    client("sts", **_keys(creds)).get_caller_identity()


def _keys(creds: dict[str, Any]) -> dict[str, str]:
    return {
        "aws_access_key_id": creds["AccessKeyId"],
        "aws_secret_access_key": creds["SecretAccessKey"],
        "aws_session_token": creds["SessionToken"],
    }


def _function(found: Secrets, client: Any, admin: boto3.Session) -> None:
    """A function with a secret-looking variable; it hands back the role credentials its
    environment got, so those are searched for too."""
    iam, lam = client("iam", admin), client("lambda", admin)
    role = iam.create_role(RoleName="leaky-fn", AssumeRolePolicyDocument=json.dumps(LAMBDA_TRUST))
    iam.attach_role_policy(RoleName="leaky-fn", PolicyArn=BASIC_EXECUTION)
    password = _secret_like()
    found.add("function variable DB_PASSWORD", password)
    lam.create_function(
        FunctionName="leaky",
        Runtime="python3.11",
        Role=role["Role"]["Arn"],
        Handler="app.handler",
        Code={"ZipFile": code_zip({"app.py": FUNCTION})},
        Environment={"Variables": {"DB_PASSWORD": password}},
        Timeout=30,
    )
    wait_active(lam, "leaky")
    answer = lam.invoke(FunctionName="leaky", Payload=b'{"kind": "ok"}', LogType="Tail")
    given = json.loads(answer["Payload"].read())
    found.add("function environment's secret access key", given["secret"])
    found.add("function environment's session token", given["token"])
    failed = lam.invoke(FunctionName="leaky", Payload=b'{"kind": "fail"}', LogType="Tail")
    assert failed.get("FunctionError") == "Unhandled"
    rotated = _secret_like()
    found.add("function variable API_KEY", rotated)
    lam.update_function_configuration(
        FunctionName="leaky", Environment={"Variables": {"API_KEY": rotated}}
    )
    wait_active(lam, "leaky")
    lam.invoke(FunctionName="leaky", Payload=b'{"kind": "ok"}')


def _training_job(server: RunningServer, found: Secrets, tmp_path: Path) -> None:
    script = tmp_path / "print_env.py"
    script.write_text(TRAINING_SCRIPT)
    source = upload_sources(server, tmp_path, script)
    with server.client() as api:
        api.post(
            "/api/v1/training-jobs",
            {
                "name": "leaky-job",
                "entry_point": "print_env.py",
                "source_uri": source,
                "environment": {"JOB_SETTING": "on"},
            },
        )
        deadline = time.monotonic() + 240
        job: dict[str, Any] = {}
        while time.monotonic() < deadline:
            job = api.get("/api/v1/training-jobs/leaky-job")
            if job["status"] in ("Completed", "Failed", "Stopped"):
                break
            time.sleep(0.5)
        assert job.get("status") == "Completed", job
        log = str(
            api.get("/api/v1/training-jobs/leaky-job/logs", params={"host": "algo-1"})["data"]
        )
    assert "environment:" in log and "JOB_SETTING" in log  # the script ran and printed


def _secret_like(length: int = 40) -> str:
    """Random text shaped like an AWS secret (letters, digits, + and /)."""
    alphabet = string.ascii_letters + string.digits + "+/"
    return "".join(secrets.choice(alphabet) for _ in range(length))


# --- searching ---------------------------------------------------------------------------


def _log_texts(server: RunningServer, ray_tmp: Path, work: Path) -> Iterator[tuple[str, bytes]]:
    yield "server output", server.log.read_bytes()
    for root in (server.home / "logs", server.home / "jobs", ray_tmp, work):
        for path in sorted(root.rglob("*")):
            if path.is_file() and not path.is_symlink():
                with path.open("rb") as f:
                    yield str(path), f.read(MAX_SCANNED_BYTES)
    with sqlite3.connect(server.home / "kennel.db") as db:
        for table in ("iam_access_log", "lambda_logs"):
            rows = db.execute(f"SELECT * FROM {table}").fetchall()
            assert rows, f"the {table} table is empty: nothing was logged there"
            yield f"database table {table}", "\n".join(map(repr, rows)).encode()


def _scan(found: Secrets, texts: Iterator[tuple[str, bytes]]) -> tuple[list[str], list[str]]:
    """What was found where, and every place searched."""
    hits: list[str] = []
    searched: list[str] = []
    needles = list(found.needles())
    for where, data in texts:
        searched.append(where)
        for name, needle in needles:
            at = data.find(needle)
            if at >= 0:
                hits.append(f"{name} in {where}: ...{_around(data, at, len(needle))}...")
        for match in HEX64.finditer(data):
            origin = found.signatures.get(match.group().decode())
            if origin is not None:
                hits.append(
                    f"a signature ({origin}) in {where}: ...{_around(data, match.start(), 64)}..."
                )
        if b"Signature=" in data and where in ("server output",):
            hits.append(f"'Signature=' in {where}")
    return hits, searched


def _around(data: bytes, at: int, length: int) -> str:
    return data[max(0, at - 80) : at + length + 40].decode("utf-8", "replace")
