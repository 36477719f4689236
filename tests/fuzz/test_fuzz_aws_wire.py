"""Hypothesis-made bodies and headers on the AWS-compatible routes of a real server.

Each request is signed with the bootstrap admin's key for the route's service, so it
reaches the route's own parsing: the Query protocol (IAM, STS), AWS JSON 1.1 (Application
Auto Scaling), Lambda's REST JSON (its control plane, and Invoke as a DryRun, which parses
the payload and client context without running the function), and SageMaker Runtime's
InvokeEndpoint. Some bodies are arbitrary bytes; most are well-formed envelopes (a known
Action or X-Amz-Target, known member names) with hostile values, which is what gets past
the first check. No answer may be a 5xx, none may take long, and a request that was
signed right must never be answered as a bad signature.

SigV4 itself is fuzzed here too, on the wire: mangled Authorization and date headers and
presigned query strings must be refused with a 4xx.
"""

from __future__ import annotations

import base64
import json
import time
import zipfile
from collections.abc import Iterator
from datetime import UTC
from io import BytesIO
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st
from tests._server import RunningServer
from tests.fuzz._fuzz import (
    SignedClient,
    fuzz_settings,
    header_text,
    json_bodies,
    json_values,
    mutated,
    policy_corpus,
    server_log_tail,
    sign,
    tricky_json_texts,
)

from kennel.api.routers.autoscaling_json import OPERATIONS as SCALING_OPERATIONS
from kennel.api.routers.autoscaling_json import TARGET_PREFIX
from kennel.api.routers.aws_query import IAM_OPERATIONS, STS_OPERATIONS
from kennel.iam.sigv4 import _PRESIGN_PARAMS, _TOKEN_PARAM

SLOW_ANSWER_SECONDS = 10.0
SIGNING_ERRORS = (
    "InvalidSignatureException",
    "IncompleteSignatureException",
    "UnrecognizedClientException",
    "SignatureDoesNotMatch",
    "IncompleteSignature",
    "InvalidClientTokenId",
)
FUNCTION = "fuzz-target"
FUZZ_USER = "fuzz-user"
LAMBDA_TRUST = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Principal": {"Service": "lambda.amazonaws.com"},
            "Action": "sts:AssumeRole",
        }
    ],
}


def handled(response: httpx.Response, what: str, log: str = "") -> None:
    """A 2xx-4xx answer that came from the route, not from a signing failure."""
    assert response.status_code < 500, (
        f"{what} -> {response.status_code}: {response.text[:800]}\n{log}"
    )
    if response.status_code == 403:
        assert not any(code in response.text for code in SIGNING_ERRORS), (
            f"{what}: {response.text[:800]}"
        )


def timed_send(signed: SignedClient, *args: Any, **kwargs: Any) -> httpx.Response:
    started = time.perf_counter()
    response = signed.send(*args, **kwargs)
    elapsed = time.perf_counter() - started
    assert elapsed < SLOW_ANSWER_SECONDS, f"{args[:2]} took {elapsed:.1f} s"
    return response


# --- shared values ----------------------------------------------------------------------------

_documents = [json.dumps(document) for document in policy_corpus()] or ['{"Version": "2012-10-17"}']
policy_texts = st.one_of(
    st.sampled_from(_documents),
    mutated([d.encode() for d in _documents]).map(lambda raw: raw.decode("utf-8", "replace")),
    tricky_json_texts,
)
names = st.one_of(
    st.sampled_from(
        [FUZZ_USER, "fuzz-role", "fuzz-group", "fuzz-policy", "x" * 200, "", "a/b", ".."]
    ),
    st.text(max_size=40),
)
hostile_values = st.one_of(
    names,
    policy_texts,
    st.integers().map(str),
    st.sampled_from(["1e400", "nan", "-1", "99999999999999999999", "true", "\x00", "٣"]),
    st.text(max_size=200),
)


# --- IAM and STS: the Query protocol ------------------------------------------------------------

