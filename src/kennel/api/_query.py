"""Codec for the AWS Query protocol as spoken by the ``iam`` and ``sts`` services.

Requests arrive as form-encoded flat keys (``Tags.member.1.Key=a``); :func:`parse_query_body`
turns them into nested dicts and lists. Responses and errors go back as the XML documents
botocore's ``query`` parser reads (:func:`xml_response`, :func:`xml_error`). Pure functions:
no I/O, no knowledge of individual operations.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl
from xml.sax.saxutils import escape

__all__ = [
    "MAX_KEY_PARTS",
    "NAMESPACES",
    "QueryMap",
    "QueryProtocolError",
    "parse_query_body",
    "parse_query_string",
    "xml_error",
    "xml_response",
]

NAMESPACES: dict[str, str] = {
    "iam": "https://iam.amazonaws.com/doc/2010-05-08/",
    "sts": "https://sts.amazonaws.com/doc/2011-06-15/",
}

MAX_KEY_PARTS = 32
"""The most dotted parts one parameter name may have; AWS's deepest shapes use about ten,
and each part is a level of nesting to build and walk."""
_XML_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*\Z")
# Characters XML 1.0 cannot carry at all, not even as character references.
_XML_INVALID = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


class QueryProtocolError(ValueError):
    """A request that is not well-formed Query protocol (maps to a 400 for the caller).

    ``code`` is AWS's error code for it: MissingAction or MalformedQueryString.
    """

    def __init__(self, message: str, code: str = "MalformedQueryString") -> None:
        super().__init__(message)
        self.code = code


class QueryMap(dict[str, Any]):
    """A dict serialized as a Query *map* (``<entry><key>..</key><value>..</value></entry>``).

    Plain dicts serialize as structures (one child element per key); shapes such as
    ``EvalDecisionDetails`` or ``SummaryMap`` are maps and must be wrapped in this.
    """


# --- requests -------------------------------------------------------------------------------


def parse_query_body(body: bytes) -> tuple[str, dict[str, Any]]:
    """Parse a form-encoded POST body into ``(action, params)``; see :func:`parse_query_string`."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise QueryProtocolError("request body is not valid UTF-8") from exc
    return parse_query_string(text)


def parse_query_string(qs: str) -> tuple[str, dict[str, Any]]:
    """Parse Query parameters (POST body or GET query string) into ``(action, params)``.

    Dotted keys nest; ``X.member.N`` becomes a list ordered by N and ``X.entry.N.key`` /
    ``X.entry.N.value`` a dict. Scalars stay strings. ``Action`` and ``Version`` are not
    part of ``params``. Note that botocore sends an empty list as ``X=`` (an empty string).
    """
    try:
        pairs = parse_qsl(qs, keep_blank_values=True, errors="strict")
    except UnicodeDecodeError as exc:
        raise QueryProtocolError("request parameters are not valid UTF-8") from exc
    action: str | None = None
    tree: dict[str, Any] = {}
    for key, value in pairs:
        if key == "Action":
            if action is not None:
                raise QueryProtocolError("parameter 'Action' given more than once")
            action = value
        elif key != "Version":
            _insert(tree, key, value)
    if not action:
        raise QueryProtocolError("missing required parameter 'Action'", "MissingAction")
    return action, {key: _collapse(node, key) for key, node in tree.items()}


def _insert(tree: dict[str, Any], key: str, value: str) -> None:
    parts = key.split(".", MAX_KEY_PARTS)
    if len(parts) > MAX_KEY_PARTS:
        raise QueryProtocolError(
            f"parameter name {key[:100]!r}... has more than {MAX_KEY_PARTS} dotted parts"
        )
    if "" in parts:
        raise QueryProtocolError(f"malformed parameter name {key!r}")
    node = tree
    for depth, part in enumerate(parts[:-1]):
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            prefix = ".".join(parts[: depth + 1])
            raise QueryProtocolError(f"parameter {prefix!r} is both a value and a prefix")
        node = child
    if parts[-1] in node:
        kind = "given more than once" if isinstance(node[parts[-1]], str) else "also a prefix"
        raise QueryProtocolError(f"parameter {key!r} is {kind}")
    node[parts[-1]] = value


def _collapse(node: str | dict[str, Any], path: str) -> Any:
    if isinstance(node, str):
        return node
    if node.keys() == {"member"}:
        return [_collapse(item, f"{path}.member.{i}") for i, item in _indexed(node, "member", path)]
    if node.keys() == {"entry"}:
        result: dict[str, Any] = {}
        for i, entry in _indexed(node, "entry", path):
            where = f"{path}.entry.{i}"
            key = entry.get("key") if isinstance(entry, dict) else None
            if not isinstance(key, str) or "value" not in entry:
                raise QueryProtocolError(f"map entry {where!r} needs a 'key' and a 'value'")
            if key in result:
                raise QueryProtocolError(f"map {path!r} has key {key!r} more than once")
            result[key] = _collapse(entry["value"], f"{where}.value")
        return result
    return {k: _collapse(v, f"{path}.{k}") for k, v in node.items()}


