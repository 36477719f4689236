"""SigV4 verification on hostile requests: it says who signed, or raises an AuthError.

Seeds are AWS's SigV4 test suite (``shared/conformance/sigv4-testsuite``): every signed
request of it, with bytes flipped, inserted, repeated or cut anywhere (request line,
headers, the Authorization header itself). Besides them, Authorization headers, dates and
presigned query strings made from scratch. Whatever comes in, ``verify`` returns a
VerifiedIdentity or raises an AuthError (a 403 to the caller), and does so quickly.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from tests.fuzz._fuzz import SIGV4_SUITE, fuzz_settings, mutated, outcome, quick

from kennel._errors import AuthError
from kennel.iam.sigv4 import (
    _PRESIGN_PARAMS,
    _TOKEN_PARAM,
    Credential,
    SignedRequest,
    VerifiedIdentity,
    parse_authorization,
    parse_credential,
    verify,
)

AKID = "AKIDEXAMPLE"
SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
NOW = datetime(2015, 8, 30, 12, 36, tzinfo=UTC)
SEEDS = (
    sorted(path.read_bytes() for path in SIGV4_SUITE.rglob("*.sreq"))
    if SIGV4_SUITE.is_dir()
    else []
)
LOOKUP = {
    AKID: Credential(AKID, SECRET, principal="arn:test"),
    "ASIATEMP": Credential("ASIATEMP", SECRET, session_token="token", expires_at=NOW),
}.get


def received(raw: bytes) -> SignedRequest:
    """The request an ASGI server would hand over for these bytes (leniently: a mangled
    request line still gives some method, path and query)."""
    head, _, body = raw.partition(b"\n\n")
    first, *lines = head.decode("latin-1").split("\n")
    method, _, rest = first.partition(" ")
    target = rest.rsplit(" ", 1)[0]
    path, _, query = target.partition("?")
    headers: list[tuple[str, str]] = []
    for line in lines:
        name, _, value = line.partition(":")
        headers.append((name, value.strip()))
    return SignedRequest(method, path, query, headers, hashlib.sha256(body).hexdigest())


def check(request: SignedRequest, now: datetime = NOW) -> None:
    with quick(f"verify({request})"):
        result = outcome(
            lambda: verify(
                request, lookup=LOOKUP, region="us-east-1", services={"service"}, now=now
            ),
            AuthError,
        )
    assert isinstance(result, VerifiedIdentity | AuthError)
    if isinstance(result, AuthError):
        assert result.status == 403 and result.message


@pytest.mark.skipif(not SEEDS, reason=f"SigV4 test suite not found at {SIGV4_SUITE}")
@given(raw=mutated(SEEDS) if SEEDS else st.nothing())
@fuzz_settings(max_examples=400)
def test_mutated_suite_requests(raw: bytes) -> None:
    check(received(raw))


def test_the_suite_itself_verifies() -> None:
    """The seeds are good requests: the fuzzing starts from signatures that verify."""
    if not SEEDS:
        pytest.skip(f"SigV4 test suite not found at {SIGV4_SUITE}")
    verified = 0
    for raw in SEEDS:
        request = received(raw)
        try:
            verify(request, lookup=LOOKUP, region="us-east-1", services={"service"}, now=NOW)
        except AuthError:
            continue
        verified += 1
    assert verified >= 25


# --- made from scratch ----------------------------------------------------------------------------

words = st.sampled_from(
    [
        "AWS4-HMAC-SHA256",
        "Credential=",
        "SignedHeaders=",
        "Signature=",
        f"{AKID}/20150830/us-east-1/service/aws4_request",
        "host;x-amz-date",
        "host",
        ",",
        " ",
        "\t",
        "/",
        "=",
        ";",
        "0" * 64,
    ]
)
authorizations = st.lists(words | st.text(max_size=12), max_size=14).map("".join)
dates = st.one_of(
    st.sampled_from(
        [
            "20150830T123600Z",
            "99991231T235959Z",
            "00000101T000000Z",
            "20151330T123600Z",
            "Sun, 30 Aug 2015 12:36:00 GMT",
            "Fri, 31 Dec 9999 23:59:59 -0100",
            "Fri, 31 Dec 9999 23:59:59 -2359",
            "Mon, 01 Jan 0001 00:00:00 +2359",
            "Mon, 01 Jan 100 00:00:00 +2359",
            "Thu, 1 Jan 1970 00:00:00 +0000",
            "",
        ]
    ),
    st.datetimes(timezones=st.timezones()).map(lambda d: d.strftime("%a, %d %b %Y %H:%M:%S %z")),
    st.text(max_size=30),
)
presign_names = st.sampled_from([*_PRESIGN_PARAMS, _TOKEN_PARAM])
presign_values = (
    st.sampled_from(
        [
            "AWS4-HMAC-SHA256",
            f"{AKID}%2F20150830%2Fus-east-1%2Fservice%2Faws4_request",
            "ASIATEMP/20150830/us-east-1/service/aws4_request",
            "host",
            "604800",
            "604801",
            "-1",
            "1e3",
            "٣",
            "99999999999999999999999",
        ]
    )
    | dates
    | st.text(max_size=20)
)
queries = st.lists(st.tuples(presign_names | st.text(max_size=8), presign_values), max_size=9).map(
    lambda pairs: "&".join(f"{k}={v}" for k, v in pairs)
)
header_names = st.sampled_from(
    [
        "host",
        "Host",
        "x-amz-date",
        "date",
        "authorization",
        "x-amz-security-token",
        "x-amz-content-sha256",
        " X-Amz-Date",
    ]
)


@given(
    authorization=st.none() | authorizations,
    date=st.none() | dates,
    query=queries,
    extra=st.lists(st.tuples(header_names | st.text(max_size=8), st.text(max_size=40)), max_size=4),
    path=st.text(max_size=40),
)
@fuzz_settings(max_examples=400)
def test_requests_made_from_scratch(
    authorization: str | None,
    date: str | None,
    query: str,
    extra: list[tuple[str, str]],
    path: str,
) -> None:
    headers = [("host", "example.amazonaws.com"), *extra]
    if authorization is not None:
        headers.append(("authorization", authorization))
    if date is not None:
        headers.append(("x-amz-date", date))
    check(SignedRequest("GET", "/" + path, query, headers, hashlib.sha256(b"").hexdigest()))


@given(value=authorizations | st.text())
@fuzz_settings(max_examples=300)
def test_authorization_header_parsing(value: str) -> None:
    parsed = outcome(lambda: parse_authorization(value), AuthError)
    if not isinstance(parsed, AuthError):
        assert parsed.signature and parsed.signed_headers and parsed.credential.access_key_id


@given(value=st.text() | st.lists(st.text(max_size=10), max_size=7).map("/".join))
@fuzz_settings(max_examples=200)
def test_credential_scope_parsing(value: str) -> None:
    outcome(lambda: parse_credential(value), AuthError)


@given(skew=st.timedeltas(min_value=timedelta(days=-3650), max_value=timedelta(days=3650)))
@fuzz_settings(max_examples=50)
def test_any_server_clock(skew: timedelta) -> None:
    """The same signed requests, judged by a server clock that is off by up to ten years."""
    for raw in SEEDS[:5]:
        check(received(raw), NOW + skew)


@pytest.mark.skipif(not SEEDS, reason=f"SigV4 test suite not found at {SIGV4_SUITE}")
@given(
    raw=st.sampled_from(SEEDS) if SEEDS else st.nothing(),
    header=st.sampled_from(["x-amz-date", "date"]),
    date=dates,
)
@fuzz_settings(max_examples=200)
def test_suite_requests_with_hostile_dates(raw: bytes, header: str, date: str) -> None:
    """A well-formed signature whose date is anything: the date is read before it is checked."""
    request = received(raw)
    kept = [(n, v) for n, v in request.headers if n.lower() not in ("x-amz-date", "date")]
    check(
        SignedRequest(
            request.method,
            request.raw_path,
            request.raw_query,
            [*kept, (header, date)],
            request.payload_sha256,
        )
    )
