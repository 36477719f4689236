"""Server-side AWS Signature Version 4 verification.

kennel is spoken to by unmodified boto3 and AWS CLI clients, so it must accept exactly
what botocore signs and refuse everything else the way AWS does. The canonical request
is rebuilt from the request *as received* (raw path and query, header list, body hash),
signed with the secret the caller's lookup returns, and compared in constant time.

The module is pure: no I/O, no clock, no globals. The caller supplies the key lookup,
the server's region and service names, and ``now``.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import re
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from urllib.parse import quote, unquote_to_bytes

from botocore.utils import normalize_url_path

from kennel._errors import (
    ExpiredTokenError,
    IncompleteSignatureError,
    InvalidSignatureError,
    MissingAuthenticationTokenError,
    UnrecognizedClientError,
)

__all__ = [
    "ALGORITHM",
    "MAX_PRESIGNED_EXPIRES",
    "UNSIGNED_PAYLOAD",
    "Credential",
    "CredentialScope",
    "ParsedAuthorization",
    "SignedRequest",
    "VerifiedIdentity",
    "canonical_headers",
    "canonical_path",
    "canonical_query",
    "canonical_request",
    "parse_authorization",
    "parse_credential",
    "signature",
    "signing_key",
    "string_to_sign",
    "verify",
]

ALGORITHM = "AWS4-HMAC-SHA256"
TERMINATOR = "aws4_request"
UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
AMZ_DATE_FORMAT = "%Y%m%dT%H%M%SZ"
MAX_PRESIGNED_EXPIRES = timedelta(days=7)

_AMZ_DATE = re.compile(r"\d{8}T\d{6}Z")
_SCOPE_DATE = re.compile(r"\d{8}")
_PRESIGN_PARAMS = (
    "X-Amz-Algorithm",
    "X-Amz-Credential",
    "X-Amz-Date",
    "X-Amz-Expires",
    "X-Amz-SignedHeaders",
    "X-Amz-Signature",
)
_TOKEN_PARAM = "X-Amz-Security-Token"
_TOKEN_HEADER = "x-amz-security-token"
_CONTENT_SHA_HEADER = "x-amz-content-sha256"

_SIGNATURE_MISMATCH = (
    "The request signature we calculated does not match the signature you provided. "
    "Check your AWS Secret Access Key and signing method. "
    "Consult the service documentation for details."
)
_CONTENT_SHA_MISMATCH = (
    "The provided 'x-amz-content-sha256' header does not match what was computed."
)
_INVALID_TOKEN = "The security token included in the request is invalid."
_EXPIRED_TOKEN = "The security token included in the request is expired"
_SIGN_HINT = (
    "Sign requests with AWS Signature Version 4 (boto3 and the AWS CLI do) using an access "
    "key of this server."
)
_CLOCK_HINT = "Sync the client's clock (e.g. with NTP) and send the request again."


@dataclass(frozen=True)
class SignedRequest:
    """An HTTP request as the server received it, before anything decoded it.

    ``raw_path`` and ``raw_query`` are the wire bytes decoded as latin-1 (what an ASGI
    server's ``raw_path``/``query_string`` give), still percent-encoded: the signature
    covers that form, not the decoded one.
    """

    method: str
    raw_path: str
    raw_query: str
    headers: list[tuple[str, str]]
    payload_sha256: str


@dataclass(frozen=True)
class Credential:
    """What the caller's lookup knows about an access key id.

    ``session_token`` is set for temporary (ASIA...) keys: such requests must carry and
    sign the same ``X-Amz-Security-Token``. ``expires_at`` (optional) ends a temporary
    key's life; past it requests get ExpiredTokenException. ``principal`` is opaque here
    and handed back in :class:`VerifiedIdentity`.
    """

    access_key_id: str
    secret_access_key: str
    session_token: str | None = None
    principal: str = ""
    expires_at: datetime | None = None


@dataclass(frozen=True)
class VerifiedIdentity:
    """Who signed a request whose signature checked out, and for what scope."""

    access_key_id: str
    principal: str
    region: str
    service: str
    signed_at: datetime
    presigned: bool


@dataclass(frozen=True)
class CredentialScope:
    """``AKID/yyyymmdd/region/service/aws4_request``, taken apart."""

    access_key_id: str
    date: str
    region: str
    service: str
    terminator: str = TERMINATOR

    @property
    def scope(self) -> str:
        """The scope line of the string to sign (everything but the access key id)."""
        return f"{self.date}/{self.region}/{self.service}/{self.terminator}"


@dataclass(frozen=True)
class ParsedAuthorization:
    """The three parts of a SigV4 ``Authorization`` header (or presigned query)."""

    credential: CredentialScope
    signed_headers: tuple[str, ...]
    signature: str


@dataclass(frozen=True)
class _Claim:
    """What a request says about its own signature, before any of it is trusted."""

    auth: ParsedAuthorization
    amz_date: str
    signed_at: datetime
    presigned: bool
    expires: timedelta | None
    token: str | None
    token_signed: bool


# --- parsing ---------------------------------------------------------------------------


def parse_authorization(value: str) -> ParsedAuthorization:
    """Parse ``AWS4-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=...``.

    Components may be separated by commas and/or whitespace, as AWS accepts. Anything
    missing or malformed is an IncompleteSignatureException naming what is wrong.
    """
    algorithm, _, rest = value.strip().replace("\t", " ").partition(" ")
    _check_algorithm(algorithm)
    fields = _authorization_fields(rest, value)
    missing = [
        name for name in ("Credential", "SignedHeaders", "Signature") if not fields.get(name)
    ]
    if missing:
        required = " ".join(
            f"Authorization header requires '{name}' parameter." for name in missing
        )
        raise IncompleteSignatureError(f"{required} Authorization={value}", hint=_SIGN_HINT)
    return ParsedAuthorization(
        credential=parse_credential(fields["Credential"]),
        signed_headers=_parse_signed_headers(fields["SignedHeaders"]),
        signature=fields["Signature"],
    )


def parse_credential(value: str) -> CredentialScope:
    """Parse ``AKID/yyyymmdd/region/service/aws4_request``."""
    parts = value.split("/")
    if len(parts) != 5 or not all(parts):
        raise IncompleteSignatureError(
            f"Credential '{value}' is malformed: expected "
            "'<access key id>/<yyyymmdd>/<region>/<service>/aws4_request'.",
            hint=_SIGN_HINT,
        )
    access_key_id, date, region, service, terminator = parts
    if terminator != TERMINATOR:
        raise IncompleteSignatureError(
            "Credential should be scoped with a valid terminator: "
            f"'{TERMINATOR}', not '{terminator}'.",
            hint=_SIGN_HINT,
        )
    if not _SCOPE_DATE.fullmatch(date):
        raise IncompleteSignatureError(
            f"Credential '{value}' is malformed: its date '{date}' is not yyyymmdd.",
            hint=_SIGN_HINT,
        )
    return CredentialScope(access_key_id, date, region, service, terminator)


def _check_algorithm(algorithm: str) -> None:
    if algorithm != ALGORITHM:
        raise IncompleteSignatureError(
            f"Unsupported signing algorithm '{algorithm}': only '{ALGORITHM}' "
            "(Signature Version 4) is accepted.",
            hint=_SIGN_HINT,
        )


def _authorization_fields(rest: str, whole: str) -> dict[str, str]:
    fields: dict[str, str] = {}
    for item in re.split(r"[\s,]+", rest.strip()):
        if not item:
            continue
        name, sep, value = item.partition("=")
        if not sep or name in fields:
            problem = "is not name=value" if not sep else "is repeated"
            raise IncompleteSignatureError(
                f"Authorization header component '{name}' {problem}. Authorization={whole}",
                hint=_SIGN_HINT,
            )
        fields[name] = value
    return fields


def _parse_signed_headers(value: str) -> tuple[str, ...]:
    """SignedHeaders as sent; they must already be lower-case, sorted and unique.

    The list is part of the canonical request, so a client that sent it in another
    order signed something else than the spec says; refusing it with a clear message
    beats a baffling signature mismatch.
    """
    names = tuple(value.split(";"))
    if not all(names) or list(names) != sorted({name.lower() for name in names}):
        raise IncompleteSignatureError(
            f"SignedHeaders '{value}' must be lower-case header names, sorted, without "
            "repeats or empty entries, separated by ';'.",
            hint=_SIGN_HINT,
        )
    return names


# --- canonical request -----------------------------------------------------------------


def canonical_path(raw_path: str) -> str:
    """botocore's canonical URI for non-S3 services, from the path as received.

    Dot segments and repeated slashes are removed, then the (already percent-encoded)
    path is encoded once more: SigV4 double-encodes paths for every service but S3.
    """
    normalized = str(normalize_url_path(raw_path))
    return quote(_wire_bytes(normalized), safe="/~")


def canonical_query(raw_query: str, *, presigned: bool = False) -> str:
    """Pairs decoded then RFC 3986-encoded, sorted by (name, value); repeats kept.

    In a presigned URL the signature cannot sign itself, so X-Amz-Signature is left out.
    """
    pairs: list[tuple[str, str]] = []
    for part in _query_parts(raw_query):
        name, _, value = part.partition("=")
        key = _rfc3986(name)
        if presigned and key == "X-Amz-Signature":
            continue
        pairs.append((key, _rfc3986(value)))
    return "&".join(f"{key}={value}" for key, value in sorted(pairs))


def canonical_headers(headers: Iterable[tuple[str, str]], signed_headers: Sequence[str]) -> str:
    """``name:value\\n`` for each signed header, values trimmed and repeats joined by ','."""
    by_name = _header_map(headers)
    lines: list[str] = []
    for name in signed_headers:
        values = by_name.get(name)
        if values is None:
            raise IncompleteSignatureError(
                f"SignedHeaders names '{name}', but the request has no such header.",
                hint="Sign only headers the request actually carries; a proxy may have dropped it.",
            )
        lines.append(f"{name}:{','.join(_trim_all(value) for value in values)}\n")
    return "".join(lines)


def canonical_request(
    request: SignedRequest,
    signed_headers: Sequence[str],
    payload_hash: str,
    *,
    presigned: bool = False,
) -> str:
    """The six-line canonical request SigV4 signs (AWS docs "Create a canonical request")."""
    return "\n".join(
        [
            request.method.upper(),
            canonical_path(request.raw_path),
            canonical_query(request.raw_query, presigned=presigned),
            canonical_headers(request.headers, signed_headers),
            ";".join(signed_headers),
            payload_hash,
        ]
    )


def string_to_sign(amz_date: str, scope: str, canonical_request: str) -> str:
    """Algorithm, request date, credential scope and the canonical request's SHA-256."""
    digest = hashlib.sha256(_utf8(canonical_request)).hexdigest()
    return "\n".join([ALGORITHM, amz_date, scope, digest])


@functools.lru_cache(maxsize=1024)
def signing_key(secret: str, date: str, region: str, service: str) -> bytes:
    """The key derived from the secret for one day, region and service.

    Cached, as AWS's SDKs cache it: the key only changes with the day, so the four
    HMACs are paid once per key and day instead of once per request.
    """
    key = _utf8("AWS4" + secret)
    for part in (date, region, service, TERMINATOR):
        key = hmac.digest(key, _utf8(part), "sha256")
    return key


def signature(key: bytes, string_to_sign: str) -> str:
    """Hex HMAC-SHA256 of the string to sign under a :func:`signing_key`."""
    return hmac.digest(key, _utf8(string_to_sign), "sha256").hex()


def _trim_all(value: str) -> str:
    """SigV4's Trimall: strip, and collapse whitespace runs (folded lines too) to one space."""
    return " ".join(value.split())


def _rfc3986(component: str) -> str:
    return quote(unquote_to_bytes(_wire_bytes(component)), safe="-_.~")


def _wire_bytes(text: str) -> bytes:
    """The bytes behind a path or query string.

    ASGI servers hand over wire bytes decoded as latin-1, which round-trips exactly; a
    string with characters beyond latin-1 can only be real text, which clients send
    as UTF-8.
    """
    try:
        return text.encode("latin-1")
    except UnicodeEncodeError:
        return _utf8(text)


def _utf8(text: str) -> bytes:
    return text.encode("utf-8", "surrogatepass")


def _query_parts(raw_query: str) -> list[str]:
    return raw_query.split("&") if raw_query else []


def _query_params(raw_query: str) -> list[tuple[str, str]]:
    """Decoded (name, value) pairs, to read a presigned URL's X-Amz-* parameters."""
    pairs: list[tuple[str, str]] = []
    for part in _query_parts(raw_query):
        name, _, value = part.partition("=")
        pairs.append((_decode(name), _decode(value)))
    return pairs


def _decode(component: str) -> str:
    return unquote_to_bytes(_wire_bytes(component)).decode("utf-8", "replace")


def _header_map(headers: Iterable[tuple[str, str]]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for name, value in headers:
        found.setdefault(name.strip().lower(), []).append(value)
    return found


def _single_header(headers: dict[str, list[str]], name: str) -> str | None:
    values = headers.get(name)
    if values is None:
        return None
    if len(values) > 1:
        raise IncompleteSignatureError(
            f"The request carries {len(values)} '{name}' headers; send exactly one.",
            hint=_SIGN_HINT,
        )
    return values[0].strip()


# --- reading the claim -----------------------------------------------------------------


def _read_claim(headers: dict[str, list[str]], query: list[tuple[str, str]]) -> _Claim:
    """Find the signature in the Authorization header or the presigned query."""
    authorization = _single_header(headers, "authorization")
    presigned = any(name == "X-Amz-Signature" for name, _ in query)
    if authorization is None and not presigned:
        raise MissingAuthenticationTokenError("Missing Authentication Token", hint=_SIGN_HINT)
    if authorization is not None and presigned:
        raise IncompleteSignatureError(
            "Only one auth mechanism allowed; only the X-Amz-Signature query parameter "
            "or the Authorization header should be specified.",
            hint="Send either a presigned URL or an Authorization header, not both.",
        )
    if authorization is None:
        return _presigned_claim(headers, query)
    return _header_claim(headers, authorization)


def _header_claim(headers: dict[str, list[str]], authorization: str) -> _Claim:
    auth = parse_authorization(authorization)
    raw_date = _single_header(headers, "x-amz-date")
    if raw_date is None:
        raw_date = _single_header(headers, "date")
    if raw_date is None:
        raise IncompleteSignatureError(
            "Authorization header requires existence of either a 'X-Amz-Date' or a "
            f"'Date' header. Authorization={authorization}",
            hint=_SIGN_HINT,
        )
    signed_at = _parse_request_date(raw_date)
    return _Claim(
        auth=auth,
        amz_date=signed_at.strftime(AMZ_DATE_FORMAT),
        signed_at=signed_at,
        presigned=False,
        expires=None,
        token=_single_header(headers, _TOKEN_HEADER),
        token_signed=_TOKEN_HEADER in auth.signed_headers,
    )


def _presigned_claim(headers: dict[str, list[str]], query: list[tuple[str, str]]) -> _Claim:
    params = _presign_params(query)
    missing = [name for name in _PRESIGN_PARAMS if not params.get(name)]
    if missing:
        required = " ".join(f"AWS query-string parameters must include '{n}'." for n in missing)
        raise IncompleteSignatureError(
            f"{required} Re-examine the query-string parameters.", hint=_SIGN_HINT
        )
    _check_algorithm(params["X-Amz-Algorithm"])
    auth = ParsedAuthorization(
        credential=parse_credential(params["X-Amz-Credential"]),
        signed_headers=_parse_signed_headers(params["X-Amz-SignedHeaders"]),
        signature=params["X-Amz-Signature"],
    )
    amz_date = params["X-Amz-Date"]
    token = params.get(_TOKEN_PARAM)
    token_signed = True  # a query parameter is part of the canonical query
    if token is None:
        token = _single_header(headers, _TOKEN_HEADER)
        token_signed = _TOKEN_HEADER in auth.signed_headers
    return _Claim(
        auth=auth,
        amz_date=amz_date,
        signed_at=_parse_amz_date(amz_date),
        presigned=True,
        expires=_parse_expires(params["X-Amz-Expires"]),
        token=token,
        token_signed=token_signed,
    )


def _presign_params(query: list[tuple[str, str]]) -> dict[str, str]:
    """The auth parameters of a presigned URL; a repeated one would be ambiguous."""
    params: dict[str, str] = {}
    for name, value in query:
        if name not in _PRESIGN_PARAMS and name != _TOKEN_PARAM:
            continue
        if name in params:
            raise IncompleteSignatureError(
                f"The query-string parameter '{name}' appears more than once; send it once.",
                hint=_SIGN_HINT,
            )
        params[name] = value
    return params


def _parse_amz_date(value: str) -> datetime:
    """ISO 8601 basic format, e.g. 20150830T123600Z, always UTC."""
    if _AMZ_DATE.fullmatch(value):
        try:
            # By hand: datetime.strptime costs more than the rest of the date checks.
            return datetime(
                int(value[0:4]),
                int(value[4:6]),
                int(value[6:8]),
                int(value[9:11]),
                int(value[11:13]),
                int(value[13:15]),
                tzinfo=UTC,
            )
        except ValueError:
            pass  # a well-shaped impossible date (month 13): same error as any bad date
    raise IncompleteSignatureError(
        f"Date must be in ISO-8601 'basic format'. Got '{value}'. "
        "See http://en.wikipedia.org/wiki/ISO_8601",
        hint="Send X-Amz-Date as yyyymmddTHHMMSSZ in UTC, e.g. 20150830T123600Z.",
    )


def _parse_request_date(value: str) -> datetime:
    """X-Amz-Date's format, or an HTTP ``Date`` (RFC 7231), which botocore may send."""
    if _AMZ_DATE.fullmatch(value):
        return _parse_amz_date(value)
    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return _parse_amz_date(value)  # raises with the ISO 8601 message
    if parsed.tzinfo is None:  # "-0000": UTC with no claim about the local zone
        parsed = parsed.replace(tzinfo=UTC)
    try:
        return parsed.astimezone(UTC)
    except OverflowError:  # 9999-12-31 23:59 -0100 is past the last date there is
        return _parse_amz_date(value)  # raises with the ISO 8601 message


def _parse_expires(value: str) -> timedelta:
    seconds = int(value) if value.isascii() and value.isdigit() else -1
    if not 0 <= seconds <= MAX_PRESIGNED_EXPIRES.total_seconds():
        raise IncompleteSignatureError(
            f"X-Amz-Expires must be a whole number of seconds from 0 to "
            f"{int(MAX_PRESIGNED_EXPIRES.total_seconds())} (7 days); got '{value}'.",
            hint="Presign the URL again with a shorter expiry.",
        )
    return timedelta(seconds=seconds)


# --- checks ----------------------------------------------------------------------------


def _check_host_signed(auth: ParsedAuthorization) -> None:
    """Without a signed Host a signature could be replayed against another server."""
    if "host" not in auth.signed_headers:
        raise IncompleteSignatureError(
            "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.",
            hint="Include host in SignedHeaders (boto3 and the AWS CLI always do).",
        )


def _check_scope(claim: _Claim, region: str, services: Collection[str]) -> None:
    scope = claim.auth.credential
    if scope.date != claim.amz_date[:8]:
        raise InvalidSignatureError(
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of "
            f"date from HTTP: '{scope.date}' != '{claim.amz_date[:8]}', "
            f"from '{claim.amz_date}'.",
            hint="Use the same timestamp for X-Amz-Date and the credential scope.",
        )
    if scope.region != region:
        raise InvalidSignatureError(
            "Credential should be scoped to a valid region.",
            hint=f"The request was signed for region '{scope.region}'; this server is "
            f"'{region}'. Configure the client with region '{region}'.",
        )
    if scope.service not in services:
        expected = "' or '".join(sorted(services))
        raise InvalidSignatureError(
            f"Credential should be scoped to correct service: '{expected}'.",
            hint=f"The request was signed for service '{scope.service}'; use a client of "
            f"'{expected}' for this URL.",
        )


def _check_time(claim: _Claim, now: datetime, max_skew: timedelta) -> None:
    """Header signatures live ``max_skew`` either side; presigned URLs until they expire."""
    signed_at = claim.signed_at
    if signed_at - now > max_skew:
        raise InvalidSignatureError(
            f"Signature not yet current: {_stamp(signed_at)} is still later than "
            f"{_stamp(now + max_skew)} ({_stamp(now)} + {_span(max_skew)}.)",
            hint=_CLOCK_HINT,
        )
    if claim.expires is not None:
        expires_at = signed_at + claim.expires
        if now > expires_at:
            raise InvalidSignatureError(
                f"Signature expired: the presigned URL signed at {_stamp(signed_at)} was "
                f"valid until {_stamp(expires_at)}; it is now {_stamp(now)}.",
                hint="Presign the URL again.",
            )
    elif now - signed_at > max_skew:
        raise InvalidSignatureError(
            f"Signature expired: {_stamp(signed_at)} is now earlier than "
            f"{_stamp(now - max_skew)} ({_stamp(now)} - {_span(max_skew)}.)",
            hint=_CLOCK_HINT,
        )


def _lookup_credential(lookup: Callable[[str], Credential | None], akid: str) -> Credential:
    credential = lookup(akid)
    if credential is None:
        raise UnrecognizedClientError(
            _INVALID_TOKEN,
            hint=f"No active access key '{akid}' exists on this server: check the "
            "client's AWS_ACCESS_KEY_ID or profile.",
        )
    return credential


def _check_session(claim: _Claim, credential: Credential, now: datetime) -> None:
    """Temporary keys are only valid with their own session token, signed."""
    akid = credential.access_key_id
    expected = credential.session_token
    if expected is None:
        if claim.token is not None:
            raise UnrecognizedClientError(
                _INVALID_TOKEN,
                hint=f"'{akid}' is a long-term access key: send no X-Amz-Security-Token "
                "with it (unset AWS_SESSION_TOKEN).",
            )
    elif claim.token is None:
        raise UnrecognizedClientError(
            _INVALID_TOKEN,
            hint=f"'{akid}' is a temporary access key: send its session token as "
            "X-Amz-Security-Token (set AWS_SESSION_TOKEN).",
        )
    elif not hmac.compare_digest(_utf8(claim.token), _utf8(expected)):
        raise UnrecognizedClientError(
            _INVALID_TOKEN,
            hint=f"The X-Amz-Security-Token is not the session token issued with '{akid}'.",
        )
    elif not claim.token_signed:
        raise IncompleteSignatureError(
            "'X-Amz-Security-Token' must be signed when temporary credentials are used.",
            hint="Include x-amz-security-token in SignedHeaders (boto3 and the AWS CLI do).",
        )
    if credential.expires_at is not None and now >= credential.expires_at:
        raise ExpiredTokenError(
            _EXPIRED_TOKEN, hint="Get new temporary credentials and sign the request again."
        )


def _payload_hashes(
    request: SignedRequest,
    headers: dict[str, list[str]],
    *,
    presigned: bool,
    allow_unsigned_payload: bool,
) -> list[str]:
    """The payload hashes the client may have signed, each consistent with the body.

    A declared x-amz-content-sha256 is what the client signed, so it must match the body
    received. Without it, a header signature covers the body's hash; a presigned URL
    covers either that hash (botocore's SigV4QueryAuth) or UNSIGNED-PAYLOAD (S3-style).
    """
    declared = _single_header(headers, _CONTENT_SHA_HEADER)
    if declared is None:
        return [request.payload_sha256, UNSIGNED_PAYLOAD] if presigned else [request.payload_sha256]
    if declared == UNSIGNED_PAYLOAD:
        if allow_unsigned_payload or presigned:
            return [declared]
        raise InvalidSignatureError(
            _CONTENT_SHA_MISMATCH,
            hint="This route needs a signed payload: send the body's hex SHA-256 in "
            "x-amz-content-sha256, or leave the header out.",
        )
    if not hmac.compare_digest(_utf8(declared.lower()), _utf8(request.payload_sha256.lower())):
        raise InvalidSignatureError(
            _CONTENT_SHA_MISMATCH,
            hint="x-amz-content-sha256 must be the hex SHA-256 of exactly the body sent; "
            "a proxy may have changed the body.",
        )
    return [declared]


def _check_signature(
    request: SignedRequest, claim: _Claim, credential: Credential, payload_hashes: list[str]
) -> None:
    scope = claim.auth.credential
    key = signing_key(credential.secret_access_key, scope.date, scope.region, scope.service)
    provided = _utf8(claim.auth.signature)
    attempts: list[tuple[str, str]] = []
    for payload_hash in payload_hashes:
        creq = canonical_request(
            request, claim.auth.signed_headers, payload_hash, presigned=claim.presigned
        )
        sts = string_to_sign(claim.amz_date, scope.scope, creq)
        if hmac.compare_digest(_utf8(signature(key, sts)), provided):
            return
        attempts.append((creq, sts))
    creq, sts = attempts[0]  # AWS shows the one it would have expected first
    raise InvalidSignatureError(
        f"{_SIGNATURE_MISMATCH}\n\n"
        f"The Canonical String for this request should have been\n'{creq}'\n\n"
        f"The String-to-Sign should have been\n'{sts}'\n",
        hint="Check the secret access key, and that nothing between client and server "
        "rewrites the path, query, signed headers or body.",
    )


def _stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime(AMZ_DATE_FORMAT)


def _span(skew: timedelta) -> str:
    seconds = int(skew.total_seconds())
    return f"{seconds // 60} min" if seconds % 60 == 0 else f"{seconds} sec"


def _as_utc(moment: datetime) -> datetime:
    """A naive ``now`` is taken as UTC rather than crashing on aware/naive arithmetic."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


# --- the entry point -------------------------------------------------------------------


def verify(
    request: SignedRequest,
    *,
    lookup: Callable[[str], Credential | None],
    region: str,
    services: Collection[str],
    now: datetime,
    max_skew: timedelta = timedelta(minutes=5),
    allow_unsigned_payload: bool = False,
) -> VerifiedIdentity:
    """Check a request's SigV4 signature and say who made it; raise an AuthError if not.

    Checks run in the order AWS reports failures: a missing or malformed signature, then
    scope and time, then the key and its session token, then the payload and signature.
    """
    now = _as_utc(now)
    headers = _header_map(request.headers)
    claim = _read_claim(headers, _query_params(request.raw_query))
    _check_host_signed(claim.auth)
    _check_scope(claim, region, services)
    _check_time(claim, now, max_skew)
    credential = _lookup_credential(lookup, claim.auth.credential.access_key_id)
    _check_session(claim, credential, now)
    payload_hashes = _payload_hashes(
        request,
        headers,
        presigned=claim.presigned,
        allow_unsigned_payload=allow_unsigned_payload,
    )
    _check_signature(request, claim, credential, payload_hashes)
    scope = claim.auth.credential
    return VerifiedIdentity(
        access_key_id=scope.access_key_id,
        principal=credential.principal,
        region=scope.region,
        service=scope.service,
        signed_at=claim.signed_at,
        presigned=claim.presigned,
    )