def _indexed(node: dict[str, Any], word: str, path: str) -> list[tuple[int, Any]]:
    items = node[word]
    if not isinstance(items, dict):
        raise QueryProtocolError(f"parameter '{path}.{word}' needs an index: '{path}.{word}.1'")
    indexed: list[tuple[int, Any]] = []
    for index, item in items.items():
        if not index.isdigit() or index.startswith("0"):
            raise QueryProtocolError(f"bad index {index!r} in '{path}.{word}.{index}'")
        indexed.append((int(index), item))
    return sorted(indexed, key=lambda pair: pair[0])


# --- responses ------------------------------------------------------------------------------


def xml_response(
    service: str, action: str, result: Mapping[str, Any] | None, request_id: str
) -> bytes:
    """The XML document for a successful ``action``; no ``<{Action}Result>`` if ``result`` is empty.

    Values: dict → child elements, :class:`QueryMap` → ``entry``/``key``/``value``, list →
    ``<member>`` children, bool → ``true``/``false``, datetime → ``YYYY-MM-DDTHH:MM:SSZ`` (UTC,
    naive taken as UTC), int/float → ``str``, bytes → base64, str → escaped text; None is omitted.
    """
    namespace = _namespace(service)
    _check_name(action)
    out = [f'<{action}Response xmlns="{namespace}">']
    if result:
        out.append(f"<{action}Result>")
        _write(out, result)
        out.append(f"</{action}Result>")
    out.append(f"<ResponseMetadata><RequestId>{_text(request_id)}</RequestId></ResponseMetadata>")
    out.append(f"</{action}Response>")
    return "".join(out).encode()


def xml_error(
    code: str,
    message: str,
    request_id: str,
    *,
    sender: bool = True,
    service: str | None = None,
) -> bytes:
    """The Query ``<ErrorResponse>`` document (``Type`` Sender, or Receiver for server faults).

    ``service`` picks the ``xmlns`` (as AWS sends it); botocore ignores namespaces, so it is
    optional and the attribute is left out without it.
    """
    xmlns = f' xmlns="{_namespace(service)}"' if service is not None else ""
    return (
        f"<ErrorResponse{xmlns}><Error>"
        f"<Type>{'Sender' if sender else 'Receiver'}</Type>"
        f"<Code>{_lossy_text(code)}</Code><Message>{_lossy_text(message)}</Message>"
        f"</Error><RequestId>{_lossy_text(request_id)}</RequestId></ErrorResponse>"
    ).encode()


def _namespace(service: str) -> str:
    try:
        return NAMESPACES[service]
    except KeyError:
        raise ValueError(f"no Query protocol namespace for service {service!r}") from None


def _check_name(name: object) -> str:
    if not isinstance(name, str) or not _XML_NAME.match(name):
        raise ValueError(f"{name!r} is not usable as an XML element name")
    return name


def _text(value: str) -> str:
    bad = _XML_INVALID.search(value)
    if bad:
        raise ValueError(f"character {bad.group()!r} cannot be represented in XML")
    # A bare CR would be normalized to LF by the client's XML parser; keep it as a reference.
    return escape(value, {"\r": "&#13;"})


def _lossy_text(value: str) -> str:
    """:func:`_text` for an error, which must always be written: an error message may quote
    the request, and a character XML cannot carry is shown as U+FFFD instead."""
    return _text(_XML_INVALID.sub("\ufffd", value))


def _write(out: list[str], value: Any) -> None:
    if isinstance(value, QueryMap):
        for key, item in value.items():
            if item is not None:
                out.append(f"<entry><key>{_text(key)}</key><value>")
                _write(out, item)
                out.append("</value></entry>")
    elif isinstance(value, Mapping):
        for key, item in value.items():
            if item is not None:
                name = _check_name(key)
                out.append(f"<{name}>")
                _write(out, item)
                out.append(f"</{name}>")
    elif isinstance(value, list | tuple):
        for item in value:
            if item is not None:
                out.append("<member>")
                _write(out, item)
                out.append("</member>")
    elif isinstance(value, bool):
        out.append("true" if value else "false")
    elif isinstance(value, datetime):
        moment = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
        out.append(moment.strftime("%Y-%m-%dT%H:%M:%SZ"))
    elif isinstance(value, int | float):
        out.append(str(value))
    elif isinstance(value, bytes):
        out.append(base64.b64encode(value).decode("ascii"))
    elif isinstance(value, str):
        out.append(_text(value))
    else:
        raise TypeError(f"cannot serialize {type(value).__name__} to Query XML")
