"""A console password an administrator marked PasswordResetRequired, over plain HTTP: it
signs no one in, and ``/console/api/change-password`` replaces it, then signs in."""

from __future__ import annotations

import time
import uuid
from typing import Any

import httpx
import pytest
from tests._server import RunningServer

OLD = "correct horse battery staple"
NEW = "tr0ub4dor and 3 more words"
CHANGE_PASSWORD = "arn:aws:iam::aws:policy/IAMUserChangePassword"
COOKIE = "kennel-console"


def _iam(server: RunningServer) -> Any:
    return server.session.client("iam", endpoint_url=server.url)


def _user(server: RunningServer, *, may_change: bool) -> str:
    """A user whose console password must be reset, with IAMUserChangePassword or not."""
    iam = _iam(server)
    name = f"reset-{uuid.uuid4().hex[:8]}"
    iam.create_user(UserName=name)
    iam.create_login_profile(UserName=name, Password=OLD, PasswordResetRequired=True)
    if may_change:
        iam.attach_user_policy(UserName=name, PolicyArn=CHANGE_PASSWORD)
    return name


def _reset_required(server: RunningServer, name: str) -> bool:
    profile = _iam(server).get_login_profile(UserName=name)["LoginProfile"]
    return bool(profile["PasswordResetRequired"])


def _change(client: httpx.Client, name: str, old: str, new: str) -> httpx.Response:
    return client.post(
        "/console/api/change-password",
        json={"user_name": name, "old_password": old, "new_password": new},
    )


def _no_cookie(answer: httpx.Response) -> bool:
    return "set-cookie" not in {k.lower() for k in answer.headers}


def test_the_right_password_of_a_reset_user_gives_no_session(server: RunningServer) -> None:
    name = _user(server, may_change=True)
    with httpx.Client(base_url=server.url, timeout=30) as client:
        held = client.post("/console/api/signin", json={"user_name": name, "password": OLD})
        assert held.status_code == 403
        assert held.json()["__type"] == "PasswordResetRequired"
        assert held.headers["x-amzn-ErrorType"] == "PasswordResetRequired"
        assert "new password" in held.json()["message"]
        assert _no_cookie(held) and COOKIE not in client.cookies
        assert client.get("/console/api/session").json() == {"signed_in": False}
        wrong = client.post("/console/api/signin", json={"user_name": name, "password": NEW})
        assert wrong.status_code == 401  # a wrong password does not learn of the reset
        assert wrong.json()["__type"] == "SignInFailed"


def test_changing_it_signs_in_and_ends_the_reset(server: RunningServer) -> None:
    name = _user(server, may_change=True)
    with httpx.Client(base_url=server.url, timeout=30) as client:
        answer = _change(client, name, OLD, NEW)
        assert answer.status_code == 200, answer.text
        assert answer.json()["user"] == name and answer.json()["signed_in"] is True
        (cookie,) = [c for c in client.cookies.jar if c.name == COOKIE]
        assert cookie.has_nonstandard_attr("HttpOnly") and cookie.value.startswith("ASIA")
        session = client.get("/console/api/session").json()
        assert session["signed_in"] and session["user"] == name
    assert _reset_required(server, name) is False
    with httpx.Client(base_url=server.url, timeout=30) as client:
        signin = client.post("/console/api/signin", json={"user_name": name, "password": NEW})
        assert signin.status_code == 200 and COOKIE in client.cookies
        old = client.post("/console/api/signin", json={"user_name": name, "password": OLD})
        assert old.status_code == 401


def test_a_wrong_old_password_or_user_is_a_slow_sign_in_failure(server: RunningServer) -> None:
    name = _user(server, may_change=True)
    with httpx.Client(base_url=server.url, timeout=30) as client:
        refused_signin = client.post(
            "/console/api/signin", json={"user_name": "nobody", "password": OLD}
        )
        started = time.monotonic()
        answers = [
            _change(client, name, OLD + "!", NEW),
            _change(client, f"ghost-{uuid.uuid4().hex[:8]}", OLD, NEW),
        ]
        assert time.monotonic() - started >= 2 * 0.5
        for answer in answers:
            assert answer.status_code == 401
            assert answer.json() == refused_signin.json()  # nothing tells them apart
            assert _no_cookie(answer)
    assert _reset_required(server, name) is True


def test_without_iam_change_password_it_is_refused(server: RunningServer) -> None:
    name = _user(server, may_change=False)
    with httpx.Client(base_url=server.url, timeout=30) as client:
        answer = _change(client, name, OLD, NEW)
        assert answer.status_code == 403
        body = answer.json()
        assert body["__type"] == "AccessDenied"
        assert "iam:ChangePassword" in body["message"]
        assert "IAMUserChangePassword" in body["message"]
        assert f"kennel iam users set-password {name}" in body["message"]
        assert _no_cookie(answer)
    assert _reset_required(server, name) is True
    with httpx.Client(base_url=server.url, timeout=30) as client:
        still = client.post("/console/api/signin", json={"user_name": name, "password": OLD})
        assert still.status_code == 403 and still.json()["__type"] == "PasswordResetRequired"


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        (b"[", 400, "ValidationException"),
        (b"[]", 400, "ValidationException"),
        (b"{}", 400, "ValidationException"),
        (b'{"user_name": "a", "old_password": 1, "new_password": "x"}', 400, "ValidationException"),
        (b'{"pad": "' + b"x" * 17_000 + b'"}', 413, "RequestTooLargeException"),
    ],
)
def test_a_malformed_change_is_refused(
    server: RunningServer, body: bytes, status: int, code: str
) -> None:
    with httpx.Client(base_url=server.url, timeout=30) as client:
        answer = client.post("/console/api/change-password", content=body)
        assert answer.status_code == status and answer.json()["__type"] == code


def test_a_weak_new_password_is_refused_and_changes_nothing(server: RunningServer) -> None:
    name = _user(server, may_change=True)
    with httpx.Client(base_url=server.url, timeout=30) as client:
        answer = _change(client, name, OLD, "short")
        assert answer.status_code == 400
        assert answer.json()["__type"] == "PasswordPolicyViolation"
        assert _no_cookie(answer)
    assert _reset_required(server, name) is True
