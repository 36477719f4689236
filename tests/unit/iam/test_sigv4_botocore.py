"""kennel's verifier against botocore's own signers, the client kennel must agree with.

Requests are built like botocore's serializers build them (percent-encoded path labels and
query), signed by ``SigV4Auth`` / ``SigV4QueryAuth`` under a frozen clock, then handed to
``verify`` the way an ASGI server receives them: raw path and query from the URL, header
values as on the wire, plus the headers the HTTP client adds unsigned (Host, Content-Length,
User-Agent). Each error AWS reports has a test of its own below.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from unittest import mock
from urllib.parse import urlsplit

import pytest
from botocore.auth import S3SigV4QueryAuth, SigV4Auth, SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.utils import percent_encode
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kennel._errors import (
    ExpiredTokenError,
    IncompleteSignatureError,
    InvalidSignatureError,
    MissingAuthenticationTokenError,
    UnrecognizedClientError,
)
from kennel.iam.sigv4 import (
    Credential,
    SignedRequest,
    VerifiedIdentity,
    canonical_path,
    canonical_query,
    canonical_request,
    parse_authorization,
    verify,
)

REGION = "us-west-2"
SERVICE = "sagemaker"
ENDPOINT = "http://127.0.0.1:8080"
AKID = "AKIAKENNELTEST000001"
TEMP_AKID = "ASIAKENNELTEST000001"
SECRET = "kennel/secret+Key0123456789abcdefghijklmn"
TOKEN = "FwoGZXIvYXdzEKennel//session+token=="
PRINCIPAL = "arn:aws:iam::123456789012:user/alice"
SIGNED_AT = datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC)

SETTINGS = settings(
    max_examples=150,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)


# --- signing and receiving -------------------------------------------------------------


@contextmanager
def frozen_clock(moment: datetime = SIGNED_AT) -> Iterator[None]:
    """botocore reads the time through this one function when it signs."""
    with mock.patch("botocore.auth.get_current_datetime", return_value=moment.replace(tzinfo=None)):
        yield


def credentials(temporary: bool = False, secret: str = SECRET) -> Credentials:
    if temporary:
        return Credentials(TEMP_AKID, secret, TOKEN)
    return Credentials(AKID, secret)


def lookup(temporary: bool = False, **changes: object) -> Callable[[str], Credential | None]:
    """The server's key store: one long-term and one temporary key."""
    keys = {
        AKID: Credential(AKID, SECRET, principal=PRINCIPAL),
        TEMP_AKID: Credential(TEMP_AKID, SECRET, session_token=TOKEN, principal=PRINCIPAL),
    }
    key = TEMP_AKID if temporary else AKID
    keys[key] = dataclasses.replace(keys[key], **changes)  # type: ignore[arg-type]
    return keys.get


def url_for(segments: Sequence[str], query: Sequence[tuple[str, str]] = ()) -> str:
    """A URL as botocore's serializers build it: each label and query part percent-encoded."""
    path = "/" + "/".join(percent_encode(segment) for segment in segments)
    encoded = "&".join(f"{percent_encode(k)}={percent_encode(v)}" for k, v in query)
    return ENDPOINT + path + (f"?{encoded}" if encoded else "")


def signed(
    method: str = "POST",
    url: str = ENDPOINT + "/endpoints/my%20ep/invocations",
    headers: Sequence[tuple[str, str]] = (("Content-Type", "application/json"),),
    body: bytes = b'{"instances": [1, 2]}',
    *,
    creds: Credentials | None = None,
    moment: datetime = SIGNED_AT,
) -> AWSRequest:
    request = AWSRequest(method=method, url=url, data=body)
    for name, value in headers:
        request.headers[name] = value  # appends: repeated names are kept, in order
    with frozen_clock(moment):
        SigV4Auth(creds or credentials(), SERVICE, REGION).add_auth(request)
    return request


def received(request: AWSRequest, body: bytes | None = None) -> SignedRequest:
    """The request as an ASGI server hands it over (see kennel.api._auth)."""
    if body is None:
        body = request.body or b""
    parts = urlsplit(request.url)
    # HTTP servers strip the optional whitespace around header values (SP and HTAB only).
    headers = [(name, value.strip(" \t")) for name, value in request.headers.items()]
    if not any(name.lower() == "host" for name, _ in headers):
        headers.append(("host", parts.netloc))
    headers += [("content-length", str(len(body))), ("user-agent", "Boto3/1.34 test")]
    return SignedRequest(
        method=request.method,
        raw_path=parts.path,
        raw_query=parts.query,
        headers=headers,
        payload_sha256=hashlib.sha256(body).hexdigest(),
    )


