"""The Query protocol codec against botocore itself, the client it must agree with.

Requests are built by botocore's ``query`` serializer and form-encoded by its own request
preparer; ``parse_query_body`` must give back the parameters the caller passed (scalars as
strings). Our XML is read back by botocore's ``query`` response parser, and a few round trips
go through a real boto3 client whose HTTP send is answered in-process.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from urllib.parse import quote, urlencode

import boto3
import botocore.parsers
import botocore.serialize
import botocore.session
import pytest
from botocore.awsrequest import AWSRequest, AWSResponse
from botocore.exceptions import ClientError
from botocore.handlers import json_decode_policies
from botocore.model import OperationModel, ServiceModel

from kennel.api._query import (
    NAMESPACES,
    QueryMap,
    QueryProtocolError,
    parse_query_body,
    parse_query_string,
    xml_error,
    xml_response,
)

ACCOUNT = "123456789012"
REQUEST_ID = "4f2d6c1e-8a55-4d6b-9c3e-0123456789ab"
WHEN = datetime(2026, 11, 23, 10, 0, 0, tzinfo=UTC)

_SESSION = botocore.session.get_session()
_MODELS: dict[str, ServiceModel] = {}


def operation(service: str, name: str) -> OperationModel:
    if service not in _MODELS:
        _MODELS[service] = _SESSION.get_service_model(service)
    return _MODELS[service].operation_model(name)


def wire_body(service: str, name: str, params: dict[str, Any]) -> bytes:
    """The form body botocore puts on the wire for ``name(**params)``."""
    serializer = botocore.serialize.create_serializer("query")
    request_dict = serializer.serialize_to_request(params, operation(service, name))
    prepared = AWSRequest(
        method="POST", url="https://example.test/", data=request_dict["body"]
    ).prepare()
    body = prepared.body
    return body.encode() if isinstance(body, str) else body


def stringified(value: Any) -> Any:
    """What the Query protocol leaves of a parameter value: every scalar as a string."""
    if isinstance(value, dict):
        return {k: stringified(v) for k, v in value.items()}
    if isinstance(value, list):
        return [stringified(v) for v in value]
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def parse_xml(service: str, name: str, body: bytes, status: int = 200) -> dict[str, Any]:
    parser = botocore.parsers.create_parser("query")
    shape = operation(service, name).output_shape
    parsed: dict[str, Any] = parser.parse(
        {"body": body, "headers": {}, "status_code": status}, shape
    )
    return parsed


# --- requests -------------------------------------------------------------------------------


REQUESTS: list[tuple[str, str, dict[str, Any]]] = [
    (
        "iam",
        "CreateUser",
        {
            "UserName": "bob",
            "Path": "/team/",
            "PermissionsBoundary": f"arn:aws:iam::{ACCOUNT}:policy/boundary",
            "Tags": [
                {"Key": "team", "Value": "vision"},
                {"Key": "note", "Value": "ünïcode & = + % ? # / spaces"},
            ],
        },
    ),
    (
        "sts",
        "AssumeRole",
        {
            "RoleArn": f"arn:aws:iam::{ACCOUNT}:role/trainer",
            "RoleSessionName": "session-1",
            "PolicyArns": [
                {"arn": f"arn:aws:iam::{ACCOUNT}:policy/a"},
                {"arn": f"arn:aws:iam::{ACCOUNT}:policy/b"},
            ],
            "Policy": json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}],
                }
            ),
            "DurationSeconds": 900,
            "SerialNumber": f"arn:aws:iam::{ACCOUNT}:mfa/bob",
            "TokenCode": "123456",
            "Tags": [{"Key": "project", "Value": "kennel"}],
            "TransitiveTagKeys": ["project"],
            "ExternalId": "ext-id",
        },
    ),
    (
        "iam",
        "SimulatePrincipalPolicy",
        {
            "PolicySourceArn": f"arn:aws:iam::{ACCOUNT}:user/bob",
            "ActionNames": ["s3:GetObject", "s3:PutObject"],
            "ResourceArns": ["arn:aws:s3:::bucket/*"],
            "PolicyInputList": ['{"Version": "2012-10-17", "Statement": []}'],
            "ContextEntries": [
                {
                    "ContextKeyName": "aws:SourceIp",
                    "ContextKeyValues": ["10.0.0.1", "10.0.0.2"],
                    "ContextKeyType": "ipList",
                },
                {
                    "ContextKeyName": "aws:MultiFactorAuthPresent",
                    "ContextKeyValues": ["true"],
                    "ContextKeyType": "boolean",
                },
            ],
            "MaxItems": 10,
        },
    ),
    (
        "iam",
        "CreatePolicyVersion",
        {
            "PolicyArn": f"arn:aws:iam::{ACCOUNT}:policy/p",
            "PolicyDocument": '{"Version": "2012-10-17", "Statement": []}',
            "SetAsDefault": True,
        },
    ),
    (
        "iam",
        "CreatePolicyVersion",
        {
            "PolicyArn": f"arn:aws:iam::{ACCOUNT}:policy/p",
            "PolicyDocument": "{}",
            "SetAsDefault": False,
        },
    ),
    ("sts", "GetCallerIdentity", {}),
    ("iam", "PutAccountProperties", {"Properties": {"color": "blue", "size": "L"}}),
    (
        "iam",
        "AcquireRole",
        {
            "TemplateArn": f"arn:aws:iam::{ACCOUNT}:template/t",
            "ReplacementValues": {
                "first": {"Values": ["a", "b"]},
                "second": {"Values": ["c"]},
            },
        },
    ),
]


@pytest.mark.parametrize(
    ("service", "name", "params"),
    REQUESTS,
    ids=[f"{s}-{n}-{i}" for i, (s, n, _) in enumerate(REQUESTS)],
)
def test_parse_gives_back_what_botocore_serialized(
    service: str, name: str, params: dict[str, Any]
) -> None:
    action, parsed = parse_query_body(wire_body(service, name, params))
    assert action == name
    assert parsed == stringified(params)


def test_member_lists_are_ordered_numerically() -> None:
    names = [f"s3:Action{i}" for i in range(1, 13)]  # member.10 sorts before member.2 as text
    body = wire_body(
        "iam",
        "SimulatePrincipalPolicy",
        {"PolicySourceArn": f"arn:aws:iam::{ACCOUNT}:user/bob", "ActionNames": names},
    )
    assert parse_query_body(body)[1]["ActionNames"] == names
    shuffled = "Action=X&L.member.3=c&L.member.1=a&L.member.2=b"
    assert parse_query_string(shuffled) == ("X", {"L": ["a", "b", "c"]})


def test_botocore_sends_an_empty_list_as_an_empty_string() -> None:
    body = wire_body("iam", "CreateUser", {"UserName": "bob", "Tags": []})
    assert parse_query_body(body) == ("CreateUser", {"UserName": "bob", "Tags": ""})


def test_get_query_string_parses_like_a_body() -> None:
    body = wire_body("iam", "CreateUser", REQUESTS[0][2])
    assert parse_query_string(body.decode()) == parse_query_body(body)
    qs = urlencode({"Action": "ListUsers", "Version": "2010-05-08", "PathPrefix": "/a b/"})
    assert parse_query_string(qs) == ("ListUsers", {"PathPrefix": "/a b/"})


@pytest.mark.parametrize(
    ("qs", "fragment"),
    [
        ("Version=2010-05-08&UserName=bob", "missing required parameter 'Action'"),
        ("Action=&UserName=bob", "missing required parameter 'Action'"),
        ("", "missing required parameter 'Action'"),
        ("Action=A&Action=B", "'Action' given more than once"),
        ("Action=A&UserName=a&UserName=b", "'UserName' is given more than once"),
        ("Action=A&Tags=&Tags.member.1.Key=k", "'Tags' is both a value and a prefix"),
        ("Action=A&Tags.member.1.Key=k&Tags=", "'Tags' is also a prefix"),
        ("Action=A&Tags.member.0=x", "bad index '0'"),
        ("Action=A&Tags.member.01=x", "bad index '01'"),
        ("Action=A&Tags.member.one=x", "bad index 'one'"),
        ("Action=A&Tags.member=x", "'Tags.member' needs an index"),
        ("Action=A&Tags..member.1=x", "malformed parameter name 'Tags..member.1'"),
        ("Action=A&M.entry.1.key=k", "map entry 'M.entry.1' needs a 'key' and a 'value'"),
        ("Action=A&M.entry.1.value=v", "map entry 'M.entry.1' needs a 'key' and a 'value'"),
        (
            "Action=A&M.entry.1.key=k&M.entry.1.value=1&M.entry.2.key=k&M.entry.2.value=2",
            "map 'M' has key 'k' more than once",
        ),
        ("Action=A&UserName=%FF", "not valid UTF-8"),
    ],
)
def test_malformed_requests_are_rejected(qs: str, fragment: str) -> None:
    with pytest.raises(QueryProtocolError) as caught:
        parse_query_string(qs)
    assert fragment in str(caught.value)
    assert isinstance(caught.value, ValueError)


def test_body_that_is_not_utf8_is_rejected() -> None:
    with pytest.raises(QueryProtocolError, match="UTF-8"):
        parse_query_body(b"Action=CreateUser&UserName=\xff")


# --- responses ------------------------------------------------------------------------------


def test_create_user_response() -> None:
    user = {
        "Path": "/team/",
        "UserName": "bob",
        "UserId": "AIDAEXAMPLEEXAMPLE01",
        "Arn": f"arn:aws:iam::{ACCOUNT}:user/team/bob",
        "CreateDate": WHEN,
        "PermissionsBoundary": None,  # omitted
        "Tags": [{"Key": "team", "Value": "vision"}],
    }
    body = xml_response("iam", "CreateUser", {"User": user}, REQUEST_ID)
    root = ET.fromstring(body)
    assert root.tag == f"{{{NAMESPACES['iam']}}}CreateUserResponse"
    assert b"PermissionsBoundary" not in body
    assert b"<CreateDate>2026-11-23T10:00:00Z</CreateDate>" in body

    parsed = parse_xml("iam", "CreateUser", body)
    expected = {k: v for k, v in user.items() if v is not None}
    assert parsed["User"] == expected
    assert parsed["User"]["CreateDate"] == WHEN
    assert parsed["ResponseMetadata"]["RequestId"] == REQUEST_ID


def test_list_users_response() -> None:
    users = [
        {
            "Path": "/",
            "UserName": name,
            "UserId": f"AIDA{name.upper():0>16}",
            "Arn": f"arn:aws:iam::{ACCOUNT}:user/{name}",
            "CreateDate": WHEN + timedelta(hours=i),
        }
        for i, name in enumerate(["alice", "bob", "carol"])
    ]
    body = xml_response("iam", "ListUsers", {"Users": users, "IsTruncated": False}, REQUEST_ID)
    parsed = parse_xml("iam", "ListUsers", body)
    assert parsed["Users"] == users
    assert parsed["IsTruncated"] is False
    assert "Marker" not in parsed

    empty = xml_response("iam", "ListUsers", {"Users": [], "IsTruncated": False}, REQUEST_ID)
    assert parse_xml("iam", "ListUsers", empty)["Users"] == []

    one = xml_response(
        "iam", "ListUsers", {"Users": users[:1], "IsTruncated": True, "Marker": "m"}, REQUEST_ID
    )
    parsed = parse_xml("iam", "ListUsers", one)
    assert (parsed["Users"], parsed["IsTruncated"], parsed["Marker"]) == (users[:1], True, "m")


def test_assume_role_response() -> None:
    expiration = WHEN + timedelta(hours=1)
    result = {
        "Credentials": {
            "AccessKeyId": "ASIAEXAMPLEEXAMPLE01",
            "SecretAccessKey": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            "SessionToken": "FwoGZXIvYXdzE+/token==",
            "Expiration": expiration,
        },
        "AssumedRoleUser": {
            "AssumedRoleId": "AROAEXAMPLEEXAMPLE01:session-1",
            "Arn": f"arn:aws:sts::{ACCOUNT}:assumed-role/trainer/session-1",
        },
        "PackedPolicySize": 6,
        "SourceIdentity": "bob",
    }
    parsed = parse_xml("sts", "AssumeRole", xml_response("sts", "AssumeRole", result, REQUEST_ID))
    assert parsed["Credentials"] == result["Credentials"]
    assert parsed["Credentials"]["Expiration"] == expiration
    assert parsed["AssumedRoleUser"] == result["AssumedRoleUser"]
    assert parsed["PackedPolicySize"] == 6
    assert parsed["SourceIdentity"] == "bob"


def test_get_caller_identity_response() -> None:
    result = {
        "UserId": "AIDAEXAMPLEEXAMPLE01",
        "Account": ACCOUNT,
        "Arn": f"arn:aws:iam::{ACCOUNT}:user/bob",
    }
    body = xml_response("sts", "GetCallerIdentity", result, REQUEST_ID)
    assert ET.fromstring(body).tag == f"{{{NAMESPACES['sts']}}}GetCallerIdentityResponse"
    parsed = parse_xml("sts", "GetCallerIdentity", body)
    assert {k: parsed[k] for k in result} == result
    assert parsed["ResponseMetadata"]["RequestId"] == REQUEST_ID


def test_list_attached_role_policies_response() -> None:
    attached = [
        {"PolicyName": "ReadOnly", "PolicyArn": f"arn:aws:iam::{ACCOUNT}:policy/ReadOnly"},
        {"PolicyName": "Train", "PolicyArn": f"arn:aws:iam::{ACCOUNT}:policy/Train"},
    ]
    body = xml_response(
        "iam",
        "ListAttachedRolePolicies",
        {"AttachedPolicies": attached, "IsTruncated": False},
        REQUEST_ID,
    )
    parsed = parse_xml("iam", "ListAttachedRolePolicies", body)
    assert parsed["AttachedPolicies"] == attached
    assert parsed["IsTruncated"] is False


def test_get_role_policy_document_is_sent_url_encoded() -> None:
    document = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "s3:Get*", "Resource": "arn:aws:s3:::b/*"}],
    }
    encoded = quote(json.dumps(document))
    result = {"RoleName": "trainer", "PolicyName": "inline", "PolicyDocument": encoded}
    body = xml_response("iam", "GetRolePolicy", result, REQUEST_ID)
    parsed = parse_xml("iam", "GetRolePolicy", body)
    assert {k: parsed[k] for k in result} == result
    # boto3's iam clients then URL-decode and json.loads it (an after-call handler).
    json_decode_policies(parsed, operation("iam", "GetRolePolicy"))
    assert parsed["PolicyDocument"] == document


def test_simulate_principal_policy_response() -> None:
    results = [
        {
            "EvalActionName": "s3:GetObject",
            "EvalResourceName": "arn:aws:s3:::bucket/key",
            "EvalDecision": "allowed",
            "MatchedStatements": [
                {
                    "SourcePolicyId": "inline",
                    "SourcePolicyType": "user",
                    "StartPosition": {"Line": 1, "Column": 42},
                    "EndPosition": {"Line": 1, "Column": 120},
                }
            ],
            "MissingContextValues": [],
            "EvalDecisionDetails": QueryMap({"PermissionsBoundaryPolicy": "allowed"}),
        },
        {
            "EvalActionName": "s3:PutObject",
            "EvalResourceName": "*",
            "EvalDecision": "implicitDeny",
            "MatchedStatements": [],
            "MissingContextValues": ["aws:SourceIp"],
        },
    ]
    body = xml_response(
        "iam",
        "SimulatePrincipalPolicy",
        {"EvaluationResults": results, "IsTruncated": False},
        REQUEST_ID,
    )
    parsed = parse_xml("iam", "SimulatePrincipalPolicy", body)
    assert parsed["EvaluationResults"] == results
    assert parsed["EvaluationResults"][0]["EvalDecisionDetails"] == {
        "PermissionsBoundaryPolicy": "allowed"
    }
    assert parsed["IsTruncated"] is False


@pytest.mark.parametrize("result", [None, {}])
def test_no_result_operation(result: dict[str, Any] | None) -> None:
    body = xml_response("iam", "DeleteUser", result, REQUEST_ID)
    assert b"DeleteUserResult" not in body
    assert ET.fromstring(body).tag == f"{{{NAMESPACES['iam']}}}DeleteUserResponse"
    assert operation("iam", "DeleteUser").output_shape is None
    parsed = parse_xml("iam", "DeleteUser", body)
    assert list(parsed) == ["ResponseMetadata"]
    assert parsed["ResponseMetadata"]["RequestId"] == REQUEST_ID


def test_maps_and_blobs() -> None:
    summary = QueryMap({"Users": 3, "Roles": 2, "AccountMFAEnabled": 0})
    body = xml_response("iam", "GetAccountSummary", {"SummaryMap": summary}, REQUEST_ID)
    assert parse_xml("iam", "GetAccountSummary", body)["SummaryMap"] == summary

    seed = bytes(range(256))
    device = {"SerialNumber": f"arn:aws:iam::{ACCOUNT}:mfa/bob", "Base32StringSeed": seed}
    body = xml_response("iam", "CreateVirtualMFADevice", {"VirtualMFADevice": device}, REQUEST_ID)
    assert parse_xml("iam", "CreateVirtualMFADevice", body)["VirtualMFADevice"] == device


def test_text_is_escaped_and_round_trips() -> None:
    awkward = "<a href=\"x\">&amp; 'q'</a>\r\n\ttab ünïcode \U0001f415 ]]>"
    body = xml_response(
        "sts",
        "GetCallerIdentity",
        {"UserId": awkward, "Account": ACCOUNT, "Arn": "arn"},
        awkward,
    )
    parsed = parse_xml("sts", "GetCallerIdentity", body)
    assert parsed["UserId"] == awkward
    assert parsed["ResponseMetadata"]["RequestId"] == awkward


def test_datetimes_are_utc_seconds() -> None:
    plus_two = timezone(timedelta(hours=2))
    cases = {
        datetime(2026, 11, 23, 12, 0, 0, tzinfo=plus_two): "2026-11-23T10:00:00Z",
        datetime(2026, 11, 23, 10, 0, 0): "2026-11-23T10:00:00Z",  # naive is taken as UTC
        datetime(2026, 11, 23, 10, 0, 0, 999_999, tzinfo=UTC): "2026-11-23T10:00:00Z",
    }
    for moment, text in cases.items():
        body = xml_response("iam", "CreateUser", {"User": {"CreateDate": moment}}, REQUEST_ID)
        assert f"<CreateDate>{text}</CreateDate>".encode() in body


def test_unserializable_values_are_refused() -> None:
    with pytest.raises(ValueError, match="namespace"):
        xml_response("s3", "ListBuckets", None, REQUEST_ID)
    with pytest.raises(ValueError, match="XML element name"):
        xml_response("iam", "CreateUser", {"User": {"bad name": "x"}}, REQUEST_ID)
    with pytest.raises(ValueError, match="XML element name"):
        xml_response("iam", "Create<User", None, REQUEST_ID)
    with pytest.raises(ValueError, match="cannot be represented in XML"):
        xml_response("iam", "CreateUser", {"User": {"UserName": "a\x00b"}}, REQUEST_ID)
    with pytest.raises(TypeError, match="cannot serialize set"):
        xml_response("iam", "CreateUser", {"User": {"Tags": {"a"}}}, REQUEST_ID)


# --- errors ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sender", "status", "kind"), [(True, 404, "Sender"), (False, 500, "Receiver")]
)
@pytest.mark.parametrize("service", [None, "iam"])
def test_error_response(sender: bool, status: int, kind: str, service: str | None) -> None:
    message = "The user with name bob cannot be found. <&>"
    body = xml_error("NoSuchEntity", message, REQUEST_ID, sender=sender, service=service)
    root = ET.fromstring(body)
    expected_tag = "ErrorResponse" if service is None else f"{{{NAMESPACES['iam']}}}ErrorResponse"
    assert root.tag == expected_tag
    parsed = parse_xml("iam", "GetUser", body, status=status)
    assert parsed["Error"] == {"Type": kind, "Code": "NoSuchEntity", "Message": message}
    assert parsed["ResponseMetadata"]["RequestId"] == REQUEST_ID
    assert parsed["ResponseMetadata"]["HTTPStatusCode"] == status


# --- through a real boto3 client ------------------------------------------------------------


Handler = Callable[[str, dict[str, Any]], tuple[int, bytes]]


class _Raw:
    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._body


def client_answered_by(service: str, handler: Handler) -> Any:
    """A boto3 client whose requests are parsed by us and answered by ``handler``."""
    client = boto3.client(
        service,
        endpoint_url="http://kennel.test:8080",
        region_name="us-east-1",
        aws_access_key_id="AKIAEXAMPLEEXAMPLE01",
        aws_secret_access_key="secret",
    )

    def send(request: Any, **_: Any) -> AWSResponse:
        body = request.body
        action, params = parse_query_body(body if isinstance(body, bytes) else body.encode())
        status, payload = handler(action, params)
        return AWSResponse(request.url, status, {"Content-Type": "text/xml"}, _Raw(payload))

    client.meta.events.register(f"before-send.{service}", send)
    return client


def test_boto3_iam_client_round_trip() -> None:
    document = {"Version": "2012-10-17", "Statement": []}
    seen: list[tuple[str, dict[str, Any]]] = []

    def handler(action: str, params: dict[str, Any]) -> tuple[int, bytes]:
        seen.append((action, params))
        if action == "CreateUser":
            user = {
                "Path": "/",
                "UserName": params["UserName"],
                "UserId": "AIDAEXAMPLEEXAMPLE01",
                "Arn": f"arn:aws:iam::{ACCOUNT}:user/{params['UserName']}",
                "CreateDate": WHEN,
                "Tags": params.get("Tags"),
            }
            return 200, xml_response("iam", action, {"User": user}, REQUEST_ID)
        if action == "GetRolePolicy":
            result = {**params, "PolicyDocument": quote(json.dumps(document))}
            return 200, xml_response("iam", action, result, REQUEST_ID)
        return 404, xml_error(
            "NoSuchEntity", f"The user with name {params['UserName']} cannot be found.", "r-2"
        )

    iam = client_answered_by("iam", handler)
    created = iam.create_user(UserName="bob", Tags=[{"Key": "k", "Value": "v"}])
    assert created["User"]["CreateDate"] == WHEN
    assert created["User"]["Tags"] == [{"Key": "k", "Value": "v"}]
    assert seen[-1] == ("CreateUser", {"UserName": "bob", "Tags": [{"Key": "k", "Value": "v"}]})

    got = iam.get_role_policy(RoleName="trainer", PolicyName="inline")
    assert got["PolicyDocument"] == document

    with pytest.raises(ClientError) as caught:
        iam.delete_user(UserName="nobody")
    error = caught.value.response
    assert error["Error"]["Code"] == "NoSuchEntity"
    assert error["Error"]["Message"] == "The user with name nobody cannot be found."
    assert error["ResponseMetadata"]["RequestId"] == "r-2"
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 404


def test_boto3_sts_client_round_trip() -> None:
    def handler(action: str, params: dict[str, Any]) -> tuple[int, bytes]:
        assert action == "GetCallerIdentity"
        assert params == {}
        result = {"UserId": "AIDAX", "Account": ACCOUNT, "Arn": f"arn:aws:iam::{ACCOUNT}:user/b"}
        return 200, xml_response("sts", action, result, REQUEST_ID)

    sts = client_answered_by("sts", handler)
    identity = sts.get_caller_identity()
    assert identity["Account"] == ACCOUNT
    assert identity["ResponseMetadata"]["RequestId"] == REQUEST_ID


def test_errors_carry_aws_codes() -> None:
    with pytest.raises(QueryProtocolError) as missing:
        parse_query_body(b"Version=2010-05-08")
    assert missing.value.code == "MissingAction"
    with pytest.raises(QueryProtocolError) as malformed:
        parse_query_body(b"\xff\xfe")
    assert malformed.value.code == "MalformedQueryString"
