"""The runtime's parts on their own: frames on real sockets, the context, code unpacking."""

from __future__ import annotations

import asyncio
import base64
import json
import socket
import struct
import threading
import time
import zipfile
from pathlib import Path

import pytest
from tests.unit.functions.runtime._runtime_support import make_spec, write_code

from kennel.functions._environment import (
    InvocationLog,
    SetupError,
    build_environ,
    ensure_code,
)
from kennel.functions._lambda_context import (
    ClientContextError,
    LambdaContext,
    parse_client_context,
)
from kennel.functions._protocol import (
    MAX_PAYLOAD_BYTES,
    ProtocolError,
    encode_frame,
    read_frame,
    recv_frame,
    send_frame,
    write_frame,
)


def test_frames_round_trip_on_a_socket_pair() -> None:
    left, right = socket.socketpair()
    with left, right:
        big = bytes(range(256)) * 10_000
        sender = threading.Thread(
            target=lambda: [send_frame(left, {"op": "a", "n": 1}, big), send_frame(left, {"b": []})]
        )
        sender.start()
        assert recv_frame(right) == ({"op": "a", "n": 1}, big)
        assert recv_frame(right) == ({"b": []}, b"")
        sender.join()
        left.shutdown(socket.SHUT_WR)
        assert recv_frame(right) is None  # EOF between frames


def test_broken_frames_are_protocol_errors() -> None:
    for raw in (
        encode_frame({"op": "x"}, b"payload")[:-3],  # cut short
        struct.pack("!II", 4, 0) + b"nope",  # meta is not JSON
        struct.pack("!II", 2, 0) + b"[]",  # meta is not an object
        struct.pack("!II", 2, MAX_PAYLOAD_BYTES + 1),  # absurd size
    ):
        left, right = socket.socketpair()
        with left, right:
            left.sendall(raw)
            left.shutdown(socket.SHUT_WR)
            with pytest.raises(ProtocolError):
                recv_frame(right)


def test_asyncio_frames_over_tcp() -> None:
    async def scenario() -> list[object]:
        got: list[object] = []

        async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            while (frame := await read_frame(reader)) is not None:
                got.append(frame)
                await write_frame(writer, {"echo": frame[0]}, frame[1][::-1])
            writer.close()

        server = await asyncio.start_server(serve, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        await write_frame(writer, {"op": "ping"}, b"abc")
        answer = await read_frame(reader)
        writer.close()
        await writer.wait_closed()
        server.close()
        await server.wait_closed()
        return [answer, got]

    answer, got = asyncio.run(scenario())
    assert answer == ({"echo": {"op": "ping"}}, b"cba")
    assert got == [({"op": "ping"}, b"abc")]


def test_context_str_and_remaining_time(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/fn")
    monkeypatch.setenv("AWS_LAMBDA_LOG_STREAM_NAME", "2024/01/01/[$LATEST]0123456789abcdef")
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "fn")
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
    arn = "arn:aws:lambda:us-east-1:123456789012:function:fn"
    context = LambdaContext("id-1", arn, int(time.time() * 1000) + 3000)
    assert str(context) == (
        "LambdaContext([aws_request_id=id-1,log_group_name=/aws/lambda/fn,"
        "log_stream_name=2024/01/01/[$LATEST]0123456789abcdef,function_name=fn,"
        f"memory_limit_in_mb=128,function_version=$LATEST,invoked_function_arn={arn},"
        "client_context=None,identity=CognitoIdentity([cognito_identity_id=None,"
        "cognito_identity_pool_id=None])])"
    )
    first = context.get_remaining_time_in_millis()
    time.sleep(0.02)
    assert 2900 < first <= 3000
    assert context.get_remaining_time_in_millis() <= first - 15
    assert LambdaContext("id", arn, 0).get_remaining_time_in_millis() == 0


def test_client_context_parsing() -> None:
    encoded = base64.b64encode(json.dumps({"custom": {"a": 1}}).encode()).decode()
    parsed = parse_client_context(encoded)
    assert parsed is not None and parsed.custom == {"a": 1} and parsed.client is None
    assert parse_client_context(None) is None
    for bad in ("%%%", base64.b64encode(b"[1]").decode(), base64.b64encode(b"{").decode()):
        with pytest.raises(ClientContextError, match="Unable to parse Client Context JSON"):
            parse_client_context(bad)


def test_reserved_variables_win_and_the_host_stays_out(tmp_path: Path) -> None:
    spec = make_spec(
        write_code(tmp_path, {"a.py": ""}),
        environment={"AWS_LAMBDA_FUNCTION_NAME": "spoof", "MINE": "1"},
    )
    host = {
        "PATH": "/bin",
        "HOME": "/root",
        "AWS_PROFILE": "x",
        "KENNEL_HOME": "/k",
        "LD_LIBRARY_PATH": "/l",
    }
    env = build_environ(spec, str(tmp_path / "root" / "code" / "abc"), base=host)
    assert env["AWS_LAMBDA_FUNCTION_NAME"] == "fn"
    assert env["MINE"] == "1"
    assert env["PATH"] == "/bin" and env["LD_LIBRARY_PATH"] == "/l"
    assert "AWS_PROFILE" not in env and "KENNEL_HOME" not in env
    assert env["HOME"] != "/root"
    assert env["AWS_CONFIG_FILE"] == str(tmp_path / "root" / "no-aws-config")


def test_code_is_unpacked_once_by_digest(tmp_path: Path) -> None:
    path, sha = write_code(tmp_path, {"lambda_function.py": "x = 1\n", "sub/data.txt": "d"})
    root = tmp_path / "root"
    first = ensure_code(f"file://{path}", sha, root)
    assert first == root / "code" / sha
    assert (first / "sub" / "data.txt").read_text() == "d"
    path.unlink()  # the digest alone now finds it
    assert ensure_code(f"file://{path}", sha, root) == first
    assert [p.name for p in (root / "code").iterdir()] == [sha]  # no scratch folders left


def test_bad_code_is_a_setup_error(tmp_path: Path) -> None:
    root = tmp_path / "root"
    not_zip = tmp_path / "not.zip"
    not_zip.write_bytes(b"hello")
    with pytest.raises(SetupError, match="not a valid zip"):
        ensure_code(str(not_zip), None, root)
    with pytest.raises(SetupError, match="could not read"):
        ensure_code(str(tmp_path / "missing.zip"), None, root)
    with pytest.raises(SetupError, match="not a hex SHA-256"):
        ensure_code(str(not_zip), "base64==", root)
    evil = tmp_path / "evil.zip"
    with zipfile.ZipFile(evil, "w") as zf:
        zf.writestr("../../escaped.py", "x = 1\n")
        zf.writestr("/abs.py", "x = 1\n")
    unpacked = ensure_code(str(evil), None, root)
    assert not (tmp_path / "escaped.py").exists()
    assert sorted(p.name for p in unpacked.iterdir()) == ["abs.py", "escaped.py"]


def test_invocation_log_is_bounded() -> None:
    log = InvocationLog(limit=10)
    log.write("12345")
    log.write("67890abc")
    log.write("more")
    assert log.text() == "1234567890\n[kennel: 7 characters of log output were dropped]\n"
