"""The web console: its pages at ``/console``, its sign-in, and its session cookie.

The console is a static single-page app (``console_assets/``, no CDN: Plotly comes from
the installed ``plotly`` package) that calls the same API as the CLI and boto3, so every
page is authorized by the same policies. Signing in (an access key and its secret, or an
IAM user's console password) makes temporary credentials for that user, as STS
GetSessionToken does. A password an administrator marked PasswordResetRequired signs no one
in, nor does one older than the account password policy's MaxPasswordAge: the page asks
for a new one and sends it to ``change-password``, which changes it as IAM's ChangePassword
does (the user's own policies must allow ``iam:ChangePassword``, or the password policy's
AllowUsersToChangePassword, which the authorizer applies) and then signs in. Under the
policy's HardExpiry an expired password is refused outright (403 PasswordExpired) and
only an administrator can set a new one. The browser holds a session's credentials in an
HttpOnly, SameSite=Strict cookie, and :func:`cookie_identity` turns the cookie back into
the caller for the gateway. A request
that changes something must also carry ``X-Kennel-Console: 1``, which a page on another
site cannot send without a CORS preflight this server never grants.
"""

from __future__ import annotations

import asyncio
import base64
import hmac
import logging
import mimetypes
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from starlette.requests import Request, cookie_parser
from starlette.responses import FileResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route, Router

from kennel import _json
from kennel._errors import (
    AccessDeniedError,
    AuthError,
    ExpiredTokenError,
    KennelError,
    UnrecognizedClientError,
)
from kennel.api._context import ServerContext
from kennel.iam._authorizer import RequestFacts
from kennel.iam._errors import WrongOldPasswordError
from kennel.iam.sigv4 import VerifiedIdentity

log = logging.getLogger(__name__)

PREFIX = "/console"
COOKIE = "kennel-console"
HEADER = b"x-kennel-console"
SESSION_SECONDS = 12 * 3600
"""How long a console sign-in lasts (AWS's console session default is 12 hours)."""
SIGNIN_MAX_BYTES = 16 * 1024
FAILED_SIGNIN_DELAY = 0.5
"""A wrong secret or password is answered this much later: guessing gets slow."""
ASSETS = Path(__file__).parent / "console_assets"
SIGNIN_FAILED = (
    "Sign-in failed: the access key and secret, or the user name and password, do not match "
    "an active IAM user."
)
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class PasswordResetRequiredError(AuthError):
    """The right console password, but an administrator requires a new one first."""

    aws_code = "PasswordResetRequired"


class PasswordExpiredError(AuthError):
    """The right console password, but expired under a password policy with HardExpiry:
    only an administrator can set a new one."""

    aws_code = "PasswordExpired"


def _hard_expired(user: str) -> PasswordExpiredError:
    return PasswordExpiredError(
        "Your password has expired and the account's password policy (HardExpiry) does not "
        "let you choose a new one: ask an administrator to reset it with "
        f"`kennel iam users set-password {user}`."
    )


def plotly_js() -> Path:
    """plotly.js as the installed ``plotly`` package ships it (the reports use it too)."""
    import plotly

    return Path(plotly.__file__).parent / "package_data" / "plotly.min.js"


def is_console_path(path: str) -> bool:
    return path == PREFIX or path.startswith(PREFIX + "/")


def has_console_cookie(scope: dict[str, Any] | Any) -> bool:
    return any(name == b"cookie" and COOKIE.encode() in value for name, value in scope["headers"])