QUERY_KEYS = [
    "UserName",
    "GroupName",
    "RoleName",
    "PolicyName",
    "PolicyArn",
    "PolicyDocument",
    "AssumeRolePolicyDocument",
    "Path",
    "Description",
    "MaxSessionDuration",
    "PermissionsBoundary",
    "AccessKeyId",
    "Status",
    "VersionId",
    "SetAsDefault",
    "Scope",
    "OnlyAttached",
    "VirtualMFADeviceName",
    "SerialNumber",
    "AuthenticationCode1",
    "AuthenticationCode2",
    "PolicySourceArn",
    "ActionNames.member.1",
    "ActionNames.member.2",
    "ActionNames.member.0",
    "ActionNames",
    "ResourceArns.member.1",
    "ContextEntries.member.1",
    "ContextEntries.member.1.ContextKeyName",
    "ContextEntries.member.1.ContextKeyValues.member.1",
    "ContextEntries.member.1.ContextKeyValues",
    "ContextEntries.member.1.ContextKeyType",
    "Tags.member.1.Key",
    "Tags.member.1.Value",
    "Attributes.entry.1.key",
    "Attributes.entry.1.value",
    "RoleArn",
    "RoleSessionName",
    "DurationSeconds",
    "Policy",
    "TokenCode",
    "Version",
]
_key_parts = st.sampled_from(["member", "entry", "key", "value", "1", "2", "01", "", "X"])
query_keys = st.one_of(
    st.sampled_from(QUERY_KEYS),
    st.lists(_key_parts | st.text(max_size=4), min_size=1, max_size=12).map(".".join),
    st.integers(500, 3000).map(lambda n: ".".join(["a"] * n)),
)


iam_names = st.from_regex(r"[A-Za-z0-9+=,.@_-]{1,24}", fullmatch=True).filter(
    lambda n: n != "admin"
)
IDENTITY_DOCUMENT = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}],
    }
)
control_text = st.text(alphabet=st.characters(max_codepoint=0x3000), max_size=30).map(
    lambda t: f"x\x01{t}\x1f"
)


@st.composite
def plausible(draw: st.DrawFn) -> dict[str, str]:
    """Every parameter the operations read, with a value each would take: with one or two
    of them made hostile, a request gets past the checks in front of the one it tests."""
    return {
        "UserName": draw(iam_names),
        "GroupName": draw(iam_names),
        "RoleName": draw(iam_names),
        "PolicyName": draw(iam_names),
        "PolicyDocument": IDENTITY_DOCUMENT,
        "AssumeRolePolicyDocument": json.dumps(LAMBDA_TRUST),
        "PolicyArn": "arn:aws:iam::aws:policy/ReadOnlyAccess",
        "Path": "/fuzz/",
        "Description": "made by the fuzz tests",
        "MaxSessionDuration": "3600",
        "VirtualMFADeviceName": draw(iam_names),
        "SerialNumber": "arn:aws:iam::000000000000:mfa/fuzz",
        "AuthenticationCode1": "123456",
        "AuthenticationCode2": "654321",
        "AccessKeyId": "AKIAFUZZFUZZFUZZFUZZ",
        "Status": "Inactive",
        "VersionId": "v1",
        "Scope": "Local",
        "PolicySourceArn": "arn:aws:iam::000000000000:user/fuzz-user",
        "ActionNames.member.1": "s3:GetObject",
        "ContextEntries.member.1.ContextKeyName": "aws:username",
        "ContextEntries.member.1.ContextKeyValues.member.1": "fuzz",
        "ContextEntries.member.1.ContextKeyType": "string",
        "RoleArn": "arn:aws:iam::000000000000:role/fuzz-role",
        "RoleSessionName": draw(iam_names),
        "DurationSeconds": "3600",
    }


def _parameters_read(operation: Any) -> list[str]:
    """The parameter names an operation's handler names (its code's string constants)."""
    found: set[str] = set()
    codes = [operation.handler.__code__]
    while codes:
        code = codes.pop()
        for constant in code.co_consts:
            if isinstance(constant, str) and constant in QUERY_KEYS and constant != "UserName":
                found.add(constant)
            elif hasattr(constant, "co_consts"):
                codes.append(constant)
    return sorted(found)


READS = {name: _parameters_read(op) for name, op in {**IAM_OPERATIONS, **STS_OPERATIONS}.items()}


@st.composite
def query_forms(draw: st.DrawFn, action: str | None) -> bytes:
    """A form for ``action`` (left out when None): plausible parameters, one to three of
    them hostile, mostly those the operation reads.

    The UserName is never the admin's, nor left empty: operations default to the caller,
    and an inline Deny on the admin would lock the rest of the run out.
    """
    params = draw(plausible())
    own = (READS.get(action) if action else None) or QUERY_KEYS
    for _ in range(draw(st.integers(1, 3))):
        # Hypothesis leans to 0: the common case (a parameter the operation reads) first.
        mine = draw(st.integers(0, 3)) != 3
        key = draw(st.sampled_from(own) if mine else query_keys.filter(lambda k: k != "UserName"))
        params[key] = draw(control_text | hostile_values)
    pairs = list(params.items())
    if action is not None:
        pairs.append(("Action", action))
    draw(st.randoms()).shuffle(pairs)
    return "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in pairs).encode(
        "utf-8", "surrogatepass"
    )