def presign(
    url: str, expires: int = 3600, creds: Credentials | None = None, s3: bool = False
) -> str:
    request = AWSRequest(method="GET", url=url)
    signer = S3SigV4QueryAuth if s3 else SigV4QueryAuth
    with frozen_clock():
        signer(creds or credentials(), SERVICE, REGION, expires=expires).add_auth(request)
    return str(request.url)


def header_of(request: SignedRequest, name: str) -> str:
    (value,) = [v for n, v in request.headers if n.lower() == name]
    return value


def replace_header(request: SignedRequest, name: str, value: str | None) -> SignedRequest:
    kept = [(n, v) for n, v in request.headers if n.lower() != name]
    added = [] if value is None else [(name, value)]
    return dataclasses.replace(request, headers=kept + added)


def check(
    request: SignedRequest,
    *,
    temporary: bool = False,
    now: datetime = SIGNED_AT,
    keys: Callable[[str], Credential | None] | None = None,
    region: str = REGION,
    services: frozenset[str] = frozenset({SERVICE}),
    allow_unsigned_payload: bool = False,
) -> VerifiedIdentity:
    return verify(
        request,
        lookup=keys or lookup(temporary),
        region=region,
        services=services,
        now=now,
        allow_unsigned_payload=allow_unsigned_payload,
    )


def botocore_path(raw_path: str) -> str:
    """botocore's own canonical path, the oracle for which path changes must matter."""
    return str(SigV4Auth(credentials(), SERVICE, REGION)._normalize_url_path(raw_path))


def flip(text: str, index: int) -> str:
    """``text`` with one character replaced by a letter that is neither it nor hex."""
    index %= len(text)
    return text[:index] + ("q" if text[index] == "z" else "z") + text[index + 1 :]


# --- strategies ------------------------------------------------------------------------

FUNNY = list("aZ09-_.~ %+/?#&=;:@!$'()*,é€ሴ😀")
text = st.text(st.sampled_from(FUNNY) | st.characters(exclude_categories=["Cs"]), max_size=8)
segments = st.lists(st.sampled_from([".", "..", ""]) | text, max_size=5)
# Few distinct names, so repeated keys (sorted by value) come up often.
query_pair = st.tuples(st.sampled_from(["a", "A", "b", "x y", "ü", "%"]) | text, text)
query = st.lists(query_pair, max_size=5)
# Header values travel as latin-1 (http.client encodes them so), tabs and runs of spaces too.
header_value = st.text(
    st.sampled_from([" ", " ", "\t"])
    | st.characters(min_codepoint=0x21, max_codepoint=0x7E)
    | st.characters(min_codepoint=0xA0, max_codepoint=0xFF),
    max_size=12,
)
header_name = st.sampled_from(["x-test-a", "X-Test-B", "x-amz-meta-c", "Content-Type", "Accept"])
headers = st.lists(st.tuples(header_name, header_value), max_size=5)
methods = st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH"])
bodies = st.binary(max_size=64)


# --- properties ------------------------------------------------------------------------


@SETTINGS
@given(
    method=methods,
    path=segments,
    params=query,
    extra=headers,
    body=bodies,
    temporary=st.booleans(),
)
def test_botocore_signed_requests_verify(
    method: str,
    path: list[str],
    params: list[tuple[str, str]],
    extra: list[tuple[str, str]],
    body: bytes,
    temporary: bool,
) -> None:
    request = signed(method, url_for(path, params), extra, body, creds=credentials(temporary))
    identity = check(received(request, body), temporary=temporary)
    assert identity == VerifiedIdentity(
        access_key_id=TEMP_AKID if temporary else AKID,
        principal=PRINCIPAL,
        region=REGION,
        service=SERVICE,
        signed_at=SIGNED_AT,
        presigned=False,
    )