def cookie_identity(
    scope: dict[str, Any] | Any, ctx: ServerContext, service: str
) -> VerifiedIdentity:
    """The caller behind a console session cookie, or the AWS-shaped error to answer."""
    key_id, secret = _session_of(_cookie_value(scope))
    credential = ctx.credentials.lookup(key_id) if key_id.startswith("ASIA") else None
    if credential is None or not hmac.compare_digest(
        credential.secret_access_key.encode(), secret.encode()
    ):
        raise UnrecognizedClientError(
            "The console session is not valid.", hint="Sign in to the console again."
        )
    now = datetime.now(UTC)
    if credential.expires_at is not None and credential.expires_at <= now:
        raise ExpiredTokenError("The console session has expired.", hint="Sign in again.")
    if scope["method"] not in _SAFE_METHODS and not any(
        name == HEADER and value == b"1" for name, value in scope["headers"]
    ):
        raise UnrecognizedClientError(
            "A request made with the console's session cookie must carry the header "
            "X-Kennel-Console: 1.",
            hint="Requests from other sites are refused; use the console, or sign requests "
            "with SigV4.",
        )
    return VerifiedIdentity(
        access_key_id=key_id,
        principal=str(credential.principal),
        region=ctx.region,
        service=service,
        signed_at=now,
        presigned=False,
    )


def _cookie_of(key_id: str, secret: str) -> str:
    """The cookie's value: the key id and its secret, in characters a cookie may hold
    unquoted (a secret has "/" and "+")."""
    return f"{key_id}.{base64.urlsafe_b64encode(secret.encode()).decode().rstrip('=')}"


def _session_of(value: str) -> tuple[str, str]:
    """(key id, secret) of a cookie made by :func:`_cookie_of`; empty strings if it is not."""
    key_id, _, encoded = value.partition(".")
    try:
        secret = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode()
    except (ValueError, UnicodeDecodeError):
        return "", ""
    return key_id, secret


def _cookie_value(scope: dict[str, Any] | Any) -> str:
    for name, value in scope["headers"]:
        if name == b"cookie":
            found = cookie_parser(value.decode("latin-1")).get(COOKIE)
            if found:
                return found
    return ""


