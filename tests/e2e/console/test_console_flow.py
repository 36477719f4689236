"""The console end to end, as a person would use it: sign in, watch a training job
finish, make its model and deploy it, test the endpoint with an uploaded image and see
the top 5, invoke a function that calls the endpoint, and, signed in with a console
password as a least-privilege user, see an action denied. Screenshots of each step go
to test-artifacts/console/flow-*.png."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from tests._server import RunningServer
from tests.e2e.console._console_browser import NARROW
from tests.e2e.console.conftest import admin_key
from tests.integration.functions.conftest import BASIC_EXECUTION, code_zip, make_role, wait_active

from kennel._client import KennelClient

pytestmark = pytest.mark.timeout(600)

SMALL = {"arch": "small-cnn", "epochs": 3, "image-size": 32, "lr": 0.05, "batch-size": 32}
FUNCTION = """
import json
import os

import boto3

runtime = boto3.client("sagemaker-runtime")


def handler(event, context):
    answer = runtime.invoke_endpoint(
        EndpointName=os.environ["ENDPOINT_NAME"],
        ContentType="image/jpeg",
        Body=bytes(event["pixels"]),
        CustomAttributes="top_k=3",
    )
    print("endpoint answered", answer["ResponseMetadata"]["HTTPStatusCode"])
    return json.loads(answer["Body"].read())