@SETTINGS
@given(path=segments, params=query, extra=headers, body=bodies, where=st.integers(0, 10**6))
def test_one_changed_byte_of_the_body_is_refused(
    path: list[str],
    params: list[tuple[str, str]],
    extra: list[tuple[str, str]],
    body: bytes,
    where: int,
) -> None:
    request = signed("POST", url_for(path, params), extra, body)
    if body:
        index = where % len(body)
        tampered = body[:index] + bytes([body[index] ^ 0x01]) + body[index + 1 :]
    else:
        tampered = b"\x00"
    with pytest.raises(InvalidSignatureError, match="signature we calculated does not match"):
        check(received(request, tampered))


@SETTINGS
@given(path=segments, params=query, where=st.integers(0, 10**6))
def test_a_changed_path_is_refused_unless_it_means_the_same(
    path: list[str], params: list[tuple[str, str]], where: int
) -> None:
    request = received(signed("GET", url_for(path, params), body=b""))
    tampered = dataclasses.replace(request, raw_path=flip(request.raw_path, where))
    if botocore_path(tampered.raw_path) == botocore_path(request.raw_path):
        check(tampered)  # e.g. /a/../b -> /z/../b: AWS normalises both to /b
    else:
        with pytest.raises(InvalidSignatureError):
            check(tampered)


@SETTINGS
@given(params=st.lists(query_pair, min_size=1, max_size=5), where=st.integers(0, 10**6))
def test_a_changed_query_byte_is_refused(params: list[tuple[str, str]], where: int) -> None:
    request = received(signed("GET", url_for(["q"], params), body=b""))
    tampered = dataclasses.replace(request, raw_query=flip(request.raw_query, where))
    with pytest.raises(InvalidSignatureError):
        check(tampered)


@SETTINGS
@given(extra=headers, pick=st.integers(0, 10**6), where=st.integers(0, 10**6))
def test_a_changed_signed_header_byte_is_refused(
    extra: list[tuple[str, str]], pick: int, where: int
) -> None:
    request = received(signed(headers=extra))
    signed_names = set(parse_authorization(header_of(request, "authorization")).signed_headers)
    candidates = [
        i
        for i, (name, _) in enumerate(request.headers)
        if name.lower() in signed_names and name.lower() != "x-amz-date"
    ]
    index = candidates[pick % len(candidates)]
    name, value = request.headers[index]
    changed = flip(value, where) if value else "z"
    tampered_headers = list(request.headers)
    tampered_headers[index] = (name, changed)
    with pytest.raises(InvalidSignatureError):
        check(dataclasses.replace(request, headers=tampered_headers))


@SETTINGS
@given(
    path=segments,
    params=st.lists(
        st.tuples(st.sampled_from(["a", "b", "ü"]) | text, text),
        max_size=4,
        unique_by=lambda kv: kv[0],
    ),
    expires=st.integers(1, 604800),
    temporary=st.booleans(),
)
def test_botocore_presigned_urls_verify_until_they_expire(
    path: list[str], params: list[tuple[str, str]], expires: int, temporary: bool
) -> None:
    # SigV4QueryAuth re-parses the query into a dict, so it signs one value per name.
    url = presign(url_for(path, params), expires, credentials(temporary))
    request = received(AWSRequest(method="GET", url=url), b"")
    lifetime = timedelta(seconds=expires)
    identity = check(request, temporary=temporary, now=SIGNED_AT + lifetime)
    assert identity.presigned and identity.signed_at == SIGNED_AT
    check(request, temporary=temporary, now=SIGNED_AT)
    with pytest.raises(InvalidSignatureError, match="Signature expired"):
        check(request, temporary=temporary, now=SIGNED_AT + lifetime + timedelta(seconds=1))


# --- presigned URLs --------------------------------------------------------------------


def test_presigned_url_tampering_is_refused() -> None:
    url = presign(url_for(["endpoints", "e"], [("Action", "Describe")]))
    request = received(AWSRequest(method="GET", url=url), b"")
    check(request)
    changed_query = request.raw_query.replace("Action=Describe", "Action=Delete")
    with pytest.raises(InvalidSignatureError):
        check(dataclasses.replace(request, raw_query=changed_query))
    with pytest.raises(InvalidSignatureError):
        check(dataclasses.replace(request, method="DELETE"))
    with pytest.raises(InvalidSignatureError):
        check(request, keys=lookup(secret_access_key="0" * 40))


