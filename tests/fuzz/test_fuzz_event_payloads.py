"""Lambda's event payloads and everything around them, on hostile input.

* Invoke's payload and X-Amz-Client-Context: the payload passed on, or Lambda's 400
  (InvalidRequestContentException / InvalidParameterValueException).
* Function names and qualifiers as a path gives them: a name, or a 4xx KennelError.
* A function URL request turned into the payload format 2.0 event: always JSON.
* A function's answer to a function URL mapped back to HTTP: a response h11 would send,
  or Lambda's 502 (a function's output is as untrusted as a request).
* The client context an environment rebuilds, and the frames gateway, template and
  environments exchange: parsed, or ClientContextError / ProtocolError.
"""

from __future__ import annotations

import asyncio
import base64
import json
import socket
from typing import Any

import h11
from hypothesis import given
from hypothesis import strategies as st
from tests.fuzz._fuzz import (
    assert_client_error,
    fuzz_settings,
    json_bodies,
    json_values,
    mutated,
    outcome,
    quick,
    tricky_json_texts,
)

from kennel._errors import KennelError
from kennel.api._functions_plane import (
    LambdaError,
    _client_context,
    _event_json,
    _http_event,
    _map_response,
    _split_name,
)
from kennel.functions._dispatch import Outcome
from kennel.functions._envclient import InvokeResult
from kennel.functions._lambda_context import ClientContext, ClientContextError, parse_client_context
from kennel.functions._names import FunctionRef, parse_function_name, resource_name
from kennel.functions._protocol import HEADER, ProtocolError, read_frame, recv_frame

ACCOUNT, REGION = "123456789012", "us-east-1"


def _lambda_400(error: BaseException) -> None:
    assert isinstance(error, LambdaError) and error.status == 400 and error.message, error


@given(body=json_bodies)
@fuzz_settings(max_examples=300)
def test_invoke_payloads(body: bytes) -> None:
    with quick("_event_json"):
        result = outcome(lambda: _event_json(body), LambdaError)
    if isinstance(result, LambdaError):
        _lambda_400(result)
    else:
        assert result in (body, b"{}")


client_contexts = st.one_of(
    json_bodies.map(base64.b64encode),
    tricky_json_texts.map(lambda text: base64.b64encode(text.encode()[:2600])),
    st.binary(max_size=80),
    st.integers(3500, 4000).map(lambda n: b"A" * n),
)


@given(raw=client_contexts)
@fuzz_settings(max_examples=300)
def test_invoke_client_context_header(raw: bytes) -> None:
    result = outcome(lambda: _client_context(raw), LambdaError)
    if isinstance(result, LambdaError):
        _lambda_400(result)


@given(encoded=client_contexts.map(lambda raw: raw.decode("latin-1")) | st.text(max_size=60))
@fuzz_settings(max_examples=300)
def test_environment_client_context(encoded: str) -> None:
    result = outcome(lambda: parse_client_context(encoded), ClientContextError)
    assert result is None or isinstance(result, ClientContext | ClientContextError)
    if isinstance(result, ClientContext):
        repr(result)  # a handler logs its context


names = st.one_of(
    st.sampled_from(
        [
            "fn",
            "fn:prod",
            "arn:aws:lambda:us-east-1:123456789012:function:fn:1",
            "arn:aws:lambda:eu-west-1:123456789012:function:fn",
            "123456789012:function:fn",
            ":function:",
            "arn:",
            "a" * 200,
        ]
    ),
    st.lists(
        st.sampled_from(["arn", "aws", "lambda", "function", "fn", "", "1", "$LATEST"]), max_size=9
    ).map(":".join),
    st.text(max_size=40),
)


