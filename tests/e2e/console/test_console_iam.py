"""The console's IAM pages: users, a policy in the JSON editor (syntax errors with their
line, the server's findings, a saved version), the simulator, and a least-privilege user
who is shown "Access denied" instead of a blank page."""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import pytest
from tests._server import RunningServer

LIST_ENDPOINTS = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": ["sagemaker:ListEndpoints"], "Resource": "*"}],
}


@dataclass(frozen=True)
class LeastPrivilege:
    user: str
    key: str
    secret: str
    policy_arn: str
    policy_name: str

    @property
    def policy_path(self) -> str:
        return f"#/iam/policies/{quote(self.policy_arn, safe='')}"


@pytest.fixture(scope="module")
def least(server: RunningServer) -> LeastPrivilege:
    """A user whose only permission is sagemaker:ListEndpoints, with an access key."""
    iam = server.session.client("iam", endpoint_url=server.url)
    suffix = uuid.uuid4().hex[:8]
    user, policy = f"viewer-{suffix}", f"list-endpoints-{suffix}"
    arn = iam.create_policy(PolicyName=policy, PolicyDocument=json.dumps(LIST_ENDPOINTS))["Policy"][
        "Arn"
    ]
    iam.create_user(UserName=user)
    iam.attach_user_policy(UserName=user, PolicyArn=arn)
    key = iam.create_access_key(UserName=user)["AccessKey"]
    return LeastPrivilege(user, key["AccessKeyId"], key["SecretAccessKey"], arn, policy)


def _h1(page: Any, name: str) -> None:
    page.get_by_role("heading", level=1, name=name).wait_for()


def test_admin_sees_the_user_and_edits_its_policy(
    console: Any, server: RunningServer, least: LeastPrivilege
) -> None:
    page = console.page
    console.goto("#/iam")
    _h1(page, "IAM")
    page.get_by_role("list", name="Audit findings").wait_for()
    unused = page.get_by_role("form", name="Unused access of a principal")
    unused.get_by_label("Principal").select_option(label=f"user/{least.user}")
    unused.get_by_role("button", name="Show unused access").click()
    unused.get_by_role("region", name="Granted but unused").get_by_text(
        "sagemaker:ListEndpoints"
    ).wait_for()
    console.screenshot("iam-hub-1280")

    console.goto("#/iam/users")
    page.get_by_role("link", name=least.user).click()
    _h1(page, least.user)
    page.get_by_text("Not set (access keys only)").wait_for()  # no console password, no 404
    page.get_by_role("link", name=least.policy_name).wait_for()
    _simulate(page, "sagemaker:ListEndpoints", "Allowed")
    _simulate(page, "sagemaker:DeleteEndpoint", "Denied")
    console.screenshot("iam-user-1280")

    page.get_by_role("link", name=least.policy_name).click()
    _h1(page, least.policy_name)
    editor = page.get_by_label(re.compile("^Policy document"))
    assert "sagemaker:ListEndpoints" in editor.input_value()

    editor.fill(
        '{\n  "Version": "2012-10-17",\n  "Statement": [\n    {"Effect": "Allow",, }\n  ]\n}'
    )
    page.get_by_text(re.compile(r"JSON syntax error at line 4, column \d+")).wait_for()
    console.screenshot("iam-policy-syntax-error-1280")

    typo = json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": "sagemaker:ListEndpoint", "Resource": "*"}],
        },
        indent=2,
    )
    editor.fill(typo)
    page.get_by_role("button", name="Validate").click()
    findings = page.get_by_role("list", name="Validation findings")
    findings.get_by_text("Did you mean sagemaker:ListEndpoints?").wait_for()
    page.get_by_role("button", name="Save as new version").click()
    page.get_by_text(re.compile("^Not saved: Unknown action sagemaker:ListEndpoint")).wait_for()
    console.screenshot("iam-policy-findings-1280")

    valid = json.loads(json.dumps(LIST_ENDPOINTS))
    valid["Statement"][0]["Action"].append("sagemaker:DescribeEndpoint")
    editor.fill(json.dumps(valid, indent=2))
    page.get_by_role("button", name="Save as new version").click()
    page.get_by_text("Saved as version v2, now the default.").wait_for()
    assert editor.input_value() == json.dumps(valid, indent=2)
    page.get_by_label("Policy document (v2)").wait_for()
    console.screenshot("iam-policy-editor-1280")

    iam = server.session.client("iam", endpoint_url=server.url)
    assert iam.get_policy(PolicyArn=least.policy_arn)["Policy"]["DefaultVersionId"] == "v2"
    saved = iam.get_policy_version(PolicyArn=least.policy_arn, VersionId="v2")
    assert saved["PolicyVersion"]["Document"] == valid


def _simulate(page: Any, action: str, verdict: str) -> None:
    form = page.get_by_role("form", name="Simulate a request")
    form.get_by_label("Action").fill(action)
    form.get_by_label("Action").press("Enter")  # forms submit with Enter
    form.get_by_text(f"{action} on *").wait_for()
    assert verdict in form.locator(".iam-decision").inner_text()


def test_a_least_privilege_user_is_shown_access_denied(
    new_context: Any, least: LeastPrivilege
) -> None:
    console = new_context()
    console.expect_error(r"status of 403")
    console.sign_in_with_key(least.key, least.secret)
    console.goto("#/iam/users")
    alert = console.page.get_by_role("alert")
    alert.wait_for()
    text = alert.inner_text()
    assert "Access denied" in text
    assert "is not authorized to perform: iam:ListUsers" in text
    console.screenshot("iam-users-denied-1280")
    console.goto(f"#/iam/users/{least.user}")  # a page of its own keeps its heading
    _h1(console.page, least.user)
    assert "iam:GetUser" in console.page.get_by_role("alert").inner_text()
    console.goto("#/")
    _h1(console.page, "Overview")
    console.assert_no_errors()


def test_the_policy_editor_fits_a_phone(narrow_console: Any, least: LeastPrivilege) -> None:
    narrow_console.goto(least.policy_path)
    _h1(narrow_console.page, least.policy_name)
    narrow_console.page.get_by_label(re.compile("^Policy document")).wait_for()
    assert narrow_console.horizontal_overflow() == 0
    narrow_console.screenshot("iam-policy-editor-390")


def test_the_create_policy_form_validates_then_creates(console: Any, server: RunningServer) -> None:
    page = console.page
    name = f"created-{uuid.uuid4().hex[:8]}"
    console.goto("#/iam/policies")
    _h1(page, "Policies")
    page.get_by_text("Create policy", exact=True).first.click()  # the <summary>
    form = page.get_by_role("form", name="Create a policy")
    form.get_by_label("Policy name").fill(name)
    form.get_by_label("Policy document").fill('{"Version": "2012-10-17", "Statement": []}')
    form.get_by_role("button", name="Create policy").click()
    form.get_by_text(re.compile("^Not saved:")).wait_for()
    form.get_by_label("Policy document").fill(json.dumps(LIST_ENDPOINTS, indent=2))
    form.get_by_role("button", name="Create policy").click()
    _h1(page, name)
    iam = server.session.client("iam", endpoint_url=server.url)
    names = [p["PolicyName"] for p in iam.list_policies(Scope="Local")["Policies"]]
    assert name in names