def test_s3_style_presigned_url_with_unsigned_payload_verifies() -> None:
    url = presign(ENDPOINT + "/bucket/key.txt", s3=True)
    assert "UNSIGNED-PAYLOAD" not in url  # the payload line is implied, not sent
    request = received(AWSRequest(method="GET", url=url), b"any body at all")
    assert check(request).presigned


def test_presigned_url_from_the_future_is_refused() -> None:
    request = received(AWSRequest(method="GET", url=presign(ENDPOINT + "/x")), b"")
    with pytest.raises(InvalidSignatureError, match="Signature not yet current"):
        check(request, now=SIGNED_AT - timedelta(minutes=5, seconds=1))


def test_presigned_url_valid_longer_than_a_week_is_refused() -> None:
    request = received(AWSRequest(method="GET", url=presign(ENDPOINT + "/x", 604801)), b"")
    with pytest.raises(IncompleteSignatureError, match="X-Amz-Expires"):
        check(request)


def test_presigned_url_missing_a_parameter_names_it() -> None:
    request = received(AWSRequest(method="GET", url=presign(ENDPOINT + "/x")), b"")
    query = "&".join(p for p in request.raw_query.split("&") if not p.startswith("X-Amz-Date="))
    with pytest.raises(IncompleteSignatureError, match="must include 'X-Amz-Date'"):
        check(dataclasses.replace(request, raw_query=query))


def test_header_and_presigned_signature_together_are_refused() -> None:
    presigned = received(AWSRequest(method="GET", url=presign(ENDPOINT + "/x")), b"")
    both = replace_header(
        presigned, "authorization", header_of(received(signed()), "authorization")
    )
    with pytest.raises(IncompleteSignatureError, match="Only one auth mechanism"):
        check(both)


# --- the errors AWS reports ------------------------------------------------------------


def test_missing_authentication() -> None:
    request = replace_header(received(signed()), "authorization", None)
    with pytest.raises(MissingAuthenticationTokenError) as caught:
        check(request)
    assert caught.value.message == "Missing Authentication Token"
    assert caught.value.status == 403
    assert caught.value.aws_code == "MissingAuthenticationTokenException"


def test_unknown_access_key() -> None:
    with pytest.raises(UnrecognizedClientError) as caught:
        check(received(signed()), keys=lambda akid: None)
    assert caught.value.message == "The security token included in the request is invalid."
    assert caught.value.hint is not None and AKID in caught.value.hint


def test_wrong_region() -> None:
    with pytest.raises(InvalidSignatureError) as caught:
        check(received(signed()), region="eu-west-1")
    assert caught.value.message == "Credential should be scoped to a valid region."
    assert caught.value.hint is not None and "eu-west-1" in caught.value.hint


def test_wrong_service() -> None:
    with pytest.raises(InvalidSignatureError) as caught:
        check(received(signed()), services=frozenset({"lambda"}))
    assert caught.value.message == "Credential should be scoped to correct service: 'lambda'."


def test_any_of_several_services_is_accepted() -> None:
    identity = check(received(signed()), services=frozenset({"lambda", SERVICE}))
    assert identity.service == SERVICE


def test_skew_in_the_past_has_aws_wording() -> None:
    moment = datetime(2015, 8, 30, 12, 36, tzinfo=UTC)
    request = received(signed(moment=moment))
    with pytest.raises(InvalidSignatureError) as caught:
        check(request, now=datetime(2015, 8, 30, 12, 51, tzinfo=UTC))
    assert caught.value.message == (
        "Signature expired: 20150830T123600Z is now earlier than 20150830T124600Z "
        "(20150830T125100Z - 5 min.)"
    )


def test_skew_in_the_future_has_aws_wording() -> None:
    moment = datetime(2015, 8, 30, 12, 36, tzinfo=UTC)
    request = received(signed(moment=moment))
    with pytest.raises(InvalidSignatureError) as caught:
        check(request, now=datetime(2015, 8, 30, 12, 21, tzinfo=UTC))
    assert caught.value.message == (
        "Signature not yet current: 20150830T123600Z is still later than 20150830T122600Z "
        "(20150830T122100Z + 5 min.)"
    )