@given(name=names, qualifier=st.none() | st.text(max_size=20))
@fuzz_settings(max_examples=300)
def test_function_names(name: str, qualifier: str | None) -> None:
    split_name, split_qualifier = _split_name(name, qualifier)
    assert isinstance(split_name, str) and (
        split_qualifier is None or isinstance(split_qualifier, str)
    )
    assert isinstance(resource_name(name, qualifier), str)
    result = outcome(
        lambda: parse_function_name(name, qualifier, account=ACCOUNT, region=REGION), KennelError
    )
    if isinstance(result, KennelError):
        assert_client_error(result)
    else:
        assert isinstance(result, FunctionRef)


latin1 = st.text(alphabet=st.characters(codec="latin-1"), max_size=40)


@given(
    headers=st.lists(st.tuples(latin1, latin1), max_size=6),
    query=st.binary(max_size=60),
    body=st.binary(max_size=100) | json_bodies,
    path=st.text(max_size=30),
    method=st.sampled_from(["GET", "POST", "PATCH", "X" * 30]),
)
@fuzz_settings(max_examples=200)
def test_function_url_events_are_json(
    headers: list[tuple[str, str]], query: bytes, body: bytes, path: str, method: str
) -> None:
    scope: dict[str, Any] = {
        "method": method,
        "headers": [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers],
        "query_string": query,
        "client": ("127.0.0.1", 1),
        "state": {"request_id": "r", "identity": None},
    }
    event = _http_event(scope, "/" + path, body, ACCOUNT, "fn")
    json.loads(json.dumps(event))


function_answers = st.one_of(
    json_values,
    st.fixed_dictionaries(
        {"statusCode": st.integers(-10, 1200) | json_values},
        optional={
            "headers": st.dictionaries(
                st.text(max_size=12), st.text(max_size=20) | json_values, max_size=3
            )
            | json_values,
            "cookies": st.lists(st.text(max_size=20), max_size=3) | json_values,
            "body": st.text(max_size=40) | json_values,
            "isBase64Encoded": st.booleans() | json_values,
        },
    ),
)


@given(
    payload=function_answers.map(lambda v: json.dumps(v).encode()) | json_bodies,
    kind=st.sampled_from(["ok", "ok", "ok", "error", "timeout"]),
)
@fuzz_settings(max_examples=400)
def test_function_url_answers_are_valid_http(payload: bytes, kind: str) -> None:
    result = InvokeResult(kind, payload, 1.0, 1, 128, None, "", False)
    status, headers, body = _map_response(Outcome(result, "$LATEST", False, "r"))
    h11.Response(status_code=status, headers=headers)  # raises for what no server may send
    assert isinstance(body, bytes)


# --- the frames between gateway, template and environments -----------------------------------


def _frame(meta: bytes, payload: bytes) -> bytes:
    return HEADER.pack(len(meta), len(payload)) + meta + payload


frames = st.one_of(
    st.builds(_frame, json_bodies, st.binary(max_size=40)),
    st.builds(_frame, st.just(b'{"op": "invoke"}'), st.binary(max_size=40)).flatmap(
        lambda f: mutated([f])
    ),
    st.binary(max_size=40),
    st.builds(lambda n: HEADER.pack(n, n), st.integers(0, 2**32 - 1)),
)


@given(data=frames)
@fuzz_settings(max_examples=200)
def test_frames_on_a_stream(data: bytes) -> None:
    async def read() -> Any:
        reader = asyncio.StreamReader()
        reader.feed_data(data)
        reader.feed_eof()
        return await read_frame(reader)

    with quick("read_frame"):
        result = outcome(lambda: asyncio.run(read()), ProtocolError)
    assert result is None or isinstance(result, tuple | ProtocolError)


@given(data=frames)
@fuzz_settings(max_examples=100)
def test_frames_on_a_socket(data: bytes) -> None:
    left, right = socket.socketpair()
    try:
        left.sendall(data)
        left.shutdown(socket.SHUT_WR)
        right.settimeout(5)
        with quick("recv_frame"):
            result = outcome(lambda: recv_frame(right), ProtocolError)
        assert result is None or isinstance(result, tuple | ProtocolError)
    finally:
        left.close()
        right.close()
