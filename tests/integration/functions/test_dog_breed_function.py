"""The dog-breed project's function, unchanged, in front of a kennel endpoint; then its
role narrowed to the policy kennel generates from what the function really did."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image
from tests._images import serve_image
from tests._server import RunningServer
from tests._uploads import small_cnn_archive, upload_model
from tests.integration.endpoints.conftest import Models, runtime_client, wait_status
from tests.integration.functions.conftest import (
    BASIC_EXECUTION,
    Create,
    make_role,
    payload_of,
    unique,
    wait_active,
)

pytestmark = pytest.mark.timeout(400)

REPO = Path(__file__).resolve().parents[3]
FUNCTION = REPO / "examples" / "functions" / "dog_breed" / "lambda_function.py"
BREEDS = [f"{i:03d}.Breed_{i}" for i in range(1, 134)]
FULL_ACCESS = "arn:aws:iam::aws:policy/AmazonSageMakerFullAccess"


@pytest.fixture(scope="module")
def image_url() -> Iterator[str]:
    """One JPEG on 127.0.0.1 (allow-listed for fetching in the test server)."""
    pixels = np.random.default_rng(3).integers(0, 255, (64, 48, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG")
    with serve_image(buffer.getvalue()) as url:
        yield url


@pytest.fixture(scope="module")
def breed_endpoints(
    server: RunningServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, str]]:
    """Two endpoints of a 133-class image model (small CNN, random weights)."""
    tmp = tmp_path_factory.mktemp("breeds")
    archive = small_cnn_archive(tmp, BREEDS)
    with server.client() as api:
        made = Models(api, tmp)
        name = unique("breeds")
        upload_model(api, archive, name)
        dogs = made.endpoint(made.config({"model_name": name}), wait=False)
        other = made.endpoint(made.config({"model_name": name}))
        wait_status(api, dogs, ("InService",))
        yield dogs, other
        made.cleanup()


def test_the_dog_breed_function_runs_unchanged_and_its_role_narrows_to_the_generated_policy(
    server: RunningServer,
    lambda_client: Any,
    iam_client: Any,
    create_function: Create,
    breed_endpoints: tuple[str, str],
    image_url: str,
) -> None:
    dogs, other = breed_endpoints
    role_name = unique("dog-breed-fn")
    role = make_role(iam_client, role_name, BASIC_EXECUTION, FULL_ACCESS)
    name = create_function(
        {"lambda_function.py": FUNCTION.read_text()},
        handler="lambda_function.lambda_handler",
        Role=role,
        Environment={"Variables": {"ENDPOINT_NAME": dogs}},
    )
    event = {"url": image_url}
    answer = payload_of(lambda_client.invoke(FunctionName=name, Payload=json.dumps(event)))
    assert answer["statusCode"] == 200, answer
    scores = json.loads(answer["body"])
    direct = json.loads(
        runtime_client(server)
        .invoke_endpoint(
            EndpointName=dogs,
            ContentType="application/json",
            Accept="application/json",
            Body=json.dumps(event),
        )["Body"]
        .read()
    )
    assert scores == direct
    assert np.asarray(scores).shape[-1] == 133
    for _ in range(2):
        lambda_client.invoke(FunctionName=name, Payload=json.dumps(event))

    # What the function really did, as a policy: one statement, the one endpoint.
    with server.client() as api:
        generated = api.post("/api/v1/iam/generate-policy", {"principal": role})["policy"]
    account = role.split(":")[4]
    assert [(s["Effect"], s["Action"], s["Resource"]) for s in generated["Statement"]] == [
        (
            "Allow",
            "sagemaker:InvokeEndpoint",
            f"arn:aws:sagemaker:us-east-1:{account}:endpoint/{dogs}",
        )
    ]

    narrow = iam_client.create_policy(
        PolicyName=unique("dog-breed-least"), PolicyDocument=json.dumps(generated)
    )["Policy"]["Arn"]
    iam_client.attach_role_policy(RoleName=role_name, PolicyArn=narrow)
    iam_client.detach_role_policy(RoleName=role_name, PolicyArn=FULL_ACCESS)
    answer = payload_of(lambda_client.invoke(FunctionName=name, Payload=json.dumps(event)))
    assert json.loads(answer["body"]) == direct

    # The narrowed role may not call the other endpoint.
    lambda_client.update_function_configuration(
        FunctionName=name, Environment={"Variables": {"ENDPOINT_NAME": other}}
    )
    wait_active(lambda_client, name)
    denied = lambda_client.invoke(FunctionName=name, Payload=json.dumps(event))
    assert denied["FunctionError"] == "Unhandled"
    error = payload_of(denied)
    assert "AccessDeniedException" in error["errorMessage"]
    assert "sagemaker:InvokeEndpoint" in error["errorMessage"]
