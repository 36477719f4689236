"""``/api/v1/notebook-instances`` on a real server, through real signed requests."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.credentials import Credentials
from tests._server import RunningServer
from tests._signing import assert_aws_error, send_signed

from kennel._client import KennelClient
from kennel._errors import AuthError, ConflictError, NotFoundError, ValidationError

BASE = "/api/v1/notebook-instances"
URL = "http://127.0.0.1:8899/lab"


def unique(prefix: str = "nb") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def names(api: KennelClient) -> set[str]:
    return {n["name"] for n in api.get(BASE)["notebook_instances"]}


def test_lifecycle_create_describe_list_stop_start_delete(api: KennelClient) -> None:
    name = unique("Lifecycle")
    made = api.post(
        BASE, {"name": name, "workspace": "/tmp/ws", "client": {"host": "h", "pid": 1234}}
    )
    assert made["status"] == "Pending" and made["instance_type"] == "ml.t3.medium"
    assert made["arn"].endswith(f":notebook-instance/{name.lower()}")  # SageMaker's ARN form
    assert made["heartbeat_timeout_seconds"] == 60

    live = api.post(f"{BASE}/{name}/heartbeat", {"url": URL})
    assert live["status"] == "InService" and live["url"] == URL
    assert live["last_started_at"] and live["created_at"]
    assert api.post(f"{BASE}/{name}/heartbeat", {})["status"] == "InService"
    listed = {
        n["name"]: n for n in api.get(BASE, params={"status": "InService"})["notebook_instances"]
    }
    assert listed[name]["url"] == URL

    stopping = api.post(f"{BASE}/{name}/stop", {})
    assert stopping["status"] == "Stopping" and "user/admin" in stopping["status_reason"]
    assert api.post(f"{BASE}/{name}/heartbeat", {})["status"] == "Stopping"
    stopped = api.post(f"{BASE}/{name}/heartbeat", {"stopped": True})
    assert stopped["status"] == "Stopped" and stopped["url"] is None
    assert stopped["running_seconds"] > 0 and stopped["cost_usd"] > 0
    assert api.get(f"{BASE}/{name}")["cost_usd"] == stopped["cost_usd"]  # it stopped growing

    again = api.post(f"{BASE}/{name}/start", {"instance_type": "ml.m5.large"})
    assert again["status"] == "Pending" and again["instance_type"] == "ml.m5.large"
    assert again["cost_usd"] == stopped["cost_usd"]  # the bill so far is kept
    api.post(f"{BASE}/{name}/heartbeat", {"failure_reason": "JupyterLab exited with code 1"})
    failed = api.get(f"{BASE}/{name}")
    assert failed["status"] == "Failed" and failed["failure_reason"].startswith("JupyterLab")

    assert api.request("DELETE", f"{BASE}/{name}").json() == {"deleted": name}
    assert name not in names(api)
    with pytest.raises(NotFoundError, match="does not exist"):
        api.get(f"{BASE}/{name}")


def test_a_duplicate_running_name_is_a_409_with_a_hint(api: KennelClient) -> None:
    name = unique()
    api.post(BASE, {"name": name, "client": {"host": "laptop", "pid": 99}})
    api.post(f"{BASE}/{name}/heartbeat", {"url": URL})
    with pytest.raises(ConflictError) as duplicate:
        api.post(BASE, {"name": name, "instance_type": "ml.m5.xlarge"})
    assert duplicate.value.status == 409 and duplicate.value.aws_code == "ResourceInUse"
    assert f"is InService at {URL} (kennel notebook pid 99 on laptop)" in duplicate.value.message
    assert duplicate.value.hint and f"kennel notebooks stop {name}" in duplicate.value.hint
    with pytest.raises(ConflictError):
        api.post(f"{BASE}/{name}/start", {})
    with pytest.raises(ConflictError, match="only a Stopped or Failed") as busy:
        api.request("DELETE", f"{BASE}/{name}")
    assert busy.value.hint and "stop" in busy.value.hint
    assert api.get(f"{BASE}/{name}")["instance_type"] == "ml.t3.medium"  # nothing changed
    api.post(f"{BASE}/{name}/heartbeat", {"stopped": True})
    with pytest.raises(ValidationError, match="only a Pending or InService"):
        api.post(f"{BASE}/{name}/stop", {})
    with pytest.raises(ConflictError, match="is Stopped") as refused:
        api.post(f"{BASE}/{name}/heartbeat", {})  # a process that missed the stop must end
    assert refused.value.hint and f"kennel notebook --name {name}" in refused.value.hint
    api.request("DELETE", f"{BASE}/{name}")


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ({"name": "has_underscore"}, "is not valid"),
        ({"name": "x" * 64}, "is not valid"),
        ({"name": "bad-type", "instance_type": "ml.t9.huge"}, "Unknown instance type"),
        ({"name": "bad-field", "instance_typo": "ml.t3.medium"}, "instance_typo"),
        ({"name": "bad-ws", "workspace": "relative/dir"}, "absolute"),
        ({"name": "bad-pid", "client": {"pid": 0}}, "client.pid"),
        ({}, "name"),
    ],
)
def test_bad_create_bodies_are_400s_that_write_nothing(
    server: RunningServer, api: KennelClient, body: dict[str, Any], needle: str
) -> None:
    response = send_signed(server, "POST", BASE, json.dumps(body).encode())
    message = assert_aws_error(response, 400, "ValidationException")
    assert needle in message
    if body.get("name"):
        assert body["name"] not in names(api)


def test_bad_heartbeats_and_unknown_names(server: RunningServer, api: KennelClient) -> None:
    name = unique()
    api.post(BASE, {"name": name})
    for body, needle in [
        ({"url": "http://127.0.0.1:8888/lab?token=abc"}, "token"),
        ({"url": "ftp://host/lab"}, "http(s)"),
        ({"url": URL, "stopped": True}, "at most one"),
        ({"stopped": "maybe"}, "stopped"),
    ]:
        response = send_signed(
            server, "POST", f"{BASE}/{name}/heartbeat", json.dumps(body).encode()
        )
        assert needle in assert_aws_error(response, 400, "ValidationException")
    assert api.get(f"{BASE}/{name}")["status"] == "Pending"  # none of them changed it
    missing = send_signed(server, "POST", f"{BASE}/no-such-nb/heartbeat", b"{}")
    assert "does not exist" in assert_aws_error(missing, 404, "ResourceNotFound")
    api.post(f"{BASE}/{name}/heartbeat", {"stopped": True})
    api.request("DELETE", f"{BASE}/{name}")


@pytest.fixture(scope="module")
def iam(server: RunningServer) -> Any:
    key, secret = server.credentials()
    session = boto3.Session(
        aws_access_key_id=key, aws_secret_access_key=secret, region_name="us-east-1"
    )
    return session.client(
        "iam", endpoint_url=server.url, config=Config(retries={"total_max_attempts": 1})
    )


@pytest.fixture
def restricted(server: RunningServer, iam: Any) -> Iterator[tuple[KennelClient, str]]:
    """A user who may run one notebook instance (by name) and read the list, nothing else."""
    user, mine = unique("nb-user"), unique("Mine")
    account = iam.get_user()["User"]["Arn"].split(":")[4]
    arn = f"arn:aws:sagemaker:us-east-1:{account}:notebook-instance/{mine.lower()}"
    iam.create_user(UserName=user)
    iam.put_user_policy(
        UserName=user,
        PolicyName="one-notebook",
        PolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Action": [
                            "sagemaker:CreateNotebookInstance",
                            "sagemaker:DescribeNotebookInstance",
                            "sagemaker:UpdateNotebookInstance",
                            "sagemaker:StopNotebookInstance",
                        ],
                        "Resource": arn,
                    },
                    {
                        "Effect": "Allow",
                        "Action": "sagemaker:ListNotebookInstances",
                        "Resource": "*",
                    },
                ],
            }
        ),
    )
    key = iam.create_access_key(UserName=user)["AccessKey"]
    creds = Credentials(key["AccessKeyId"], key["SecretAccessKey"])
    with KennelClient(server.url, creds, "us-east-1") as client:
        yield client, mine


def test_least_privilege_users_get_403_access_denied(
    restricted: tuple[KennelClient, str], api: KennelClient
) -> None:
    user, mine = restricted
    made = user.post(BASE, {"name": mine})  # the ARN matches the lower-cased name
    assert made["status"] == "Pending"
    assert user.post(f"{BASE}/{mine}/heartbeat", {"url": URL})["status"] == "InService"
    assert mine in {n["name"] for n in user.get(BASE)["notebook_instances"]}

    other = unique()
    with pytest.raises(AuthError) as create_other:
        user.post(BASE, {"name": other})
    assert create_other.value.status == 403
    assert create_other.value.aws_code == "AccessDeniedException"
    assert "is not authorized to perform: sagemaker:CreateNotebookInstance on resource: " in (
        create_other.value.message
    )
    assert f":notebook-instance/{other}" in create_other.value.message
    assert other not in names(api)  # denied before anything was written
    with pytest.raises(AuthError, match="sagemaker:DeleteNotebookInstance"):
        user.request("DELETE", f"{BASE}/{mine}")
    user.post(f"{BASE}/{mine}/stop", {})
    user.post(f"{BASE}/{mine}/heartbeat", {"stopped": True})
    with pytest.raises(AuthError, match="sagemaker:StartNotebookInstance"):
        user.post(f"{BASE}/{mine}/start", {})
    api.request("DELETE", f"{BASE}/{mine}")