def test_skew_limit_is_inclusive() -> None:
    request = received(signed())
    check(request, now=SIGNED_AT + timedelta(minutes=5))
    check(request, now=SIGNED_AT - timedelta(minutes=5))
    check(request, now=(SIGNED_AT + timedelta(minutes=1)).replace(tzinfo=None))  # naive = UTC


def test_content_sha_header_must_match_the_body() -> None:
    body = b'{"a": 1}'
    other = hashlib.sha256(b"something else").hexdigest()
    request = signed(headers=[("X-Amz-Content-SHA256", other)], body=body)
    with pytest.raises(InvalidSignatureError) as caught:
        check(received(request, body))
    assert caught.value.message == (
        "The provided 'x-amz-content-sha256' header does not match what was computed."
    )
    right = signed(headers=[("X-Amz-Content-SHA256", hashlib.sha256(body).hexdigest())], body=body)
    check(received(right, body))


def test_unsigned_payload_only_where_allowed() -> None:
    request = received(signed(headers=[("X-Amz-Content-SHA256", "UNSIGNED-PAYLOAD")]), b"whatever")
    with pytest.raises(InvalidSignatureError, match="x-amz-content-sha256"):
        check(request)
    assert check(request, allow_unsigned_payload=True).access_key_id == AKID


def test_date_header_instead_of_x_amz_date() -> None:
    request = signed(headers=[("Date", "placeholder")])
    assert "X-Amz-Date" not in request.headers  # botocore signed with the HTTP Date header
    check(received(request))


def test_missing_date() -> None:
    request = replace_header(received(signed()), "x-amz-date", None)
    with pytest.raises(IncompleteSignatureError, match="'X-Amz-Date' or a 'Date' header"):
        check(request)


def test_credential_date_must_be_the_request_date() -> None:
    request = replace_header(received(signed()), "x-amz-date", "20240507T070809Z")
    with pytest.raises(InvalidSignatureError, match="Date in Credential scope does not match"):
        check(request, now=SIGNED_AT + timedelta(days=1))


def test_malformed_date() -> None:
    request = replace_header(received(signed()), "x-amz-date", "2024-05-06T07:08:09Z")
    with pytest.raises(IncompleteSignatureError, match="ISO-8601 'basic format'"):
        check(request)


GOOD_AUTH = (
    "AWS4-HMAC-SHA256 Credential=AKIAKENNELTEST000001/20240506/us-west-2/sagemaker/aws4_request, "
    "SignedHeaders=host;x-amz-date, Signature=" + "0" * 64
)


@pytest.mark.parametrize(
    ("authorization", "message"),
    [
        (
            GOOD_AUTH.replace("AWS4-HMAC-SHA256", "AWS4-HMAC-SHA512"),
            "Unsupported signing algorithm",
        ),
        ("Bearer abc", "Unsupported signing algorithm 'Bearer'"),
        (GOOD_AUTH.replace("Credential=", "Cred="), "requires 'Credential' parameter"),
        (GOOD_AUTH.split(", Signature")[0], "requires 'Signature' parameter"),
        (GOOD_AUTH.replace("SignedHeaders=host;x-amz-date, ", ""), "requires 'SignedHeaders'"),
        (GOOD_AUTH.replace("/us-west-2", ""), "Credential '.*' is malformed"),
        (GOOD_AUTH.replace("aws4_request", "aws5_request"), "valid terminator"),
        (GOOD_AUTH.replace("/20240506/", "/2024056/"), "is not yyyymmdd"),
        (GOOD_AUTH.replace("host;x-amz-date", "x-amz-date;host"), "must be lower-case .* sorted"),
        (GOOD_AUTH.replace("host;x-amz-date", "Host;x-amz-date"), "must be lower-case .* sorted"),
        (GOOD_AUTH.replace("host;x-amz-date", "host;;x-amz-date"), "must be lower-case .* sorted"),
        (GOOD_AUTH.replace("host;x-amz-date", "x-amz-date"), "'Host' .* must be a 'SignedHeader'"),
        (GOOD_AUTH + ", Signature=abc", "'Signature' is repeated"),
    ],
)
def test_malformed_authorizationheader_of(authorization: str, message: str) -> None:
    request = replace_header(received(signed()), "authorization", authorization)
    with pytest.raises(IncompleteSignatureError, match=message):
        check(request)


