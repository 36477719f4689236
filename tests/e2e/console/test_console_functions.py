"""The console's function pages: the list, the Test panel (events, results, logs, saved
events), reserved concurrency and cold starts, at 1280 px and 390 px."""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.config import Config
from tests._server import RunningServer
from tests.e2e.console._console_browser import WIDE
from tests.integration.functions.conftest import (
    BASIC_EXECUTION,
    code_zip,
    make_role,
    wait_active,
)

HANDLER = """
import json

def handler(event, context):
    print("handler saw", json.dumps(event))
    return {"greeting": "hello " + str(event.get("name", "nobody"))}
"""


@pytest.fixture(scope="module")
def lambda_client(server: RunningServer) -> Any:
    config = Config(retries={"total_max_attempts": 1}, read_timeout=60)
    return server.session.client(
        "lambda", endpoint_url=server.url, region_name="us-east-1", config=config
    )


@pytest.fixture(scope="module")
def function_name(server: RunningServer, lambda_client: Any) -> Iterator[str]:
    iam = server.session.client("iam", endpoint_url=server.url, region_name="us-east-1")
    suffix = uuid.uuid4().hex[:8]
    role = make_role(iam, f"console-fn-{suffix}", BASIC_EXECUTION)
    name = f"console-fn-{suffix}"
    lambda_client.create_function(
        FunctionName=name,
        Runtime="python3.11",
        Role=role,
        Handler="app.handler",
        Code={"ZipFile": code_zip({"app.py": HANDLER})},
        Environment={"Variables": {"STAGE": "test", "API_TOKEN": "do-not-show"}},
    )
    wait_active(lambda_client, name)
    yield name
    with contextlib.suppress(lambda_client.exceptions.ResourceNotFoundException):
        lambda_client.delete_function(FunctionName=name)


def open_function(console: Any, name: str) -> Any:
    page = console.page
    console.goto("#/functions")
    page.get_by_role("link", name=name, exact=True).click()
    page.get_by_role("heading", level=1, name=name).wait_for()
    return page


def test_the_list_shows_the_function_and_a_test_shows_its_result_and_log(
    console: Any, function_name: str
) -> None:
    page = open_function(console, function_name)
    assert "do-not-show" not in page.inner_text("main")  # a secret-looking value is masked
    page.get_by_label("Event JSON").fill('{"name": "kennel"}')
    page.get_by_role("button", name="Test", exact=True).click()
    result = page.locator(".fn-result")
    result.get_by_text("Execution result: succeeded").wait_for(timeout=30_000)
    assert "hello kennel" in result.get_by_label("Response").inner_text()
    assert 'handler saw {"name": "kennel"}' in result.get_by_role("log").inner_text()
    assert "Billed duration" in result.inner_text()
    # The first invocation started an environment: it is a cold start with its init time.
    cold = page.get_by_role("region", name="Recent cold starts")
    cold.wait_for(timeout=15_000)
    assert " ms" in cold.inner_text()
    console.screenshot("functions-test-result-1280")


def test_an_invalid_event_is_refused_without_a_request(console: Any, function_name: str) -> None:
    page = open_function(console, function_name)
    invocations: list[str] = []
    page.on("request", lambda r: invocations.append(r.url) if "/invocations" in r.url else None)
    page.get_by_label("Event JSON").fill('{"name": ')
    assert "Invalid JSON" in page.locator("#fn-event-error").inner_text()
    page.get_by_role("button", name="Test", exact=True).click()
    refusal = page.get_by_role("alert").filter(has_text="Not sent")
    refusal.wait_for()
    assert "Fix the event first" in refusal.inner_text()
    page.wait_for_timeout(300)
    assert invocations == []
    console.screenshot("functions-invalid-event-1280")


def test_a_saved_event_survives_a_reload(console: Any, function_name: str) -> None:
    page = open_function(console, function_name)
    page.get_by_label("Event JSON").fill('{"name": "saved"}')
    page.get_by_label("Event name").fill("my-event")
    page.get_by_role("form", name="Saved test events").get_by_role("button", name="Save").click()
    page.reload()
    page.get_by_role("heading", level=1, name=function_name).wait_for()
    chooser = page.get_by_label("Saved events")
    assert "my-event" in chooser.inner_text()
    page.get_by_label("Event JSON").fill("{}")
    chooser.select_option("my-event")
    assert page.get_by_label("Event JSON").input_value() == '{"name": "saved"}'


def test_reserved_concurrency_is_set_and_shown(
    console: Any, function_name: str, lambda_client: Any
) -> None:
    page = open_function(console, function_name)
    page.get_by_label("Reserve concurrency").fill("2")
    page.get_by_label("Reserve concurrency").press("Enter")
    page.locator("#fn-reserved-value").filter(has_text="2").wait_for()
    got = lambda_client.get_function_concurrency(FunctionName=function_name)
    assert got["ReservedConcurrentExecutions"] == 2
    console.screenshot("functions-concurrency-1280")
    lambda_client.delete_function_concurrency(FunctionName=function_name)


def test_the_function_page_fits_a_phone(narrow_console: Any, function_name: str) -> None:
    page = narrow_console.page
    narrow_console.goto(f"#/functions/{function_name}")
    page.get_by_role("heading", level=1, name=function_name).wait_for()
    page.get_by_role("heading", name="Cold starts").wait_for()
    page.locator(".fn-charts .main-svg").first.wait_for()  # Plotly drew: it must fit too
    assert narrow_console.horizontal_overflow() == 0
    narrow_console.screenshot("functions-detail-390")
    narrow_console.goto("#/functions")
    page.get_by_role("link", name=function_name, exact=True).wait_for()
    assert narrow_console.horizontal_overflow() == 0
    narrow_console.screenshot("functions-list-390")


def test_a_user_who_may_only_look_sees_access_denied_where_they_act(
    new_context: Any, server: RunningServer, function_name: str
) -> None:
    iam = server.session.client("iam", endpoint_url=server.url, region_name="us-east-1")
    user = f"fn-viewer-{uuid.uuid4().hex[:8]}"
    iam.create_user(UserName=user)
    look_only = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": ["lambda:ListFunctions", "lambda:GetFunction"],
                "Resource": "*",
            }
        ],
    }
    iam.put_user_policy(UserName=user, PolicyName="look", PolicyDocument=json.dumps(look_only))
    key = iam.create_access_key(UserName=user)["AccessKey"]
    console = new_context(WIDE)
    console.expect_error(r"status of 403")
    console.sign_in_with_key(key["AccessKeyId"], key["SecretAccessKey"])
    console.goto(f"#/functions/{function_name}")
    page = console.page
    page.get_by_role("heading", level=1, name=function_name).wait_for()
    page.get_by_role("button", name="Test", exact=True).click()
    denied = page.locator(".fn-result-area").get_by_role("alert")
    denied.wait_for()
    assert "Access denied" in denied.inner_text()
    assert "lambda:InvokeFunction" in denied.inner_text()
    concurrency = page.get_by_role("region", name="Concurrency")
    concurrency.get_by_text("Access denied").first.wait_for()
    console.screenshot("functions-denied-1280")
    console.assert_no_errors()