FORM = {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}


def _query(signed: SignedClient, server: RunningServer, service: str, body: bytes) -> None:
    response = timed_send(signed, "POST", "/", body, service=service, headers=FORM)
    handled(response, f"{service} {body[:300]!r}", server_log_tail(server.log))


@pytest.mark.parametrize("action", sorted(IAM_OPERATIONS))
@given(data=st.data())
@fuzz_settings(max_examples=5)
def test_iam_operations(
    signed: SignedClient, fuzz_server: RunningServer, action: str, data: st.DataObject
) -> None:
    _query(signed, fuzz_server, "iam", data.draw(query_forms(action)))


@pytest.mark.parametrize("action", sorted(STS_OPERATIONS))
@given(data=st.data())
@fuzz_settings(max_examples=15)
def test_sts_operations(
    signed: SignedClient, fuzz_server: RunningServer, action: str, data: st.DataObject
) -> None:
    _query(signed, fuzz_server, "sts", data.draw(query_forms(action)))


@given(
    service=st.sampled_from(["iam", "sts"]),
    body=query_forms(None)
    | st.binary(max_size=300)
    | st.text(max_size=20).map(lambda a: f"Action={quote(a)}".encode()),
)
@fuzz_settings(max_examples=60)
def test_query_protocol_without_a_known_action(
    signed: SignedClient, fuzz_server: RunningServer, service: str, body: bytes
) -> None:
    _query(signed, fuzz_server, service, body)


# --- Application Auto Scaling: AWS JSON 1.1 ---------------------------------------------------

RESOURCE_IDS = st.one_of(
    st.sampled_from(
        [
            "endpoint/fuzz/variant/AllTraffic",
            "endpoint//variant/",
            "endpoint/a/variant/b/c",
            "function:x:y",
            "",
        ]
    ),
    st.text(max_size=60),
)
scaling_members: dict[str, st.SearchStrategy[Any]] = {
    "ServiceNamespace": st.sampled_from(["sagemaker", "ecs", ""]) | st.text(max_size=10),
    "ResourceId": RESOURCE_IDS,
    "ScalableDimension": st.sampled_from(["sagemaker:variant:DesiredInstanceCount", "x"]),
    "MinCapacity": st.integers() | json_values,
    "MaxCapacity": st.integers() | json_values,
    "PolicyName": names,
    "PolicyType": st.sampled_from(["TargetTrackingScaling", "StepScaling", "x"]),
    "TargetTrackingScalingPolicyConfiguration": st.fixed_dictionaries(
        {},
        optional={
            "TargetValue": st.floats() | st.integers() | st.text(max_size=5),
            "PredefinedMetricSpecification": st.fixed_dictionaries(
                {"PredefinedMetricType": st.text(max_size=40)}
            ),
            "CustomizedMetricSpecification": json_values,
            "ScaleInCooldown": st.integers(),
            "ScaleOutCooldown": st.integers(),
            "DisableScaleIn": st.booleans() | json_values,
        },
    ),
    "ScheduledActionName": names,
    "Schedule": st.sampled_from(
        [
            "at(2030-01-01T00:00:00)",
            "rate(5 minutes)",
            "cron(0 * * * ? *)",
            "at(9999-12-31T23:59:59)",
        ]
    )
    | st.text(max_size=40),
    "Timezone": st.sampled_from(["UTC", "Europe/Paris", "../../etc/passwd", "\x00"])
    | st.text(max_size=20),
    "StartTime": st.floats() | st.integers() | json_values,
    "EndTime": st.floats() | st.integers() | json_values,
    "ResourceARN": st.text(max_size=80),
    "Tags": st.dictionaries(st.text(max_size=10), st.text(max_size=10), max_size=4) | json_values,
    "TagKeys": st.lists(st.text(max_size=10), max_size=4) | json_values,
    "MaxResults": st.integers() | json_values,
    "NextToken": st.text(max_size=60)
    | st.binary(max_size=40).map(lambda b: base64.b64encode(b).decode()),
    "ResourceIds": st.lists(st.text(max_size=20), max_size=60),
    "SuspendedState": json_values,
}


