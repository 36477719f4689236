"""The AWS SigV4 test suite (aws-c-auth, as vendored by botocore) against kennel's verifier.

Each case folder holds a signed request (``.sreq``) and what AWS says its canonical
request (``.creq``), string to sign (``.sts``) and Authorization header (``.authz``)
are. kennel must rebuild the same strings, accept the signed request, and refuse it once
any signed part changes.

Cases treated specially, and why:

* ``get-vanilla-with-session-token``: its ``.sreq`` carries a wrong signature upstream
  (the one of ``get-vanilla``); the ``.authz`` beside it is right, so it is used instead.
* ``post-sts-header-after``: the session token is added *after* signing, i.e. sent but
  not signed. Some AWS services accept that; kennel follows AWS-SEMANTICS.md ("temporary
  credentials carry X-Amz-Security-Token, which must be signed") and refuses it with a
  message saying so. Its signature itself is still checked: the same request verifies
  for a long-term key once the unsigned token header is left out.

Every ``normalize-path`` case matches botocore's non-S3 path normalisation, so none is
treated differently.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from kennel._errors import (
    AuthError,
    IncompleteSignatureError,
    InvalidSignatureError,
    UnrecognizedClientError,
)
from kennel.iam.sigv4 import (
    Credential,
    SignedRequest,
    VerifiedIdentity,
    canonical_request,
    parse_authorization,
    signature,
    signing_key,
    string_to_sign,
    verify,
)

SUITE = Path(__file__).resolve().parents[4] / "shared" / "conformance" / "sigv4-testsuite"
if not SUITE.is_dir():
    pytest.skip(f"SigV4 test suite not found at {SUITE}", allow_module_level=True)

AKID = "AKIDEXAMPLE"
SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
REGION = "us-east-1"
SERVICE = "service"
AMZ_DATE = "20150830T123600Z"
NOW = datetime(2015, 8, 30, 12, 36, tzinfo=UTC)
# One token both session cases use, see the suite's post-sts-token/readme.txt.
STS_TOKEN = (
    "AQoDYXdzEPT//////////wEXAMPLEtc764bNrC9SAPBSM22wDOk4x4HIZ8j4FZTwdQWLWsKWHGBuFqwAeMicRXm"
    "xfpSPfIeoIYRqTflfKD8YUuwthAx7mSEI/qkPpKPi/kMcGdQrmGdeehM4IC1NtBmUpp2wUE8phUZampKsbur"
    "EDy0KPkyQDYwT7WZ0wq5VSXDvp75YU9HFvlRd8Tx6q6fE8YQcHNVXAkiY9q6d+xo0rKwT38xVqr7ZD0u0iPPk"
    "UL64lIZbqBAz+scqKmlzm8FDrypNC9Yjc8fPOLn9FX9KSYvKTr4rvx3iSIlTJabIQwj2ICCR/oLxBA=="
)
UNSIGNED_TOKEN_CASE = "post-sts-header-after"
WRONG_SREQ_SIGNATURE_CASE = "get-vanilla-with-session-token"


@dataclasses.dataclass(frozen=True)
class Case:
    """One folder of the suite, parsed the way an ASGI server would hand kennel the request."""

    name: str
    request: SignedRequest
    body: bytes
    creq: str
    sts: str

    @property
    def authorization(self) -> str:
        return header(self.request, "authorization")


def header(request: SignedRequest, name: str) -> str:
    (value,) = [v for n, v in request.headers if n.lower() == name]
    return value


def parse_sreq(raw: bytes) -> tuple[SignedRequest, bytes]:
    """A raw HTTP/1.1 request: request line, headers (folded lines and repeats kept), body.

    Bytes are decoded as latin-1, like ASGI's raw_path and header values; the request
    target is the path exactly as the file writes it (un-encoded, e.g. a literal space).
    """
    head, _, body = raw.partition(b"\n\n")
    request_line, *header_lines = head.decode("latin-1").split("\n")
    method, rest = request_line.split(" ", 1)
    target = rest.rsplit(" ", 1)[0]  # the path may contain spaces; the version may not
    path, _, query = target.partition("?")
    headers: list[tuple[str, str]] = []
    for line in header_lines:
        if line[:1] in (" ", "\t"):  # obs-fold: continues the previous header's value
            name, value = headers.pop()
            headers.append((name, f"{value}\n{line}"))
        else:
            name, _, value = line.partition(":")
            headers.append((name, value.strip()))
    request = SignedRequest(
        method=method,
        raw_path=path,
        raw_query=query,
        headers=headers,
        payload_sha256=hashlib.sha256(body).hexdigest(),
    )
    return request, body


def with_header(request: SignedRequest, name: str, value: str) -> SignedRequest:
    """The request with every header ``name`` replaced by one with ``value``."""
    kept = [(n, v) for n, v in request.headers if n.lower() != name]
    return dataclasses.replace(request, headers=[*kept, (name, value)])


def without_header(request: SignedRequest, name: str) -> SignedRequest:
    kept = [(n, v) for n, v in request.headers if n.lower() != name]
    return dataclasses.replace(request, headers=kept)


def load_case(folder: Path) -> Case:
    def read(suffix: str) -> bytes:
        return (folder / f"{folder.name}{suffix}").read_bytes()

    request, body = parse_sreq(read(".sreq"))
    if folder.name == WRONG_SREQ_SIGNATURE_CASE:
        request = with_header(request, "authorization", read(".authz").decode())
    return Case(folder.name, request, body, read(".creq").decode(), read(".sts").decode())


def all_cases() -> list[Case]:
    folders = sorted({path.parent for path in SUITE.rglob("*.sreq")})
    return [load_case(folder) for folder in folders]


CASES = all_cases()
VERIFIABLE = [case for case in CASES if case.name != UNSIGNED_TOKEN_CASE]


def lookup_for(case: Case, secret: str = SECRET) -> Callable[[str], Credential | None]:
    """The suite's key, temporary (with the suite's token) when the request sends one."""
    token = next((v for n, v in case.request.headers if n.lower() == "x-amz-security-token"), None)
    credential = Credential(AKID, secret, session_token=token, principal="arn:test")
    return {AKID: credential}.get


def check(case: Case, request: SignedRequest, secret: str = SECRET) -> VerifiedIdentity:
    return verify(
        request, lookup=lookup_for(case, secret), region=REGION, services={SERVICE}, now=NOW
    )


def test_the_whole_suite_is_there() -> None:
    assert len(CASES) == 34
    assert len({case.name for case in CASES}) == 34


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_canonical_request_and_string_to_sign_match_aws(case: Case) -> None:
    auth = parse_authorization(case.authorization)
    creq = canonical_request(case.request, auth.signed_headers, case.request.payload_sha256)
    assert creq == case.creq
    sts = string_to_sign(AMZ_DATE, auth.credential.scope, creq)
    assert sts == case.sts
    key = signing_key(SECRET, auth.credential.date, REGION, SERVICE)
    assert signature(key, sts) == auth.signature


@pytest.mark.parametrize("case", VERIFIABLE, ids=lambda c: c.name)
def test_signed_request_verifies(case: Case) -> None:
    identity = check(case, case.request)
    assert identity == VerifiedIdentity(
        access_key_id=AKID,
        principal="arn:test",
        region=REGION,
        service=SERVICE,
        signed_at=NOW,
        presigned=False,
    )


def test_unsigned_session_token_is_refused_but_its_signature_is_right() -> None:
    (case,) = [case for case in CASES if case.name == UNSIGNED_TOKEN_CASE]
    assert "x-amz-security-token" not in parse_authorization(case.authorization).signed_headers
    with pytest.raises(IncompleteSignatureError, match="X-Amz-Security-Token' must be signed"):
        check(case, case.request)
    long_term = {AKID: Credential(AKID, SECRET)}.get
    bare = without_header(case.request, "x-amz-security-token")
    verify(bare, lookup=long_term, region=REGION, services={SERVICE}, now=NOW)
    # ...and a long-term key with a token it does not own is no better.
    with pytest.raises(UnrecognizedClientError):
        verify(case.request, lookup=long_term, region=REGION, services={SERVICE}, now=NOW)


def mutations(case: Case) -> list[tuple[str, SignedRequest]]:
    """The request with one signed part changed at a time."""
    request = case.request
    other_method = "POST" if request.method == "GET" else "GET"
    changed = [
        ("method", dataclasses.replace(request, method=other_method)),
        ("path", dataclasses.replace(request, raw_path=request.raw_path + "x")),
        ("new query parameter", dataclasses.replace(request, raw_query=_add_param(request))),
        (
            "body",
            dataclasses.replace(
                request, payload_sha256=hashlib.sha256(case.body + b"x").hexdigest()
            ),
        ),
    ]
    if request.raw_query:
        first, _, rest = request.raw_query.partition("&")
        name, _, value = first.partition("=")
        query = f"{name}={value}x" + (f"&{rest}" if rest else "")
        changed.append(("query value", dataclasses.replace(request, raw_query=query)))
    for name in parse_authorization(case.authorization).signed_headers:
        if name == "x-amz-date":
            value = "20150830T123601Z"  # still in the scope's day and within the skew
        else:
            value = ",".join(v for n, v in request.headers if n.lower() == name) + "x"
        changed.append((f"header {name}", with_header(request, name, value)))
    return changed


def _add_param(request: SignedRequest) -> str:
    return f"{request.raw_query}&Extra=1" if request.raw_query else "Extra=1"


@pytest.mark.parametrize("case", VERIFIABLE, ids=lambda c: c.name)
def test_any_signed_change_is_refused(case: Case) -> None:
    wrong: list[str] = []
    for what, request in mutations(case):
        expected: type[AuthError] = InvalidSignatureError
        if what == "header x-amz-security-token":
            expected = UnrecognizedClientError  # a token that is not the key's own
        try:
            check(case, request)
        except expected:
            continue
        except AuthError as err:
            wrong.append(f"{what} changed: {type(err).__name__} {err}")
        else:
            wrong.append(f"{what} changed: verified")
    assert not wrong


@pytest.mark.parametrize("case", VERIFIABLE, ids=lambda c: c.name)
def test_wrong_secret_is_refused_without_echoing_it(case: Case) -> None:
    wrong = SECRET[:-1] + "X"
    with pytest.raises(InvalidSignatureError) as caught:
        check(case, case.request, secret=wrong)
    message = caught.value.message
    assert message.startswith("The request signature we calculated does not match")
    assert case.creq in message  # the right secret's canonical request is the same
    assert wrong not in message and SECRET not in message


@pytest.mark.parametrize("case", VERIFIABLE, ids=lambda c: c.name)
def test_unsigned_extra_header_does_not_matter(case: Case) -> None:
    request = dataclasses.replace(
        case.request, headers=[*case.request.headers, ("User-Agent", "curl/8.0")]
    )
    check(case, request)


def test_the_suite_time_is_bounded_by_the_skew() -> None:
    (case,) = [case for case in CASES if case.name == "get-vanilla"]
    lookup = lookup_for(case)
    for offset in (timedelta(minutes=5), -timedelta(minutes=5)):
        verify(case.request, lookup=lookup, region=REGION, services={SERVICE}, now=NOW + offset)
    with pytest.raises(InvalidSignatureError, match="Signature expired"):
        verify(
            case.request,
            lookup=lookup,
            region=REGION,
            services={SERVICE},
            now=NOW + timedelta(minutes=5, seconds=1),
        )
