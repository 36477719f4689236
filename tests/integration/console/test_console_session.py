"""The console's sign-in and session cookie over plain HTTP (no browser): what it lets
through, what it refuses, and that its caller is authorized like any other."""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from tests._server import RunningServer
from tests._signing import wrong_secret

HEADER = {"X-Kennel-Console": "1"}


def _user_with_key(server: RunningServer, policy: dict[str, Any] | None) -> tuple[str, str, str]:
    iam = server.session.client("iam", endpoint_url=server.url)
    name = f"console-{uuid.uuid4().hex[:8]}"
    iam.create_user(UserName=name)
    if policy is not None:
        iam.put_user_policy(UserName=name, PolicyName="p", PolicyDocument=json.dumps(policy))
    key = iam.create_access_key(UserName=name)["AccessKey"]
    return name, key["AccessKeyId"], key["SecretAccessKey"]


@contextlib.contextmanager
def _signed_in(server: RunningServer, key: str, secret: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=30) as client:
        answer = client.post(
            "/console/api/signin", json={"access_key_id": key, "secret_access_key": secret}
        )
        assert answer.status_code == 200, answer.text
        yield client


@pytest.fixture(scope="module")
def reader(server: RunningServer) -> tuple[str, str, str]:
    """A user who may list endpoints and nothing else."""
    policy = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "sagemaker:ListEndpoints", "Resource": "*"}],
    }
    return _user_with_key(server, policy)


def test_the_page_and_its_assets_are_served_without_a_cdn(server: RunningServer) -> None:
    with httpx.Client(base_url=server.url, timeout=30) as client:
        page = client.get("/console/")
        assert page.status_code == 200
        assert "default-src 'self'" in page.headers["content-security-policy"]
        assert "http" not in page.text.replace("http-equiv", "")  # nothing from elsewhere
        assert client.get("/console", follow_redirects=False).status_code == 308
        assert (
            client.get("/console/assets/js/app.js")
            .headers["content-type"]
            .startswith("text/javascript")
        )
        plotly = client.get("/console/assets/plotly.min.js")
        assert plotly.status_code == 200 and len(plotly.content) > 1_000_000
        for sneaky in ("/console/assets/../_console.py", "/console/assets/%2e%2e/_console.py"):
            assert client.get(sneaky).status_code == 404
        assert client.get("/console/api/session").json() == {"signed_in": False}


def test_a_wrong_secret_or_an_unknown_user_is_refused_alike(
    server: RunningServer, reader: tuple[str, str, str]
) -> None:
    _, key, secret = reader
    with httpx.Client(base_url=server.url, timeout=30) as client:
        answers = [
            client.post(
                "/console/api/signin",
                json={"access_key_id": key, "secret_access_key": wrong_secret(secret)},
            ),
            client.post(
                "/console/api/signin",
                json={"access_key_id": "AKIANOSUCHKEY0000000", "secret_access_key": secret},
            ),
            client.post("/console/api/signin", json={"user_name": "nobody", "password": "x" * 9}),
        ]
        assert {a.status_code for a in answers} == {401}
        assert len({a.json()["message"] for a in answers}) == 1  # nothing tells them apart
        assert "set-cookie" not in {k.lower() for a in answers for k in a.headers}
        assert client.post("/console/api/signin", content=b"[").status_code == 400
        empty = client.post("/console/api/signin", json={})
        assert empty.status_code == 400 and "user_name and password" in empty.json()["message"]


def test_the_session_is_the_users_and_is_authorized_like_the_api(
    server: RunningServer, reader: tuple[str, str, str]
) -> None:
    name, key, secret = reader
    with _signed_in(server, key, secret) as client:
        cookie = client.cookies.jar
        (made,) = [c for c in cookie if c.name == "kennel-console"]
        assert made.has_nonstandard_attr("HttpOnly") and made.value.startswith("ASIA")
        assert secret not in made.value  # a temporary key, not the user's own
        session = client.get("/console/api/session").json()
        assert session["signed_in"] and session["user"] == name
        assert client.get("/api/v1/endpoints").status_code == 200
        denied = client.get("/api/v1/training-jobs")
        assert denied.status_code == 403
        assert denied.headers["x-amzn-ErrorType"].startswith("AccessDeniedException")
        assert name in denied.json()["message"]


def test_a_write_needs_the_console_header(server: RunningServer) -> None:
    """A form on another site can make the browser send the cookie, not the header."""
    key, secret = server.credentials()
    with _signed_in(server, key, secret) as client:
        refused = client.post("/api/v1/iam/simulate", json={})
        assert refused.status_code == 403
        assert "X-Kennel-Console" in refused.json()["message"]
        assert client.get("/api/v1/status", headers=HEADER).status_code == 200


def test_signing_out_ends_the_session_on_the_server(
    server: RunningServer, reader: tuple[str, str, str]
) -> None:
    _, key, secret = reader
    with _signed_in(server, key, secret) as client:
        stolen = dict(client.cookies)
        assert client.post("/console/api/signout", headers=HEADER).status_code == 200
        assert client.get("/console/api/session").json()["signed_in"] is False
    with httpx.Client(base_url=server.url, cookies=stolen, timeout=30) as thief:
        answer = thief.get("/api/v1/endpoints")
        assert answer.status_code == 403
        assert thief.get("/console/api/session").json()["signed_in"] is False


def test_a_made_up_cookie_is_not_a_session(server: RunningServer) -> None:
    with httpx.Client(
        base_url=server.url, cookies={"kennel-console": "ASIAFAKE.bm9wZQ"}, timeout=30
    ) as client:
        answer = client.get("/api/v1/endpoints")
        assert answer.status_code == 403
        assert answer.headers["x-amzn-ErrorType"].startswith("UnrecognizedClientException")


def test_a_console_password_signs_in_as_that_user(
    server: RunningServer, reader: tuple[str, str, str]
) -> None:
    name, _, _ = reader
    iam = server.session.client("iam", endpoint_url=server.url)
    iam.create_login_profile(UserName=name, Password="correct-horse-9")
    with httpx.Client(base_url=server.url, timeout=30) as client:
        wrong = {"user_name": name, "password": "correct-horse-0"}
        assert client.post("/console/api/signin", json=wrong).status_code == 401
        right = {"user_name": name, "password": "correct-horse-9"}
        answer = client.post("/console/api/signin", json=right)
        assert answer.status_code == 200 and answer.json()["user"] == name
        assert client.get("/api/v1/endpoints").status_code == 200
        assert client.get("/api/v1/datasets").status_code == 403
    iam.delete_login_profile(UserName=name)
    with httpx.Client(base_url=server.url, timeout=30) as client:
        assert client.post("/console/api/signin", json=right).status_code == 401