@st.composite
def scaling_bodies(draw: st.DrawFn) -> bytes:
    if draw(st.integers(0, 4)) == 4:
        return draw(json_bodies)
    chosen = draw(st.lists(st.sampled_from(sorted(scaling_members)), unique=True, max_size=8))
    return json.dumps({member: draw(scaling_members[member]) for member in chosen}).encode()


@pytest.mark.parametrize("operation", [*sorted(SCALING_OPERATIONS), "Nope"])
@given(body=scaling_bodies())
@fuzz_settings(max_examples=8)
def test_application_autoscaling_json_protocol(
    signed: SignedClient, fuzz_server: RunningServer, operation: str, body: bytes
) -> None:
    headers = {
        "Content-Type": "application/x-amz-json-1.1",
        "X-Amz-Target": f"{TARGET_PREFIX}.{operation}",
    }
    response = timed_send(
        signed, "POST", "/", body, service="application-autoscaling", headers=headers
    )
    handled(response, f"{operation} {body[:300]!r}", server_log_tail(fuzz_server.log))


# --- Lambda -------------------------------------------------------------------------------------


def _code_zip() -> str:
    buffer = BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("app.py", "def handler(event, context):\n    return event\n")
    return base64.b64encode(buffer.getvalue()).decode()


@pytest.fixture(scope="module")
def function(fuzz_server: RunningServer) -> Iterator[str]:
    """A function to aim at, so requests get past "not found" into its own parsing."""
    iam = fuzz_server.session.client("iam", endpoint_url=fuzz_server.url, region_name="us-east-1")
    role = iam.create_role(
        RoleName="fuzz-fn-role", AssumeRolePolicyDocument=json.dumps(LAMBDA_TRUST)
    )
    lambda_client = fuzz_server.session.client(
        "lambda", endpoint_url=fuzz_server.url, region_name="us-east-1"
    )
    lambda_client.create_function(
        FunctionName=FUNCTION,
        Runtime="python3.11",
        Role=role["Role"]["Arn"],
        Handler="app.handler",
        Code={"ZipFile": base64.b64decode(_code_zip())},
    )
    yield FUNCTION


LAMBDA_ROUTES = [
    ("POST", "/2015-03-31/functions"),
    ("PUT", "/2015-03-31/functions/{name}/configuration"),
    ("PUT", "/2015-03-31/functions/{name}/code"),
    ("POST", "/2015-03-31/functions/{name}/versions"),
    ("POST", "/2015-03-31/functions/{name}/aliases"),
    ("PUT", "/2015-03-31/functions/{name}/aliases/fuzz-alias"),
    ("PUT", "/2017-10-31/functions/{name}/concurrency"),
    ("POST", "/2021-10-31/functions/{name}/url"),
    ("PUT", "/2021-10-31/functions/{name}/url"),
    ("POST", "/2015-03-31/functions/{name}/policy"),
    ("PUT", "/2019-09-25/functions/{name}/event-invoke-config"),
    ("POST", "/2019-09-25/functions/{name}/event-invoke-config"),
    ("POST", "/2017-03-31/tags/arn:aws:lambda:us-east-1:000000000000:function:{name}"),
]
lambda_members: dict[str, st.SearchStrategy[Any]] = {
    "FunctionName": names,
    "Role": st.sampled_from(["arn:aws:iam::000000000000:role/nope"]) | st.text(max_size=40),
    "Runtime": st.sampled_from(["python3.11", "python2.7", "nodejs20.x"]) | st.text(max_size=10),
    "Handler": st.sampled_from(["app.handler", "a.b.c", "..", "x"]) | st.text(max_size=20),
    "Code": st.fixed_dictionaries(
        {},
        optional={
            "ZipFile": st.binary(max_size=64).map(lambda b: base64.b64encode(b).decode())
            | st.text(max_size=40),
            "S3Bucket": st.text(max_size=10),
            "S3Key": st.text(max_size=10),
            "ImageUri": st.text(max_size=10),
        },
    )
    | json_values,
    "ZipFile": st.binary(max_size=64).map(lambda b: base64.b64encode(b).decode()) | json_values,
    "Timeout": st.integers() | json_values,
    "MemorySize": st.integers() | json_values,
    "Environment": st.fixed_dictionaries({"Variables": json_values}) | json_values,
    "Architectures": st.lists(
        st.sampled_from(["x86_64", "arm64"]) | st.text(max_size=5), max_size=3
    ),
    "Tags": st.dictionaries(st.text(max_size=10), json_values, max_size=4) | json_values,
    "Layers": st.lists(st.text(max_size=20), max_size=3) | json_values,
    "Name": names,
    "FunctionVersion": st.sampled_from(["$LATEST", "1", "0", "99999999999999999999"])
    | st.text(max_size=8),
    "RoutingConfig": json_values,
    "ReservedConcurrentExecutions": st.integers() | json_values,
    "AuthType": st.sampled_from(["NONE", "AWS_IAM"]) | st.text(max_size=8),
    "Cors": st.fixed_dictionaries(
        {},
        optional={
            "AllowOrigins": st.lists(st.text(max_size=20), max_size=3) | json_values,
            "MaxAge": st.integers() | json_values,
            "AllowMethods": json_values,
        },
    )
    | json_values,
    "StatementId": names,
    "Action": st.sampled_from(["lambda:InvokeFunction", "lambda:*"]) | st.text(max_size=20),
    "Principal": st.sampled_from(["*", "s3.amazonaws.com", "123456789012"]) | st.text(max_size=20),
    "SourceArn": st.text(max_size=40),
    "FunctionUrlAuthType": st.text(max_size=10),
    "MaximumRetryAttempts": st.integers() | json_values,
    "MaximumEventAgeInSeconds": st.integers() | json_values,
    "DestinationConfig": json_values,
    "RevisionId": st.text(max_size=20),
    "Description": st.text(max_size=300),
    "Publish": json_values,
}