class Console:
    """The outermost layer: answers ``/console`` itself, hands everything else on."""

    def __init__(self, app: Any, ctx: ServerContext) -> None:
        self.app = app
        self.ctx = ctx
        self.router = Router(
            routes=[
                Route(PREFIX, self.redirect, methods=["GET", "HEAD"]),
                Route(PREFIX + "/", self.index, methods=["GET", "HEAD"]),
                Route(PREFIX + "/assets/{path:path}", self.asset, methods=["GET", "HEAD"]),
                Route(PREFIX + "/api/session", self.session, methods=["GET"]),
                Route(PREFIX + "/api/signin", self.signin, methods=["POST"]),
                Route(PREFIX + "/api/signout", self.signout, methods=["POST"]),
                Route(PREFIX + "/api/change-password", self.change_password, methods=["POST"]),
            ]
        )

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and is_console_path(scope["path"]):
            await self.router(scope, receive, send)
        else:
            await self.app(scope, receive, send)

    async def redirect(self, _request: Request) -> Response:
        return RedirectResponse(PREFIX + "/", status_code=308)

    async def index(self, _request: Request) -> Response:
        return FileResponse(
            ASSETS / "index.html",
            media_type="text/html; charset=utf-8",
            headers=_PAGE_HEADERS,
        )

    async def asset(self, request: Request) -> Response:
        name = request.path_params["path"]
        if name == "plotly.min.js":
            path = plotly_js()
        else:
            path = (ASSETS / name).resolve()
            if ASSETS.resolve() not in path.parents or not path.is_file():
                return _json_error(404, "NotFound", f"No console asset {name!r}.")
        media = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        if path.suffix == ".js":
            media = "text/javascript"
        return FileResponse(
            path,
            media_type=media,
            headers={"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"},
        )

    async def session(self, request: Request) -> Response:
        """Who is signed in: the page asks on load. Not being signed in is an answer, not
        an error (a 401 here would be a red line in the browser's console on every visit)."""
        if not has_console_cookie(request.scope):
            return JSONResponse({"signed_in": False})
        try:
            identity = await asyncio.to_thread(
                cookie_identity, request.scope, self.ctx, "sagemaker"
            )
        except KennelError as exc:
            return JSONResponse({"signed_in": False, "reason": exc.message})
        return JSONResponse(await asyncio.to_thread(self._session_shape, identity.principal))

    def _session_shape(self, principal_arn: str) -> dict[str, Any]:
        return {
            "signed_in": True,
            "arn": principal_arn,
            "user": principal_arn.rsplit("/", 1)[-1],
            "account": self.ctx.account_id,
            "region": self.ctx.region,
        }

    async def signin(self, request: Request) -> Response:
        form = await _read_form(request, "sign-in")
        if isinstance(form, Response):
            return form
        if not (form.get("access_key_id") or form.get("user_name")):
            return _json_error(
                400,
                "ValidationException",
                "Give access_key_id and secret_access_key, or user_name and password.",
            )
        try:
            started = await asyncio.to_thread(self._start_session, form)
        except PasswordResetRequiredError as exc:
            log.info("console sign-in of %s held for a new password", form.get("user_name"))
            return _json_error(exc.status, exc.aws_code, exc.message)
        except PasswordExpiredError as exc:
            log.info("console sign-in of %s refused: password expired", form.get("user_name"))
            return _json_error(exc.status, exc.aws_code, exc.message)
        if started is None:
            await asyncio.sleep(FAILED_SIGNIN_DELAY)
            log.info("console sign-in refused (%s)", _how(form))
            return _json_error(401, "SignInFailed", SIGNIN_FAILED)
        principal_arn, credentials = started
        log.info("console sign-in of %s (%s)", principal_arn, _how(form))
        return self._signed_in(request, principal_arn, credentials)

    def _signed_in(
        self, request: Request, principal_arn: str, credentials: dict[str, Any]
    ) -> Response:
        """The session's shape, with the cookie that holds its temporary credentials."""
        shape = self._session_shape(principal_arn)
        shape["expires"] = credentials["Expiration"].isoformat()
        response = JSONResponse(shape)
        response.set_cookie(
            COOKIE,
            _cookie_of(credentials["AccessKeyId"], credentials["SecretAccessKey"]),
            max_age=SESSION_SECONDS,
            path="/",
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
        )
        return response

    def _start_session(self, form: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
        """(the user's ARN, temporary credentials) when the form proves who it is, or None.

        An access key must be a user's long-term key; its session is GetSessionToken's,
        so it has the user's policies (and is refused where those refuse sessions)."""
        key_id = form.get("access_key_id")
        if isinstance(key_id, str) and key_id:
            key_id, secret = key_id.strip(), form.get("secret_access_key")
            if not isinstance(secret, str) or key_id.startswith("ASIA"):
                return None
            credential = self.ctx.credentials.lookup(key_id)
            if credential is None or not hmac.compare_digest(
                credential.secret_access_key.encode(), secret.strip().encode()
            ):
                return None
            caller = self.ctx.authorizer.principal(key_id)
            made = self.ctx.iam.get_session_token(caller, duration_seconds=SESSION_SECONDS)
            return caller.arn, made["Credentials"]
        user, password = form.get("user_name"), form.get("password")
        if isinstance(user, str) and isinstance(password, str) and user and password:
            if not self.ctx.iam.check_password(user, password):
                return None
            state = self.ctx.iam.password_state(user)
            if state == "hard-expired":
                raise _hard_expired(user)
            if state in ("expired", "reset-required"):
                why = (
                    "Your password has expired (the account's password policy sets a maximum age)"
                    if state == "expired"
                    else "Your password must be changed before you sign in"
                )
                raise PasswordResetRequiredError(
                    f"{why}: choose a new password. It needs {self.ctx.iam.password_rules()}."
                )
            made = self.ctx.iam.console_session(user, SESSION_SECONDS)
            return f"arn:aws:iam::{self.ctx.account_id}:user/{user}", made.get("Credentials", made)
        return None

    async def change_password(self, request: Request) -> Response:
        """A user's new console password, proven by the old one, then a sign-in with it. A
        wrong user or old password gets sign-in's answer, as slowly: nothing to probe."""
        form = await _read_form(request, "change-password")
        if isinstance(form, Response):
            return form
        user, old, new = (_text(form, k) for k in ("user_name", "old_password", "new_password"))
        if not (user and old and new):
            return _json_error(
                400, "ValidationException", "Give user_name, old_password and new_password."
            )
        facts = RequestFacts(
            request_id=str(uuid.uuid4()),
            source_ip=request.client.host if request.client else "",
            secure=request.url.scheme == "https",
            region=self.ctx.region,
        )
        try:
            credentials = await asyncio.to_thread(self._change_password, user, old, new, facts)
        except KennelError as exc:
            log.info("console password change of %s refused: %s", user, exc.aws_code)
            return _json_error(exc.status, exc.aws_code, exc.message)
        if credentials is None:
            await asyncio.sleep(FAILED_SIGNIN_DELAY)
            log.info("console password change refused (wrong user or password)")
            return _json_error(401, "SignInFailed", SIGNIN_FAILED)
        principal_arn = f"arn:aws:iam::{self.ctx.account_id}:user/{user}"
        log.info("console password change and sign-in of %s", principal_arn)
        return self._signed_in(request, principal_arn, credentials)

    def _change_password(
        self, user: str, old: str, new: str, facts: RequestFacts
    ) -> dict[str, Any] | None:
        """The new session's credentials once the password is changed; None for a wrong
        user or old password. The user's own policies decide, as for IAM's ChangePassword."""
        if not self.ctx.iam.check_password(user, old):
            return None
        if self.ctx.iam.password_state(user) == "hard-expired":
            raise _hard_expired(user)
        own_arn = f"arn:aws:iam::{self.ctx.account_id}:user/{user}"
        principal = self.ctx.authorizer.principal_for_arn(own_arn)
        outcome = self.ctx.authorizer.check(principal, "iam:ChangePassword", own_arn, facts)
        if not outcome.allowed:
            raise AccessDeniedError(
                f"{outcome.message}. Ask an administrator to attach the IAMUserChangePassword "
                "policy to you, or to reset your password with "
                f"`kennel iam users set-password {user}`.",
                aws_code="AccessDenied",
            )
        try:
            self.ctx.iam.change_password(user, old, new)
        except WrongOldPasswordError:
            return None  # changed by someone else since the check above
        made = self.ctx.iam.console_session(user, SESSION_SECONDS)
        credentials: dict[str, Any] = made["Credentials"]
        return credentials

    async def signout(self, request: Request) -> Response:
        key_id, _ = _session_of(_cookie_value(request.scope))
        if key_id.startswith("ASIA"):
            await asyncio.to_thread(self.ctx.iam.end_session, key_id)
        response = JSONResponse({"signed_out": True})
        response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")
        return response


_PAGE_HEADERS = {
    "Cache-Control": "no-cache",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    # Everything the console loads comes from this server; no inline scripts.
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self' 'unsafe-eval'; style-src 'self' "
        "'unsafe-inline'; img-src 'self' data: blob:; connect-src 'self'; "
        "frame-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    ),
}
"""Plotly needs 'unsafe-eval' (it compiles some functions) and inline styles."""


async def _read_form(request: Request, what: str) -> dict[str, Any] | Response:
    """The JSON object a sign-in form posts, or the error to answer instead."""
    body = await request.body()
    if len(body) > SIGNIN_MAX_BYTES:
        return _json_error(413, "RequestTooLargeException", f"The {what} body is too big.")
    try:
        form = _json.loads(body or b"{}")
    except ValueError:
        return _json_error(400, "ValidationException", f"The {what} body must be JSON.")
    if not isinstance(form, dict):
        return _json_error(400, "ValidationException", f"The {what} body must be an object.")
    return form


def _text(form: dict[str, Any], key: str) -> str:
    """A field that must be text ("" when it is missing or is not)."""
    value = form.get(key)
    return value if isinstance(value, str) else ""


def _how(form: dict[str, Any]) -> str:
    return "access key" if form.get("access_key_id") else "password"


def _json_error(status: int, code: str, message: str) -> Response:
    return JSONResponse(
        {"__type": code, "message": message},
        status_code=status,
        headers={"x-amzn-ErrorType": code},
    )
