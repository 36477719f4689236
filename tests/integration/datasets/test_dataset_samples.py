"""A data set's sample images (what the console shows): allowed, missing, and denied."""

from __future__ import annotations

import io
import json
import uuid

import pytest
from botocore.credentials import Credentials
from PIL import Image
from tests._server import RunningServer

from kennel._client import KennelClient
from kennel._errors import KennelError


@pytest.fixture(scope="module")
def digits(server: RunningServer) -> str:
    with server.client() as api:
        api.post("/api/v1/datasets", {"name": "sample-digits", "demo": {"image_size": 16}})
    return "sample-digits"


def test_a_sample_is_an_image_of_its_class(api: KennelClient, digits: str) -> None:
    info = api.get(f"/api/v1/datasets/{digits}")
    first = info["classes"][0]
    response = api.request("GET", f"/api/v1/datasets/{digits}/samples/train/{first}/0")
    assert response.headers["content-type"].startswith("image/")
    image = Image.open(io.BytesIO(response.content))
    assert image.size == (16, 16)
    other = api.request("GET", f"/api/v1/datasets/{digits}/samples/train/{first}/1")
    assert other.content != response.content


@pytest.mark.parametrize(
    "path",
    ["train/no-such-class/0", "nowhere/{first}/0", "train/{first}/9999"],
)
def test_missing_samples_are_404(api: KennelClient, digits: str, path: str) -> None:
    first = api.get(f"/api/v1/datasets/{digits}")["classes"][0]
    with pytest.raises(KennelError) as caught:
        api.request("GET", f"/api/v1/datasets/{digits}/samples/{path.format(first=first)}")
    assert caught.value.status == 404


def test_samples_need_describe_dataset(server: RunningServer, digits: str) -> None:
    iam = server.session.client("iam", endpoint_url=server.url, region_name="us-east-1")
    name = f"samples-{uuid.uuid4().hex[:8]}"
    iam.create_user(UserName=name)
    iam.put_user_policy(
        UserName=name,
        PolicyName="list-only",
        PolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {"Effect": "Allow", "Action": "kennel:ListDatasets", "Resource": "*"}
                ],
            }
        ),
    )
    key = iam.create_access_key(UserName=name)["AccessKey"]
    credentials = Credentials(key["AccessKeyId"], key["SecretAccessKey"])
    with KennelClient(server.url, credentials, "us-east-1") as limited:
        first = limited.get("/api/v1/datasets")["datasets"]
        assert digits in [d["name"] for d in first]
        with pytest.raises(KennelError) as caught:
            limited.request("GET", f"/api/v1/datasets/{digits}/samples/train/0/0")
    assert caught.value.status == 403