@st.composite
def lambda_bodies(draw: st.DrawFn) -> bytes:
    if draw(st.integers(0, 4)) == 4:
        return draw(json_bodies)
    chosen = draw(st.lists(st.sampled_from(sorted(lambda_members)), unique=True, max_size=8))
    return json.dumps({member: draw(lambda_members[member]) for member in chosen}).encode()


@pytest.mark.parametrize("route", LAMBDA_ROUTES, ids=[f"{m} {p}" for m, p in LAMBDA_ROUTES])
@given(target=st.sampled_from([FUNCTION, "no-such-function"]), body=lambda_bodies())
@fuzz_settings(max_examples=10)
def test_lambda_control_plane_bodies(
    signed: SignedClient,
    fuzz_server: RunningServer,
    function: str,
    route: tuple[str, str],
    target: str,
    body: bytes,
) -> None:
    method, template = route
    path = template.format(name=target)
    headers = {"Content-Type": "application/json"}
    response = timed_send(signed, method, path, body, service="lambda", headers=headers)
    handled(response, f"{method} {path} {body[:300]!r}", server_log_tail(fuzz_server.log))


client_contexts = st.one_of(
    st.none(),
    json_bodies.map(lambda raw: base64.b64encode(raw).decode()),
    st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), max_size=60),
    st.integers(3000, 5000).map(lambda n: "A" * n),
)


@given(
    body=json_bodies,
    client_context=client_contexts,
    invocation_type=st.sampled_from(["DryRun"] * 4 + ["", "Nope", "requestresponse"]),
    qualifier=st.none() | st.sampled_from(["$LATEST", "1", "", ":"]) | st.text(max_size=10),
)
@fuzz_settings(max_examples=120)
def test_lambda_invoke_payloads(
    signed: SignedClient,
    fuzz_server: RunningServer,
    function: str,
    body: bytes,
    client_context: str | None,
    invocation_type: str,
    qualifier: str | None,
) -> None:
    """As a DryRun, Invoke parses the payload and client context but runs nothing."""
    headers = {"X-Amz-Invocation-Type": invocation_type, "Content-Type": "application/json"}
    if client_context is not None:
        headers["X-Amz-Client-Context"] = client_context
    query = "" if qualifier is None else f"?Qualifier={quote(qualifier, safe='')}"
    path = f"/2015-03-31/functions/{function}/invocations{query}"
    response = timed_send(signed, "POST", path, body, service="lambda", headers=headers)
    handled(response, f"Invoke {headers} {body[:300]!r}", server_log_tail(fuzz_server.log))


# --- SageMaker Runtime: InvokeEndpoint ----------------------------------------------------------