def test_authorization_components_may_be_separated_by_commas_only() -> None:
    request = received(signed())
    compact = header_of(request, "authorization").replace(", ", ",")
    check(replace_header(request, "authorization", compact))
    parsed = parse_authorization(compact)
    assert parsed.credential.access_key_id == AKID
    assert parsed.credential.scope == "20240506/us-west-2/sagemaker/aws4_request"
    assert parsed.signed_headers == ("content-type", "host", "x-amz-date")


def test_signed_header_missing_from_the_request_is_refused() -> None:
    request = replace_header(received(signed()), "content-type", None)
    with pytest.raises(IncompleteSignatureError, match="no such header"):
        check(request)


def test_session_token_must_be_the_keys_own() -> None:
    request = received(signed(creds=credentials(temporary=True)))
    check(request, temporary=True)
    with pytest.raises(UnrecognizedClientError, match="security token included"):
        check(request, keys=lookup(temporary=True, session_token="another-session"))


def test_temporary_key_without_its_token_is_refused() -> None:
    request = received(signed(creds=credentials(temporary=True)))
    request = replace_header(request, "x-amz-security-token", None)
    with pytest.raises(UnrecognizedClientError) as caught:
        check(request, temporary=True)
    assert caught.value.hint is not None and "X-Amz-Security-Token" in caught.value.hint


def test_token_sent_with_a_long_term_key_is_refused() -> None:
    request = received(signed(headers=[("X-Amz-Security-Token", TOKEN)]))
    with pytest.raises(UnrecognizedClientError):
        check(request)


def test_expired_session_is_refused() -> None:
    request = received(signed(creds=credentials(temporary=True)))
    ended = lookup(temporary=True, expires_at=SIGNED_AT - timedelta(seconds=1))
    with pytest.raises(ExpiredTokenError, match="expired"):
        check(request, keys=ended)


def test_signature_mismatch_shows_the_canonical_request_but_no_secret() -> None:
    request = signed(body=b"{}")
    wrong = "0" * 40
    with pytest.raises(InvalidSignatureError) as caught:
        check(received(request), keys=lookup(secret_access_key=wrong))
    message = caught.value.message
    del request.headers["Authorization"]  # botocore would sign it too
    signer = SigV4Auth(credentials(), SERVICE, REGION)
    canonical = signer.canonical_request(request)
    assert f"The Canonical String for this request should have been\n'{canonical}'" in message
    assert signer.string_to_sign(request, canonical) in message
    # Neither secret, nor the signature the server expected under its secret, is shown.
    expected = signed(body=b"{}", creds=credentials(secret=wrong)).headers["Authorization"]
    assert wrong not in message and SECRET not in message
    assert expected.rsplit("Signature=", 1)[1] not in message


# --- the pure helpers, on inputs botocore itself never produces ---------------------------


def test_canonical_query_re_encodes_what_a_client_left_raw() -> None:
    # Lower-case hex, a raw UTF-8 value (as latin-1, like ASGI hands it over), a bare key.
    raw = "b=%7e&a=" + "\u1234 x".encode().decode("latin-1") + "&a=&c"
    assert canonical_query(raw) == "a=&a=%E1%88%B4%20x&b=~&c="


def test_canonical_query_of_a_presigned_url_leaves_out_the_signature() -> None:
    assert canonical_query("X-Amz-Signature=abc&a=1", presigned=True) == "a=1"
    assert canonical_query("X-Amz-Signature=abc&a=1") == "X-Amz-Signature=abc&a=1"


def test_canonical_path_encodes_the_received_path_once_more() -> None:
    assert canonical_path("/endpoints/my%20ep/invocations") == "/endpoints/my%2520ep/invocations"
    assert canonical_path("/a/./b/../c//d/") == "/a/c/d/"
    assert canonical_path("") == "/"


def test_canonical_request_upper_cases_the_method() -> None:
    request = dataclasses.replace(received(signed()), method="post")
    creq = canonical_request(request, ["host"], "UNSIGNED-PAYLOAD")
    assert (
        creq
        == "POST\n/endpoints/my%2520ep/invocations\n\nhost:127.0.0.1:8080\n\nhost\nUNSIGNED-PAYLOAD"
    )
