"""POST /api/v1/iam/validate-policy: findings for a policy document, nothing saved; and
GET /api/v1/iam/users/NAME/login-profile, which the console uses instead of a 404.

Authorized as ``access-analyzer:ValidatePolicy`` (AWS's action for the same check), so a
user without it is denied like on any other route.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from botocore.credentials import Credentials
from tests._server import RunningServer

from kennel._client import KennelClient
from kennel._errors import KennelError

ROUTE = "/api/v1/iam/validate-policy"


def _doc(**statement: Any) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": [statement]}, indent=2)


def _findings(server: RunningServer, document: str, kind: str = "identity") -> list[Any]:
    body = server.client().post(ROUTE, {"document": document, "kind": kind})
    return list(body["findings"])


def test_a_valid_least_privilege_policy_has_no_findings(server: RunningServer) -> None:
    document = _doc(Effect="Allow", Action="sagemaker:ListEndpoints", Resource="*")
    assert _findings(server, document) == []


def test_bad_json_points_at_the_line_and_column(server: RunningServer) -> None:
    (finding,) = _findings(server, '{\n  "Version": "2012-10-17",\n  "Statement": [,]\n}')
    assert finding["severity"] == "error"
    assert "line 3, column 17" in finding["message"]


def test_an_unknown_action_is_named_with_the_likely_fix(server: RunningServer) -> None:
    document = _doc(Effect="Allow", Action=["sagemaker:ListEndpoint"], Resource="*")
    findings = _findings(server, document)
    assert findings == [
        {
            "severity": "error",
            "message": (
                "Unknown action sagemaker:ListEndpoint. Did you mean sagemaker:ListEndpoints?"
            ),
            "path": "Statement[0].Action[0]",
        }
    ]


def test_wrong_effect_and_missing_resource_say_what_to_fix(server: RunningServer) -> None:
    findings = _findings(server, _doc(Effect="allow", Action="sagemaker:ListModels"))
    messages = [f["message"] for f in findings]
    assert any(m.startswith("IAM refuses it:") for m in messages)  # AWS's own verdict
    paths = {f["path"]: f["message"] for f in findings}
    assert "Allow" in paths["Statement[0].Effect"]
    assert any("Add a Resource" in m for m in messages)


def test_a_trust_policy_needs_a_principal_and_takes_no_resource(server: RunningServer) -> None:
    document = _doc(Effect="Allow", Action="sts:AssumeRole", Resource="*")
    messages = [f["message"] for f in _findings(server, document, kind="trust")]
    assert any("Principal" in m for m in messages)
    assert any("takes no Resource" in m for m in messages)


def test_other_services_are_a_warning_not_an_error(server: RunningServer) -> None:
    document = _doc(Effect="Allow", Action=["s3:GetObject"], Resource="*")
    (finding,) = _findings(server, document)
    assert finding["severity"] == "warning"


def test_nothing_is_saved_and_an_unknown_kind_is_refused(server: RunningServer) -> None:
    before = server.session.client("iam", endpoint_url=server.url).list_policies(Scope="Local")
    _findings(server, _doc(Effect="Allow", Action="sagemaker:ListModels", Resource="*"))
    after = server.session.client("iam", endpoint_url=server.url).list_policies(Scope="Local")
    assert len(after["Policies"]) == len(before["Policies"])
    with pytest.raises(KennelError) as excinfo:
        server.client().post(ROUTE, {"document": "{}", "kind": "session"})
    assert excinfo.value.status == 400


def test_a_user_without_validate_policy_is_denied(server: RunningServer) -> None:
    iam = server.session.client("iam", endpoint_url=server.url)
    name = f"novalidate-{uuid.uuid4().hex[:8]}"
    iam.create_user(UserName=name)
    key = iam.create_access_key(UserName=name)["AccessKey"]
    client = KennelClient(
        server.url, Credentials(key["AccessKeyId"], key["SecretAccessKey"]), "us-east-1"
    )
    with pytest.raises(KennelError) as excinfo:
        client.post(ROUTE, {"document": "{}"})
    assert excinfo.value.status == 403
    assert "access-analyzer:ValidatePolicy" in excinfo.value.message


def test_login_profile_route_answers_null_rather_than_404(server: RunningServer) -> None:
    """The console asks for every user it shows; a user without a password is not an error."""
    iam = server.session.client("iam", endpoint_url=server.url)
    name = f"nopassword-{uuid.uuid4().hex[:8]}"
    iam.create_user(UserName=name)
    path = f"/api/v1/iam/users/{name}/login-profile"
    assert server.client().get(path) == {"user": name, "login_profile": None}
    iam.create_login_profile(UserName=name, Password="correct horse battery staple")
    assert server.client().get(path)["login_profile"]["UserName"] == name
    with pytest.raises(KennelError) as excinfo:
        server.client().get("/api/v1/iam/users/no-such-user/login-profile")
    assert excinfo.value.status == 404