@given(
    body=json_bodies | st.binary(max_size=2000),
    content_type=st.sampled_from(["application/json", "image/jpeg", "application/x-npy"])
    | header_text,
    custom=st.none() | header_text | st.integers(1000, 1100).map(lambda n: "a" * n),
    variant=st.none() | header_text,
    inference_id=st.none() | header_text,
    endpoint=st.sampled_from(["fuzz", "x" * 300, "%2e%2e", "a%00b"])
    | st.text(max_size=20).map(lambda t: quote(t, safe="")),
)
@fuzz_settings(max_examples=100)
def test_invoke_endpoint(
    signed: SignedClient,
    fuzz_server: RunningServer,
    body: bytes,
    content_type: str,
    custom: str | None,
    variant: str | None,
    inference_id: str | None,
    endpoint: str,
) -> None:
    headers = {"Content-Type": content_type}
    for name, value in (
        ("X-Amzn-SageMaker-Custom-Attributes", custom),
        ("X-Amzn-SageMaker-Target-Variant", variant),
        ("X-Amzn-SageMaker-Inference-Id", inference_id),
    ):
        if value is not None:
            headers[name] = value
    path = f"/endpoints/{endpoint}/invocations"
    response = timed_send(signed, "POST", path, body, service="sagemaker", headers=headers)
    handled(
        response,
        f"InvokeEndpoint {path} {headers} {body[:200]!r}",
        server_log_tail(fuzz_server.log),
    )


# --- SigV4 on the wire ----------------------------------------------------------------------------

http_dates = st.one_of(
    st.sampled_from(
        [
            "Fri, 31 Dec 9999 23:59:59 -0100",
            "Mon, 01 Jan 0001 00:00:00 +0100",
            "Thu, 01 Jan 1970 00:00:00 GMT",
            "99991231T235959Z",
            "00000101T000000Z",
            "20241301T000000Z",
            "",
        ]
    ),
    st.datetimes(timezones=st.just(UTC)).map(lambda d: d.strftime("%a, %d %b %Y %H:%M:%S %z")),
    st.datetimes().map(lambda d: d.strftime("%Y%m%dT%H%M%SZ")),
    header_text,
)


@st.composite
def mangled_auth(draw: st.DrawFn, fuzz_server: RunningServer) -> tuple[str, dict[str, str]]:
    """A real signature with parts of it, the date or the query mangled."""
    from botocore.credentials import Credentials

    query = draw(
        st.sampled_from(["", "?a=b", "?X-Amz-Signature=x", "?X-Amz-Algorithm=AWS4-HMAC-SHA256"])
    )
    url = fuzz_server.url + "/api/v1/status" + query
    headers = sign(Credentials(*fuzz_server.credentials()), "GET", url, b"", service="sagemaker")
    authorization = headers["Authorization"].encode()
    choice = draw(st.integers(0, 5))
    if choice == 0:
        headers["Authorization"] = draw(mutated([authorization])).decode("latin-1").strip()
    elif choice == 1:
        headers["X-Amz-Date"] = draw(http_dates)
    elif choice == 2:
        del headers["X-Amz-Date"]
        headers["Date"] = draw(http_dates)
    elif choice == 3:
        headers["X-Amz-Security-Token"] = draw(header_text)
    elif choice == 4:
        headers["X-Amz-Content-SHA256"] = draw(
            st.sampled_from(["UNSIGNED-PAYLOAD", "", "0" * 64]) | header_text
        )
    else:
        headers = {}
        params = draw(
            st.lists(
                st.tuples(
                    st.sampled_from([*_PRESIGN_PARAMS, _TOKEN_PARAM]),
                    st.sampled_from(
                        ["AWS4-HMAC-SHA256", "host", "604800", "-1", "1e9", "99991231T235959Z"]
                    )
                    | http_dates,
                ),
                max_size=8,
            )
        )
        url = (
            fuzz_server.url
            + "/api/v1/status?"
            + "&".join(f"{k}={quote(v, safe='')}" for k, v in params)
        )
    return url, headers


@given(data=st.data())
@fuzz_settings(max_examples=100)
def test_mangled_signatures_are_refused(fuzz_server: RunningServer, data: st.DataObject) -> None:
    url, headers = data.draw(mangled_auth(fuzz_server))
    try:
        raw = {key.encode(): value.encode("latin-1", "replace") for key, value in headers.items()}
        response = httpx.get(url, headers=raw, timeout=SLOW_ANSWER_SECONDS)
    except httpx.LocalProtocolError:
        return  # a header h11 itself will not send; nothing reached the server
    assert response.status_code < 500, f"{headers} -> {response.status_code}: {response.text[:600]}"


def test_the_server_is_still_up(fuzz_server: RunningServer, signed: SignedClient) -> None:
    assert fuzz_server.process.poll() is None, server_log_tail(fuzz_server.log)
    response = signed.send("GET", "/api/v1/status", service="sagemaker")
    assert response.status_code == 200, response.text
