"""The frames the gateway, the template process and the execution environments exchange.

One frame is an 8-byte header ``struct.pack("!II", meta_len, payload_len)``, then ``meta``
(a UTF-8 JSON object: the op and its fields) and ``payload`` (raw bytes: an event or a
response, passed through untouched so a 6 MB body is never re-encoded as JSON text).

The template and the environments are plain blocking programs (the template forks, so it
must not run an event loop or threads), hence the sync helpers; the gateway side is
asyncio, hence ``read_frame``/``write_frame``. Both sides share the limits below so a
corrupt or hostile header cannot make either allocate gigabytes.
"""

from __future__ import annotations

import asyncio
import json
import socket
import struct
from typing import Any

from kennel import _json

HEADER = struct.Struct("!II")
MAX_META_BYTES = 32 * 2**20  # a result's meta carries the invocation's log
MAX_PAYLOAD_BYTES = 64 * 2**20  # Lambda's own limit is 6 MB sync; leave room, stay bounded

Meta = dict[str, Any]
Frame = tuple[Meta, bytes]


class ProtocolError(Exception):
    """The peer sent something that is not a frame (bad header, bad JSON, cut short)."""


def encode_frame(meta: Meta, payload: bytes = b"") -> bytes:
    """The bytes of one frame."""
    head = json.dumps(meta, separators=(",", ":")).encode()
    if len(head) > MAX_META_BYTES or len(payload) > MAX_PAYLOAD_BYTES:
        raise ProtocolError(
            f"frame too large: meta {len(head)} bytes (max {MAX_META_BYTES}), "
            f"payload {len(payload)} bytes (max {MAX_PAYLOAD_BYTES})"
        )
    return HEADER.pack(len(head), len(payload)) + head + payload


def _sizes(header: bytes) -> tuple[int, int]:
    meta_len, payload_len = HEADER.unpack(header)
    if meta_len > MAX_META_BYTES or payload_len > MAX_PAYLOAD_BYTES:
        raise ProtocolError(f"frame header announces {meta_len}+{payload_len} bytes: too large")
    return meta_len, payload_len


def _decode_meta(raw: bytes) -> Meta:
    try:
        meta = _json.loads(raw)
    except ValueError as exc:
        raise ProtocolError(f"frame meta is not JSON: {exc}") from exc
    if not isinstance(meta, dict):
        raise ProtocolError(f"frame meta is a {type(meta).__name__}, not an object")
    return meta


# --- blocking sockets (template, environment) ---------------------------------------------


def send_frame(sock: socket.socket, meta: Meta, payload: bytes = b"") -> None:
    sock.sendall(encode_frame(meta, payload))


def _recv_exactly(sock: socket.socket, size: int, *, first: bool = False) -> bytes | None:
    """``size`` bytes, or None on EOF before the first byte when ``first``."""
    buffer = bytearray(size)
    view = memoryview(buffer)
    got = 0
    while got < size:
        n = sock.recv_into(view[got:], size - got)
        if n == 0:
            if first and got == 0:
                return None
            raise ProtocolError(f"connection closed inside a frame ({got} of {size} bytes)")
        got += n
    return bytes(buffer)


def recv_frame(sock: socket.socket) -> Frame | None:
    """The next frame, or None if the peer closed the connection between frames."""
    header = _recv_exactly(sock, HEADER.size, first=True)
    if header is None:
        return None
    meta_len, payload_len = _sizes(header)
    body = _recv_exactly(sock, meta_len + payload_len) or b""
    return _decode_meta(body[:meta_len]), body[meta_len:]


# --- asyncio streams (gateway) --------------------------------------------------------------


async def write_frame(writer: asyncio.StreamWriter, meta: Meta, payload: bytes = b"") -> None:
    writer.write(encode_frame(meta, payload))
    await writer.drain()


async def read_frame(reader: asyncio.StreamReader) -> Frame | None:
    """The next frame, or None if the peer closed the connection between frames."""
    try:
        header = await reader.readexactly(HEADER.size)
    except asyncio.IncompleteReadError as exc:
        if not exc.partial:
            return None
        raise ProtocolError("connection closed inside a frame header") from exc
    meta_len, payload_len = _sizes(header)
    try:
        body = await reader.readexactly(meta_len + payload_len)
    except asyncio.IncompleteReadError as exc:
        raise ProtocolError(
            f"connection closed inside a frame ({len(exc.partial)} of "
            f"{meta_len + payload_len} bytes)"
        ) from exc
    return _decode_meta(body[:meta_len]), body[meta_len:]