"""
VIEWER_PASSWORD = "a-long-viewer-password-1"


def _unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


@pytest.fixture(scope="module")
def story(server: RunningServer) -> Iterator[dict[str, str]]:
    """A data set and a training job started (not finished) through the API; a user who
    may look at endpoints and nothing else, with a console password."""
    names = {
        "dataset": _unique("flow-digits"),
        "job": _unique("flow-job"),
        "model": _unique("flow-model"),
        "endpoint": _unique("flow-ep"),
        "function": _unique("flow-fn"),
        "viewer": _unique("flow-viewer"),
    }
    with server.client() as api:
        api.post("/api/v1/datasets", {"name": names["dataset"], "demo": {"image_size": 32}})
        api.post(
            "/api/v1/training-jobs",
            {"name": names["job"], "dataset": names["dataset"], "hyperparameters": SMALL},
        )
    iam = server.session.client("iam", endpoint_url=server.url, region_name="us-east-1")
    iam.create_user(UserName=names["viewer"])
    look_only = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": ["sagemaker:ListEndpoints", "sagemaker:DescribeEndpoint"],
                "Resource": "*",
            }
        ],
    }
    iam.put_user_policy(
        UserName=names["viewer"], PolicyName="look-only", PolicyDocument=json.dumps(look_only)
    )
    iam.create_login_profile(UserName=names["viewer"], Password=VIEWER_PASSWORD)
    yield names
    with server.client() as api:
        _cleanup(api, server, names)


def _cleanup(api: KennelClient, server: RunningServer, names: dict[str, str]) -> None:
    lambda_client = server.session.client(
        "lambda", endpoint_url=server.url, region_name="us-east-1"
    )
    for attempt in (
        lambda: lambda_client.delete_function(FunctionName=names["function"]),
        lambda: api.delete(f"/api/v1/endpoints/{names['endpoint']}"),
    ):
        try:
            attempt()
        except Exception as exc:  # noqa: BLE001 - the test may have stopped before making it
            print(f"cleanup: {exc}")


def test_a_person_trains_deploys_tests_and_calls_it_in_the_browser(
    console: Any, story: dict[str, str], server: RunningServer, browser: Any
) -> None:
    page = console.page
    job, model, endpoint = story["job"], story["model"], story["endpoint"]

    # The overview shows the running job and what it costs.
    console.goto()
    page.get_by_role("heading", name="Overview", level=1).wait_for()
    costs = page.get_by_role("region", name="Running resources and their hourly cost")
    costs.get_by_role("link", name=job).wait_for(timeout=30_000)
    console.screenshot("flow-1-overview-1280")

    # The job's page follows it until it completes, without a reload.
    costs.get_by_role("link", name=job).click()
    page.get_by_role("heading", name=job, level=1).wait_for()
    page.evaluate("() => { window.__sameDocument = true; }")
    page.get_by_role("region", name="Job", exact=True).locator(
        ".badge", has_text="Completed"
    ).first.wait_for(timeout=240_000)
    assert page.evaluate("() => window.__sameDocument === true")
    page.get_by_role("log", name=f"Log of {job}").get_by_text("epoch", exact=False).first.wait_for()
    console.screenshot("flow-2-training-completed-1280")

    # Its model, made from the job, deployed from the model's page.
    console.goto("#/models")
    form = page.get_by_role("form", name="Create a model from a training job")
    form.get_by_label("Training job").select_option(job)
    form.get_by_label("Model name").fill(model)
    form.get_by_role("button", name="Create model").click()
    page.get_by_role("heading", level=1, name=model).wait_for(timeout=120_000)
    page.get_by_label("Endpoint name").fill(endpoint)
    page.get_by_role("button", name="Deploy").click()
    page.get_by_role("heading", level=1, name=endpoint).wait_for()
    page.get_by_role("region", name="Status").locator(".badge", has_text="InService").wait_for(
        timeout=180_000
    )
    console.screenshot("flow-3-deployed-1280")

    # The test panel: an image from the data set's test split, uploaded; the top 5.
    image = next(
        (server.home / "artifacts" / "datasets" / story["dataset"] / "test").rglob("*.jpg")
    )
    page.get_by_label("Image file").set_input_files(str(image))
    page.get_by_role("button", name="Test", exact=True).click()
    result = page.locator(".test-result .scores li")
    result.first.wait_for(timeout=60_000)
    scores = [float(s) for s in result.evaluate_all("(lis) => lis.map((li) => li.dataset.score)")]
    assert len(scores) == 5 and scores == sorted(scores, reverse=True)
    labels = page.locator(".test-result .scores .label").all_inner_texts()
    assert len(labels) == 5 and all(labels)
    console.screenshot("flow-4-endpoint-top5-1280")

    # A function that calls the endpoint, invoked from its Test panel.
    _make_function(server, story["function"], endpoint)
    console.goto(f"#/functions/{story['function']}")
    page.get_by_role("heading", level=1, name=story["function"]).wait_for()
    pixels = list(image.read_bytes())
    page.get_by_label("Event JSON").fill(json.dumps({"pixels": pixels}))
    page.get_by_role("button", name="Test", exact=True).click()
    page.get_by_text("Execution result: succeeded").wait_for(timeout=60_000)
    assert (
        "endpoint answered 200" in page.locator(".fn-result-area").get_by_role("log").inner_text()
    )
    console.screenshot("flow-5-function-1280")

    # The same endpoint page on a phone.
    narrow = browser.new_context(viewport=NARROW)
    try:
        from tests.e2e.console._console_browser import ConsolePage

        phone = ConsolePage(narrow.new_page(), server.url)
        phone.sign_in_with_key(*admin_key(server))
        phone.goto(f"#/endpoints/{endpoint}")
        phone.page.get_by_role("region", name="Status").locator(
            ".badge", has_text="InService"
        ).wait_for()
        assert phone.horizontal_overflow() == 0
        phone.screenshot("flow-6-endpoint-390")
        phone.assert_no_errors()
    finally:
        narrow.close()


def _lambda(server: RunningServer) -> Any:
    return server.session.client("lambda", endpoint_url=server.url, region_name="us-east-1")


def _make_function(server: RunningServer, name: str, endpoint: str) -> None:
    iam = server.session.client("iam", endpoint_url=server.url, region_name="us-east-1")
    role = make_role(iam, f"{name}-role", BASIC_EXECUTION)
    invoke_one = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": "sagemaker:InvokeEndpoint",
                "Resource": f"arn:aws:sagemaker:us-east-1:*:endpoint/{endpoint}",
            }
        ],
    }
    iam.put_role_policy(
        RoleName=f"{name}-role", PolicyName="invoke", PolicyDocument=json.dumps(invoke_one)
    )
    lambda_client = server.session.client(
        "lambda", endpoint_url=server.url, region_name="us-east-1"
    )
    lambda_client.create_function(
        FunctionName=name,
        Runtime="python3.11",
        Role=role,
        Handler="app.handler",
        Code={"ZipFile": code_zip({"app.py": FUNCTION})},
        Environment={"Variables": {"ENDPOINT_NAME": endpoint}},
        Timeout=60,
    )
    wait_active(lambda_client, name)


def test_a_least_privilege_user_signs_in_with_a_password_and_is_denied(
    new_context: Any, story: dict[str, str]
) -> None:
    viewer = new_context()
    viewer.expect_error(r"status of 403")
    viewer.sign_in_with_password(story["viewer"], VIEWER_PASSWORD)
    page = viewer.page
    assert story["viewer"] in page.locator(".topbar .user").inner_text()

    # Allowed: the endpoints list.
    viewer.goto("#/endpoints")
    page.get_by_role("heading", name="Endpoints", level=1).wait_for()
    # Denied: training jobs, and IAM; the page says so with AWS's message.
    viewer.goto("#/training-jobs")
    page.get_by_role("heading", name="Training jobs", level=1).wait_for()
    denied = page.get_by_role("alert").filter(has_text="Access denied")
    denied.first.wait_for()
    assert "sagemaker:ListTrainingJobs" in denied.first.inner_text()
    viewer.screenshot("flow-7-denied-1280")
    viewer.goto("#/iam/users")
    page.get_by_role("alert").filter(has_text="iam:ListUsers").first.wait_for()
    viewer.assert_no_errors()
